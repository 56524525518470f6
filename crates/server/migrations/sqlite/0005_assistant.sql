-- The assistant: per-connection auto-reply settings, and who handles each conversation.

-- One row per connection that has been configured; a connection without one answers with the
-- defaults (no model, no FAQ: the polite fallback) when auto_reply is on.
CREATE TABLE assistant_settings (
    connection_id       TEXT PRIMARY KEY REFERENCES connections (id),
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    system_prompt       TEXT NOT NULL DEFAULT '',
    business_facts      TEXT NOT NULL DEFAULT '',
    -- JSON array of {"question", "answer", "keywords": [...]}.
    faqs                TEXT NOT NULL DEFAULT '[]',
    -- A language code, or NULL to answer in the customer's language.
    reply_language      TEXT,
    -- Any OpenAI-compatible endpoint; the key is sealed by the vault.
    provider_base_url   TEXT,
    provider_model      TEXT,
    provider_api_key    BLOB,
    history_length      INTEGER NOT NULL DEFAULT 12,
    -- JSON {"time_zone", "days": {"mon": [["09:00","18:00"]], ...}}, or NULL for always.
    hours               TEXT,
    -- JSON array of phrases that hand the conversation to a person.
    handoff_phrases     TEXT NOT NULL DEFAULT '["agent","human","person"]',
    -- How long the assistant stays quiet on a conversation a person took over.
    pause_minutes       INTEGER NOT NULL DEFAULT 720,
    model_timeout_ms    INTEGER NOT NULL DEFAULT 20000,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- Until when the assistant leaves this conversation to people (NULL: it does not), and why.
ALTER TABLE conversations ADD COLUMN assistant_paused_until INTEGER;
ALTER TABLE conversations ADD COLUMN assistant_paused_reason TEXT;

-- Who queued an outbound message: 'person' (dashboard or API), 'assistant' or 'automation'.
ALTER TABLE messages ADD COLUMN sent_by TEXT;
