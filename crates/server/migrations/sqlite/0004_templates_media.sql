-- Templates kept in step with Meta, and media in and out.

-- When this connection's templates were last pulled from Meta in full (NULL: never).
ALTER TABLE connections ADD COLUMN templates_synced_at BIGINT;
ALTER TABLE templates ADD COLUMN sub_category TEXT;

-- A file of a message: fetched from Meta for what customers send (pending until it is stored),
-- or uploaded by the tenant to send. The bytes live in the media storage under `storage_key`
-- (addressed by their SHA-256, so a file sent many times is kept once); rows hold what is known.
CREATE TABLE media (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    connection_id   TEXT NOT NULL REFERENCES connections (id),
    direction       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    meta_media_id   TEXT,
    mime_type       TEXT,
    file_size       BIGINT,
    -- Lower-case hex of the stored bytes; NULL until stored.
    sha256          TEXT,
    -- The hash Meta announced in the webhook, as Meta wrote it (base64), checked on download.
    meta_sha256     TEXT,
    filename        TEXT,
    storage_key     TEXT,
    status          TEXT NOT NULL,
    failure_reason  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX media_tenant ON media (tenant_id, created_at);

-- The file a message carries (inbound media, or an upload sent by id).
-- No foreign key: a batch stores its messages first and then the media rows of those that were new.
ALTER TABLE messages ADD COLUMN media_id TEXT;
CREATE INDEX messages_media ON messages (media_id) WHERE media_id IS NOT NULL;
