-- The people of each publisher's sales team, and their sessions. A user's address and name are
-- personal data: sealed like a lead's, and found by a keyed hash of the normalised address,
-- unique across publishers (an address signs in to one workspace).
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    publisher_id       TEXT NOT NULL REFERENCES publishers(id),
    email_hash         TEXT NOT NULL UNIQUE,
    email              TEXT NOT NULL,
    name               TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    password_hash      TEXT,
    invite_hash        TEXT UNIQUE,
    invite_expires_at  INTEGER,
    created_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX users_by_publisher ON users(publisher_id, created_at);

-- Only the SHA-256 of a session token is kept; an expired row signs nobody in and is removed
-- by the next sign-in's clean-up.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_by_expiry ON sessions(expires_at);
