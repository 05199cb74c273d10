-- Fair claims: a destination's due deliveries are read per destination (the claim takes a few of
-- each, round-robin), and its leased ones are counted against its concurrency cap.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due_by_destination ON deliveries(destination_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries(destination_id) WHERE status = 'pending' AND lease_token IS NOT NULL;

-- A receiver that answered 429/503 with Retry-After pauses its destination until this time;
-- after it, one delivery probes, and a success clears it.
ALTER TABLE destinations ADD COLUMN throttled_until BIGINT;

-- Settings of the installation shared by every process on this database (the admin token's hash).
CREATE TABLE instance_settings (
    key    TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT COLLATE "C" NOT NULL
);
