-- Customers: the leads of one buyer at one publisher. The key is a SHA-256 of the normalised
-- email (or name + company + phone), so this table holds no personal data.
CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    publisher_id  TEXT NOT NULL REFERENCES publishers(id),
    match_hash    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (publisher_id, match_hash)
) STRICT;

ALTER TABLE leads ADD COLUMN customer_id TEXT;
ALTER TABLE leads ADD COLUMN duplicate_of TEXT;
ALTER TABLE leads ADD COLUMN merge_reason TEXT;
CREATE INDEX leads_by_customer ON leads(customer_id, received_at);
