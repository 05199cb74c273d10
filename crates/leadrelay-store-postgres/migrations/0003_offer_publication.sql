-- When an offer was last published, and what each destination answered to its test lead.
ALTER TABLE offers ADD COLUMN published_at BIGINT;
ALTER TABLE offers ADD COLUMN last_validation TEXT COLLATE "C";
