-- The inbox on SQLite: raw webhook bodies exactly as Meta sent them, with their processing state.
-- It is a database file of its own, with its own writer, so that webhook commits never queue
-- behind the processor's writes to the main database. The PostgreSQL schema keeps it beside the
-- other tables (migrations/postgres/0001_foundation.sql), where writers do not block each other.

CREATE TABLE inbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id    TEXT,
    received_at      BIGINT NOT NULL,
    body             BLOB NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    processed_at     BIGINT
);
CREATE INDEX inbox_pending ON inbox (id) WHERE state = 'pending';
CREATE INDEX inbox_connection_state ON inbox (connection_id, state, id);
