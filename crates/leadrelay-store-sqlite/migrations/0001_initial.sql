-- Publishers, their offers, destinations and ingest keys; leads and their outbox.
CREATE TABLE publishers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE offers (
    id            TEXT PRIMARY KEY,
    publisher_id  TEXT NOT NULL REFERENCES publishers(id),
    title         TEXT NOT NULL,
    offer_type    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX offers_by_publisher ON offers(publisher_id, title);

CREATE TABLE destinations (
    id                    TEXT PRIMARY KEY,
    publisher_id          TEXT NOT NULL REFERENCES publishers(id),
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    settings              TEXT NOT NULL,
    offers                TEXT,            -- JSON array of offer ids; NULL = every offer
    enabled               INTEGER NOT NULL,
    disabled_reason       TEXT,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    failing_since         INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX destinations_by_publisher ON destinations(publisher_id);

CREATE TABLE ingest_keys (
    id            TEXT PRIMARY KEY,
    key_hash      TEXT NOT NULL UNIQUE,
    publisher_id  TEXT NOT NULL REFERENCES publishers(id),
    offer_id      TEXT,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT;

CREATE TABLE leads (
    id                TEXT PRIMARY KEY,
    publisher_id      TEXT NOT NULL,
    offer_id          TEXT,
    offer_title       TEXT,
    source            TEXT NOT NULL,
    action            TEXT,
    raw_lead_source   TEXT,
    stage             TEXT NOT NULL,
    first_name        TEXT,
    last_name         TEXT,
    email             TEXT,
    phone             TEXT,
    country           TEXT,
    company           TEXT,
    title             TEXT,
    description       TEXT,
    campaign          TEXT,
    is_test           INTEGER NOT NULL,
    pii_withheld      INTEGER NOT NULL,
    received_at       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX leads_by_publisher ON leads(publisher_id, id);
CREATE INDEX leads_by_received ON leads(publisher_id, received_at);

-- The outbox. A pending row is due when next_attempt_at <= now; a claim moves next_attempt_at
-- to the end of its lease, so an expired lease simply makes the row due again. A NULL
-- next_attempt_at on a pending row means its destination is disabled (paused).
CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    lead_id           TEXT NOT NULL REFERENCES leads(id),
    destination_id    TEXT NOT NULL REFERENCES destinations(id),
    publisher_id      TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    lease_token       TEXT,
    last_error        TEXT,
    lead_received_at  INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (lead_id, destination_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_destination ON deliveries(destination_id, status, lead_received_at);
CREATE INDEX deliveries_by_publisher ON deliveries(publisher_id, id);

CREATE TABLE attempts (
    delivery_id   TEXT NOT NULL,
    number        INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    status_code   INTEGER,
    error_class   TEXT,
    message       TEXT,
    excerpt       TEXT,
    PRIMARY KEY (delivery_id, number)
) STRICT, WITHOUT ROWID;
