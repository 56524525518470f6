-- Foundation schema. Ids are UUID text, times are Unix milliseconds, JSON is text, secrets are
-- ciphertext bytes from the vault. The SQLite file of the same name differs only in types, and
-- in leaving out the inbox table, which on SQLite lives in a database file of its own.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL,
    key_prefix    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE connections (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    phone_number_id       TEXT NOT NULL,
    waba_id               TEXT,
    display_phone_number  TEXT NOT NULL,
    verified_name         TEXT NOT NULL,
    quality_rating        TEXT,
    connection_key        TEXT NOT NULL,
    access_token          BYTEA,
    app_secret            BYTEA,
    verify_token          BYTEA,
    status                TEXT NOT NULL,
    status_reason         TEXT,
    auto_reply            BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    disconnected_at       BIGINT
);
CREATE UNIQUE INDEX connections_key ON connections (connection_key);
-- One live connection per phone number across all tenants; disconnected rows keep their history.
CREATE UNIQUE INDEX connections_live_phone ON connections (phone_number_id) WHERE status <> 'disconnected';
CREATE INDEX connections_tenant ON connections (tenant_id, created_at);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    wa_id       TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX contacts_tenant_wa_id ON contacts (tenant_id, wa_id);

CREATE TABLE conversations (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    connection_id         TEXT NOT NULL REFERENCES connections (id),
    contact_id            TEXT NOT NULL REFERENCES contacts (id),
    unread_count          BIGINT NOT NULL DEFAULT 0,
    last_message_at       BIGINT,
    last_message_preview  TEXT,
    last_inbound_at       BIGINT,
    last_inbound_wamid    TEXT,
    window_expires_at     BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX conversations_connection_contact ON conversations (connection_id, contact_id);
CREATE INDEX conversations_tenant_recent ON conversations (tenant_id, last_message_at, id);

CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    connection_id    TEXT NOT NULL REFERENCES connections (id),
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    contact_id       TEXT NOT NULL REFERENCES contacts (id),
    direction        TEXT NOT NULL,
    wamid            TEXT,
    type             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_rank      BIGINT NOT NULL,
    error_code       BIGINT,
    error_title      TEXT,
    error_message    TEXT,
    message_at          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- Redelivered webhooks are harmless because a wamid is stored once per connection.
CREATE UNIQUE INDEX messages_connection_wamid ON messages (connection_id, wamid);
CREATE INDEX messages_conversation_time ON messages (conversation_id, message_at, id);
CREATE INDEX messages_tenant_time ON messages (tenant_id, message_at, id);

CREATE TABLE statuses (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id  TEXT NOT NULL REFERENCES connections (id),
    wamid          TEXT NOT NULL,
    status         TEXT NOT NULL,
    status_rank    BIGINT NOT NULL,
    meta_timestamp BIGINT,
    recipient_id   TEXT,
    payload        TEXT NOT NULL,
    received_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX statuses_once ON statuses (connection_id, wamid, status, meta_timestamp);
CREATE INDEX statuses_wamid ON statuses (connection_id, wamid, status_rank);

CREATE TABLE inbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id    TEXT,
    received_at      BIGINT NOT NULL,
    body             BYTEA NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    processed_at     BIGINT
);
CREATE INDEX inbox_pending ON inbox (id) WHERE state = 'pending';
CREATE INDEX inbox_connection_state ON inbox (connection_id, state, id);

CREATE TABLE templates (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    connection_id     TEXT NOT NULL REFERENCES connections (id),
    waba_id           TEXT,
    meta_template_id  TEXT,
    name              TEXT NOT NULL,
    language          TEXT NOT NULL,
    category          TEXT,
    status            TEXT NOT NULL,
    quality_score     TEXT,
    rejected_reason   TEXT,
    parameter_format  TEXT,
    components        TEXT NOT NULL,
    payload           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX templates_connection_name_language ON templates (connection_id, name, language);
CREATE INDEX templates_meta_id ON templates (connection_id, meta_template_id);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    tenant_id     TEXT,
    unique_key    TEXT,
    state         TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    run_at        BIGINT NOT NULL,
    lease_until   BIGINT,
    leased_by     TEXT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'ready';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
