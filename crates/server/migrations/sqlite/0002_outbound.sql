-- Outbound: idempotent sends, the send's progress, per-number throughput, and usage for billing.

-- The caller's idempotency key: the same key for the same tenant returns the first message.
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
-- Set just before the Graph call and cleared when Meta certainly did not take the message: while
-- set and no wamid is known, the outcome is unknown and the message is never sent again.
ALTER TABLE messages ADD COLUMN send_started_at BIGINT;
-- When Meta accepted the send (answered with a wamid); the contract's status stays `queued` until
-- Meta's `sent` status webhook.
ALTER TABLE messages ADD COLUMN accepted_at BIGINT;
CREATE UNIQUE INDEX messages_idempotency ON messages (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_connection_queued ON messages (connection_id, status) WHERE status = 'queued';

-- Messages per second this number may send (Meta: 80 by default, up to 1000).
ALTER TABLE connections ADD COLUMN throughput_per_second BIGINT NOT NULL DEFAULT 80;

-- Conversations Meta bills, counted once per message from the `pricing` of its status webhooks.
CREATE TABLE usage_daily (
    tenant_id      TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    day            TEXT NOT NULL,
    category       TEXT NOT NULL,
    billable       BIGINT NOT NULL,
    pricing_model  TEXT NOT NULL,
    messages       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, day, category, billable, pricing_model)
);

-- Which messages' pricing has been counted, so redelivered or repeated statuses count once.
CREATE TABLE usage_counted (
    connection_id  TEXT NOT NULL,
    wamid          TEXT NOT NULL,
    PRIMARY KEY (connection_id, wamid)
);
