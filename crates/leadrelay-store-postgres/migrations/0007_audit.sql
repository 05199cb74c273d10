-- The audit log: who did what, when, to which object. Ids, counts and action names only, never
-- personal data. Append-only: the triggers refuse every change and removal, whoever asks.
-- (0006 is kept for the encryption of lead fields.)
CREATE TABLE audit_log (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    at                  BIGINT NOT NULL,
    actor               TEXT COLLATE "C" NOT NULL,
    actor_publisher_id  TEXT COLLATE "C",
    publisher_id        TEXT COLLATE "C",
    action              TEXT COLLATE "C" NOT NULL,
    object_id           TEXT COLLATE "C",
    count               BIGINT,
    text_search         BOOLEAN NOT NULL
);

-- A publisher reads its own entries, newest first.
CREATE INDEX audit_log_by_publisher ON audit_log(publisher_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- TRUNCATE skips row triggers, so it has its own.
CREATE TRIGGER audit_log_is_append_only_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
