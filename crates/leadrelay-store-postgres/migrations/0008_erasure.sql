-- Erasure of a person (SPEC §7). A tombstone per erasure, holding no personal data: the keyed
-- hash of the erased address, when, who asked, and for which publisher (NULL: every publisher).
-- A later lead with that address is stored, flagged `previously_erased`, not silently
-- brought back.
CREATE TABLE erasures (
    id            TEXT COLLATE "C" PRIMARY KEY,
    publisher_id  TEXT COLLATE "C",
    email_hash    TEXT COLLATE "C" NOT NULL,
    erased_at     BIGINT NOT NULL,
    requested_by  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX erasures_by_hash ON erasures(email_hash);

ALTER TABLE leads ADD COLUMN previously_erased BOOLEAN NOT NULL DEFAULT FALSE;
