-- The audit log: who did what, when, to which object. Ids, counts and action names only, never
-- personal data. Append-only: the triggers refuse every change and removal, whoever asks.
-- (0006 is kept for the encryption of lead fields.)
CREATE TABLE audit_log (
    id                  TEXT PRIMARY KEY,
    at                  INTEGER NOT NULL,
    actor               TEXT NOT NULL,
    actor_publisher_id  TEXT,
    publisher_id        TEXT,
    action              TEXT NOT NULL,
    object_id           TEXT,
    count               INTEGER,
    text_search         INTEGER NOT NULL
) STRICT;

-- A publisher reads its own entries, newest first.
CREATE INDEX audit_log_by_publisher ON audit_log(publisher_id, id);

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
