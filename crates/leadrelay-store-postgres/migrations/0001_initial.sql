-- Publishers, their offers, destinations and ingest keys; leads and their outbox.
CREATE TABLE publishers (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE offers (
    id            TEXT COLLATE "C" PRIMARY KEY,
    publisher_id  TEXT COLLATE "C" NOT NULL REFERENCES publishers(id),
    title         TEXT COLLATE "C" NOT NULL,
    offer_type    TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX offers_by_publisher ON offers(publisher_id, title);

CREATE TABLE destinations (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    publisher_id          TEXT COLLATE "C" NOT NULL REFERENCES publishers(id),
    name                  TEXT COLLATE "C" NOT NULL,
    kind                  TEXT COLLATE "C" NOT NULL,
    settings              TEXT COLLATE "C" NOT NULL,
    offers                TEXT COLLATE "C",            -- JSON array of offer ids; NULL = every offer
    enabled               BOOLEAN NOT NULL,
    disabled_reason       TEXT COLLATE "C",
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    failing_since         BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX destinations_by_publisher ON destinations(publisher_id);

CREATE TABLE ingest_keys (
    id            TEXT COLLATE "C" PRIMARY KEY,
    key_hash      TEXT COLLATE "C" NOT NULL UNIQUE,
    publisher_id  TEXT COLLATE "C" NOT NULL REFERENCES publishers(id),
    offer_id      TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE TABLE leads (
    id                TEXT COLLATE "C" PRIMARY KEY,
    publisher_id      TEXT COLLATE "C" NOT NULL,
    offer_id          TEXT COLLATE "C",
    offer_title       TEXT COLLATE "C",
    source            TEXT COLLATE "C" NOT NULL,
    action            TEXT COLLATE "C",
    raw_lead_source   TEXT COLLATE "C",
    stage             TEXT COLLATE "C" NOT NULL,
    first_name        TEXT COLLATE "C",
    last_name         TEXT COLLATE "C",
    email             TEXT COLLATE "C",
    phone             TEXT COLLATE "C",
    country           TEXT COLLATE "C",
    company           TEXT COLLATE "C",
    title             TEXT COLLATE "C",
    description       TEXT COLLATE "C",
    campaign          TEXT COLLATE "C",
    is_test           BOOLEAN NOT NULL,
    pii_withheld      BOOLEAN NOT NULL,
    received_at       BIGINT NOT NULL
);
CREATE INDEX leads_by_publisher ON leads(publisher_id, id);
CREATE INDEX leads_by_received ON leads(publisher_id, received_at);

-- The outbox. A pending row is due when next_attempt_at <= now; a claim moves next_attempt_at
-- to the end of its lease, so an expired lease simply makes the row due again. A NULL
-- next_attempt_at on a pending row means its destination is disabled (paused).
CREATE TABLE deliveries (
    id                TEXT COLLATE "C" PRIMARY KEY,
    lead_id           TEXT COLLATE "C" NOT NULL REFERENCES leads(id),
    destination_id    TEXT COLLATE "C" NOT NULL REFERENCES destinations(id),
    publisher_id      TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT,
    lease_token       TEXT COLLATE "C",
    last_error        TEXT COLLATE "C",
    lead_received_at  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (lead_id, destination_id)
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_destination ON deliveries(destination_id, status, lead_received_at);
CREATE INDEX deliveries_by_publisher ON deliveries(publisher_id, id);

CREATE TABLE attempts (
    delivery_id   TEXT COLLATE "C" NOT NULL,
    number        BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    status_code   BIGINT,
    error_class   TEXT COLLATE "C",
    message       TEXT COLLATE "C",
    excerpt       TEXT COLLATE "C",
    PRIMARY KEY (delivery_id, number)
);
