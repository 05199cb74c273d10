-- API tokens: per publisher with scopes, or marketplace-wide. Only the SHA-256 is kept.
CREATE TABLE api_tokens (
    id            TEXT COLLATE "C" PRIMARY KEY,
    token_hash    TEXT COLLATE "C" NOT NULL UNIQUE,
    publisher_id  TEXT COLLATE "C" REFERENCES publishers(id),
    scopes        TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
