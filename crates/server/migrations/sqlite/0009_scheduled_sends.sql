-- Scheduled sends: a message queued now that leaves at a set time. Its window, and for a
-- marketing template the contact's opt-in, are checked again when it leaves, so the category is
-- kept with it.

-- When the message is to leave (Unix ms); NULL for a send that leaves at once.
ALTER TABLE messages ADD COLUMN send_at BIGINT;
-- The template's category as Meta had it when the send was queued (MARKETING, UTILITY,
-- AUTHENTICATION); NULL for messages that are not templates.
ALTER TABLE messages ADD COLUMN template_category TEXT;
