-- Personal data and secrets are sealed by leadrelay before they are written (leadrelay_core::vault):
-- the customer columns of `leads`, `raw_lead_source`, `description`, `destinations.settings`,
-- `attempts.message`/`excerpt` and `deliveries.last_error` hold ciphertext from now on, and
-- `customers.match_hash` a keyed hash. Rows written before this version are sealed, and their
-- customers re-hashed, the first time a keyed leadrelay opens the database.

-- The blind index of lead search: keyed hashes of the normalised words of a lead's names, email
-- and company. It holds no plaintext; a search hashes its words the same way. There is no index
-- by lead: whoever removes a lead's terms derives them again from the lead (the terms of a
-- customer are a pure function of it), which keeps ingest to one B-tree insert per term.
-- No foreign key either: the row is written in the lead's own transaction, just after it.
CREATE TABLE lead_terms (
    term     TEXT COLLATE "C" NOT NULL,
    lead_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (term, lead_id)
);
