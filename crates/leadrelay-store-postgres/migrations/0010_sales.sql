-- The sales workspace (SPEC §6): each publisher's sales settings, the opportunities its leads
-- open, their leads, qualification checklists and follow-up logs. Opportunities are opened and
-- joined by the lead insert itself, in the lead's transaction, so every index here is paid for
-- on the ingest path: each one below serves a named query and holds only the rows it needs.

-- One row per publisher that saved its settings; a publisher without one gets the defaults
-- (`SalesSettings::default`), so the bench's publishers cost ingest a primary-key miss.
-- `rr_last_owner` is round-robin's position: the person who got the last opportunity (the next
-- one goes to the person after them in `team`). It is a person, not an index, so a team saved
-- again in another order keeps its turn when the person is still on it.
CREATE TABLE sales_settings (
    publisher_id           TEXT COLLATE "C" PRIMARY KEY REFERENCES publishers(id),
    team                   TEXT COLLATE "C" NOT NULL,      -- JSON array of user ids, in round-robin order
    round_robin            BOOLEAN NOT NULL,
    max_open_per_owner     BIGINT,            -- NULL: no cap
    checklist              TEXT COLLATE "C" NOT NULL,      -- JSON array of item names, in order
    first_touch_sla_hours  BIGINT NOT NULL,
    follow_up_min          BIGINT NOT NULL,
    follow_up_max          BIGINT NOT NULL,
    time_zone              TEXT COLLATE "C" NOT NULL,
    business_days          TEXT COLLATE "C",               -- JSON array 1..7 (Monday = 1); NULL: no business hours
    business_start_minute  BIGINT,
    business_end_minute    BIGINT,
    rr_last_owner          TEXT COLLATE "C"
);

-- An opportunity: one customer's interest in one offer, keyed by (publisher_id, id): ids are
-- generated from `opened_at` (time-ordered UUIDv7), so a publisher's list, newest first, and the
-- KPI scan of a period are both range reads of the primary key, with no second index for either
-- (the KPI query bounds `id` by the period and checks `opened_at` too).
--
-- `due_at` is derived, never written: the first-touch deadline while nobody has touched it, then
-- the next-touch date, and NULL once closed, so no update can leave the due lists wrong.
-- `touches` counts the calls, e-mails and meetings logged, so the KPIs never read the log.
-- `owner_notice_pending`: an owner was assigned and not yet told (`take_sales_notices`).
-- No personal data: the customer's name and address live (sealed) on its leads only.
CREATE TABLE opportunities (
    publisher_id          TEXT COLLATE "C" NOT NULL REFERENCES publishers(id),
    id                    TEXT COLLATE "C" NOT NULL,
    customer_id           TEXT COLLATE "C" NOT NULL REFERENCES customers(id),
    offer_id              TEXT COLLATE "C",
    stage                 TEXT COLLATE "C" NOT NULL,
    status                TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('new', 'contacted', 'qualified', 'won', 'lost', 'disqualified')),
    reason                TEXT COLLATE "C",
    owner_id              TEXT COLLATE "C" REFERENCES users(id),
    source                TEXT COLLATE "C" NOT NULL,
    action                TEXT COLLATE "C",
    opened_at             BIGINT NOT NULL,
    first_touch_due_at    BIGINT NOT NULL,
    first_touched_at      BIGINT,
    qualified_at          BIGINT,
    next_touch_at         BIGINT,
    sla_notified_at       BIGINT,
    owner_notice_pending  BOOLEAN NOT NULL DEFAULT FALSE,
    touches               BIGINT NOT NULL DEFAULT 0,
    updated_at            BIGINT NOT NULL,
    version               BIGINT NOT NULL,
    due_at                BIGINT GENERATED ALWAYS AS (
        CASE WHEN status IN ('won', 'lost', 'disqualified') THEN NULL
             WHEN first_touched_at IS NULL THEN first_touch_due_at
             ELSE next_touch_at END) STORED,
    PRIMARY KEY (publisher_id, id)
);

-- Every way in names an opportunity by its id alone.
CREATE UNIQUE INDEX opportunities_by_id ON opportunities(id);
-- The lead insert's join: the latest opportunity of (customer, offer); erasure by customer.
CREATE INDEX opportunities_by_customer ON opportunities(customer_id, offer_id);
-- Lists by status, newest first.
CREATE INDEX opportunities_by_status ON opportunities(publisher_id, status);
-- Lists by owner and of the unassigned ones, newest first.
CREATE INDEX opportunities_by_owner ON opportunities(publisher_id, owner_id);
-- Round-robin's cap: a person's open opportunities, counted on this index alone.
CREATE INDEX opportunities_open_by_owner ON opportunities(owner_id, status) WHERE owner_id IS NOT NULL;
-- Due and overdue lists: open ones with a due time only.
CREATE INDEX opportunities_due ON opportunities(publisher_id, due_at) WHERE due_at IS NOT NULL;
-- SLA breaches still to tell, across publishers: rows leave it at the first touch or the notice,
-- so it holds the opportunities nobody has reached yet, not the history.
CREATE INDEX opportunities_sla_watch ON opportunities(due_at)
    WHERE first_touched_at IS NULL AND sla_notified_at IS NULL;
-- Owners still to tell: only the rows waiting for a notice.
CREATE INDEX opportunities_owner_notices ON opportunities(owner_notice_pending) WHERE owner_notice_pending;

-- The leads of an opportunity. A lead is in one opportunity at most (the key); the second index
-- lists an opportunity's leads oldest first. No foreign keys, as for `lead_terms`: the row is
-- written in the lead's own transaction, just after it.
CREATE TABLE opportunity_leads (
    lead_id         TEXT COLLATE "C" PRIMARY KEY,
    opportunity_id  TEXT COLLATE "C" NOT NULL,
    received_at     BIGINT NOT NULL
);
CREATE INDEX opportunity_leads_by_opportunity ON opportunity_leads(opportunity_id, received_at);

-- Ticked (or unticked) checklist items; an item never touched has no row and shows unticked.
-- `actor` is an audit actor id, never a name.
CREATE TABLE opportunity_checklist (
    opportunity_id  TEXT COLLATE "C" NOT NULL REFERENCES opportunities(id),
    item            TEXT COLLATE "C" NOT NULL,
    done            BOOLEAN NOT NULL,
    actor           TEXT COLLATE "C" NOT NULL,
    at              BIGINT NOT NULL,
    PRIMARY KEY (opportunity_id, item)
);

-- The follow-up log. `outcome` and `note` are free text a person wrote about the customer:
-- sealed like a lead's personal data, re-sealed by key rotation, removed by an erasure.
CREATE TABLE activities (
    id              TEXT COLLATE "C" PRIMARY KEY,
    opportunity_id  TEXT COLLATE "C" NOT NULL REFERENCES opportunities(id),
    kind            TEXT COLLATE "C" NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'note')),
    outcome         TEXT COLLATE "C",
    note            TEXT COLLATE "C",
    next_touch_at   BIGINT,
    actor           TEXT COLLATE "C" NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX activities_by_opportunity ON activities(opportunity_id, at);

-- The KPIs' destination health reads every delivery of a period, per destination: the index the
-- outbox already keeps by (destination, status, lead arrival) now carries the attempts and the
-- time of the last change too, so that read never visits the table (a third of the time). Same
-- name and prefix, so the outbox's own seeks and counts are unchanged.
DROP INDEX deliveries_by_destination;
CREATE INDEX deliveries_by_destination
    ON deliveries(destination_id, status, lead_received_at, attempts, updated_at);

-- The KPIs leave test leads' deliveries out; this finds a publisher's test leads (few) without
-- reading its real ones.
CREATE INDEX leads_test_by_publisher ON leads(publisher_id, received_at) WHERE is_test;
