-- Contacts as a CRM keeps them: details, tags, custom fields, notes, where each came from, and
-- whether they may be sent marketing; the tenant's time zone and extra opt-out words.

ALTER TABLE contacts ADD COLUMN email TEXT;
ALTER TABLE contacts ADD COLUMN notes TEXT;
-- JSON object of the tenant's own fields, each a string.
ALTER TABLE contacts ADD COLUMN custom_fields TEXT NOT NULL DEFAULT '{}';
-- 'inbound' (wrote first), 'outbound' (was written to first), 'api', 'import' or 'dashboard'.
ALTER TABLE contacts ADD COLUMN source TEXT NOT NULL DEFAULT 'inbound';
-- Set once a person (API, dashboard, import) gave the name: WhatsApp's profile name no longer
-- replaces it.
ALTER TABLE contacts ADD COLUMN name_set BIGINT NOT NULL DEFAULT 0;
-- 'unknown', 'opted_in' or 'opted_out'; opted-out contacts get no marketing and no broadcasts.
ALTER TABLE contacts ADD COLUMN opt_in TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE contacts ADD COLUMN opt_in_changed_at BIGINT;
-- Why: the stop word the customer sent, or who marked them.
ALTER TABLE contacts ADD COLUMN opt_in_reason TEXT;
CREATE INDEX contacts_tenant_created ON contacts (tenant_id, created_at, id);

-- A contact's tags, one row each, so a tag finds its contacts through an index. No foreign
-- key: on PostgreSQL its check is planned once per connection, on an empty table as a scan that
-- an import then runs for every tag of every row; deleting a contact deletes its tags.
CREATE TABLE contact_tags (
    contact_id  TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    tag         TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_tenant_tag ON contact_tags (tenant_id, tag, contact_id);

-- Customers who left a sequence with an opt-out word stay out of marketing too.
UPDATE contacts SET opt_in = 'opted_out', opt_in_reason = 'sent an opt-out word to a sequence',
    opt_in_changed_at = updated_at
WHERE id IN (SELECT contact_id FROM sequence_enrollments WHERE stopped_reason = 'opted_out');

-- IANA name; days in analytics and broadcast times are the tenant's.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
-- JSON array of words that opt a customer out, besides the localised defaults.
ALTER TABLE tenants ADD COLUMN opt_out_words TEXT NOT NULL DEFAULT '[]';

-- A CSV import of contacts: how far it got, what it made, and the rows it could not take.
CREATE TABLE contact_imports (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    -- 'running', 'done', or 'failed' (the file could not be read to its end).
    status          TEXT NOT NULL,
    filename        TEXT,
    bytes_read      BIGINT NOT NULL DEFAULT 0,
    rows_read       BIGINT NOT NULL DEFAULT 0,
    created         BIGINT NOT NULL DEFAULT 0,
    updated         BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    -- JSON array of {"line", "reason"}: the first bad rows (the count is in `failed`).
    errors          TEXT NOT NULL DEFAULT '[]',
    failure_reason  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX contact_imports_tenant ON contact_imports (tenant_id, created_at);
