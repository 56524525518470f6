-- Sequences: timed follow-ups a tenant defines once and contacts are enrolled in.

-- A sequence belongs to one connection (the number its steps are sent from). Its steps are a
-- JSON array of {"delay_seconds", "message": {"type", <type>: {...}}, "outside_window",
-- "fallback_template"?}, run in order.
CREATE TABLE sequences (
    id                        TEXT PRIMARY KEY,
    tenant_id                 TEXT NOT NULL REFERENCES tenants (id),
    connection_id             TEXT NOT NULL REFERENCES connections (id),
    name                      TEXT NOT NULL,
    steps                     TEXT NOT NULL,
    -- Enroll every contact whose first message reaches the connection.
    enroll_on_first_message   BIGINT NOT NULL DEFAULT 0,
    -- Stop an enrollment when the contact writes.
    stop_on_reply             BIGINT NOT NULL DEFAULT 1,
    -- JSON array of extra opt-out words (the localised defaults always apply).
    opt_out_words             TEXT NOT NULL DEFAULT '[]',
    -- Deleted sequences stay, so their enrollments keep their history.
    deleted_at                BIGINT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
CREATE INDEX sequences_tenant ON sequences (tenant_id, created_at);
CREATE INDEX sequences_connection ON sequences (connection_id);

-- One contact in one sequence. `step` is the index of the next step to run; `next_run_at` when
-- it is due (NULL while it waits for the customer's window, or once it ended).
CREATE TABLE sequence_enrollments (
    id                        TEXT PRIMARY KEY,
    tenant_id                 TEXT NOT NULL REFERENCES tenants (id),
    sequence_id               TEXT NOT NULL REFERENCES sequences (id),
    connection_id             TEXT NOT NULL REFERENCES connections (id),
    contact_id                TEXT NOT NULL REFERENCES contacts (id),
    contact_wa_id             TEXT NOT NULL,
    -- 'active', 'waiting' (for the customer's window), 'completed' or 'stopped'.
    state                     TEXT NOT NULL,
    step                      BIGINT NOT NULL DEFAULT 0,
    next_run_at               BIGINT,
    -- 'replied', 'opted_out', 'by_hand', 'sequence_deleted', 'send_failed'.
    stopped_reason            TEXT,
    -- 'api', 'dashboard' or 'first_message'.
    enrolled_by               TEXT NOT NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
-- A contact is in a sequence at most once at a time.
CREATE UNIQUE INDEX sequence_enrollments_live ON sequence_enrollments (sequence_id, contact_id)
    WHERE state IN ('active', 'waiting');
CREATE INDEX sequence_enrollments_sequence ON sequence_enrollments (sequence_id, created_at);
CREATE INDEX sequence_enrollments_contact ON sequence_enrollments (connection_id, contact_id, state);

-- What happened to an enrollment, in order: enrolled, sent, waiting, skipped, failed, stopped,
-- completed.
CREATE TABLE sequence_events (
    id                        TEXT PRIMARY KEY,
    enrollment_id             TEXT NOT NULL REFERENCES sequence_enrollments (id),
    step                      BIGINT,
    event                     TEXT NOT NULL,
    message_id                TEXT,
    detail                    TEXT,
    created_at                BIGINT NOT NULL
);
CREATE INDEX sequence_events_enrollment ON sequence_events (enrollment_id, created_at);
