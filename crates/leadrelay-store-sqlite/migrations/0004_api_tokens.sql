-- API tokens: per publisher with scopes, or marketplace-wide. Only the SHA-256 is kept.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    publisher_id  TEXT REFERENCES publishers(id),
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT;
