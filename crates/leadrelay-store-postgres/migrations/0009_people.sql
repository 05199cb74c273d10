-- The people of each publisher's sales team, and their sessions. A user's address and name are
-- personal data: sealed like a lead's, and found by a keyed hash of the normalised address,
-- unique across publishers (an address signs in to one workspace).
CREATE TABLE users (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    publisher_id       TEXT COLLATE "C" NOT NULL REFERENCES publishers(id),
    email_hash         TEXT COLLATE "C" NOT NULL UNIQUE,
    email              TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C" NOT NULL,
    role               TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    password_hash      TEXT COLLATE "C",
    invite_hash        TEXT COLLATE "C" UNIQUE,
    invite_expires_at  BIGINT,
    created_at         BIGINT NOT NULL
);

CREATE INDEX users_by_publisher ON users(publisher_id, created_at);

-- Only the SHA-256 of a session token is kept; an expired row signs nobody in and is removed
-- by the next sign-in's clean-up.
CREATE TABLE sessions (
    token_hash  TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX sessions_by_expiry ON sessions(expires_at);
