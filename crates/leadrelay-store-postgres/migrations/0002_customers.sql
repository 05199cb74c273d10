-- Customers: the leads of one buyer at one publisher. The key is a SHA-256 of the normalised
-- email (or name + company + phone), so this table holds no personal data.
CREATE TABLE customers (
    id            TEXT COLLATE "C" PRIMARY KEY,
    publisher_id  TEXT COLLATE "C" NOT NULL REFERENCES publishers(id),
    match_hash    TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (publisher_id, match_hash)
);

ALTER TABLE leads ADD COLUMN customer_id TEXT COLLATE "C";
ALTER TABLE leads ADD COLUMN duplicate_of TEXT COLLATE "C";
ALTER TABLE leads ADD COLUMN merge_reason TEXT COLLATE "C";
CREATE INDEX leads_by_customer ON leads(customer_id, received_at);
