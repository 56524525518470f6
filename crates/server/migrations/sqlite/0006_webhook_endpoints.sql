-- Outbound webhooks: URLs a tenant registers to be told of its events, and the log of what was
-- sent to each.

-- A tenant's receiving URL and the events it wants. The signing secret is sealed by the vault.
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    url                   TEXT NOT NULL,
    description           TEXT,
    -- JSON array of event type names.
    events                TEXT NOT NULL,
    secret                BLOB NOT NULL,
    enabled               BIGINT NOT NULL DEFAULT 1,
    disabled_reason       TEXT,
    -- Start of the current run of failed attempts (NULL while the last attempt succeeded).
    failing_since         BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

-- One event for one endpoint. `seq` orders events; `ordering_key` (the conversation id, or '' for
-- events of no conversation) is the queue within the endpoint that is delivered one at a time.
CREATE TABLE webhook_deliveries (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    endpoint_id           TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id              TEXT NOT NULL,
    event_type            TEXT NOT NULL,
    ordering_key          TEXT NOT NULL,
    seq                   BIGINT NOT NULL,
    -- The exact body sent (and signed), so every attempt sends the same bytes.
    body                  TEXT NOT NULL,
    state                 TEXT NOT NULL,
    -- Attempts in all; `round_attempts` since it was queued last (a re-send starts a new round).
    attempts              BIGINT NOT NULL DEFAULT 0,
    round_attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at       BIGINT NOT NULL,
    lease_until           BIGINT,
    leased_by             TEXT,
    last_status_code      BIGINT,
    last_error            TEXT,
    delivered_at          BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, ordering_key, seq);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, seq);

-- Each attempt of a delivery: what the receiver answered, or why it could not be reached.
CREATE TABLE webhook_attempts (
    id                    TEXT PRIMARY KEY,
    delivery_id           TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt               BIGINT NOT NULL,
    status_code           BIGINT,
    error                 TEXT,
    duration_ms           BIGINT NOT NULL,
    created_at            BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
