-- OAuth clients (see src/oauth.rs). Lists are JSON arrays of strings.
-- Secret clients keep only HMAC-SHA256(pepper, secret); private_key_jwt clients their public JWKS.
CREATE TABLE oauth_clients (
    client_id    TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('service', 'agent')),
    grants       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    roles        TEXT NOT NULL,
    audiences    TEXT NOT NULL,
    auth_method  TEXT NOT NULL CHECK (auth_method IN ('secret', 'private_key_jwt')),
    secret_hash  BLOB CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    jwks         TEXT,
    disabled     INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    CHECK ((auth_method = 'secret') = (secret_hash IS NOT NULL)),
    CHECK ((auth_method = 'private_key_jwt') = (jwks IS NOT NULL))
) STRICT;

-- Refresh-token families: one per original grant; revoking one revokes every token in it.
CREATE TABLE refresh_families (
    id          TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);
CREATE INDEX refresh_families_revoked ON refresh_families (revoked_at);

-- Refresh tokens, by SHA-256 of the opaque token. `grant_data` is the JSON
-- the next access token is built from (scope, audience, roles, act, tenant).
-- `access_jti`/`access_exp`: the access token issued with it, revoked with the family.
CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
    family      TEXT NOT NULL REFERENCES refresh_families (id),
    seq         INTEGER NOT NULL,
    grant_data  TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    access_jti  TEXT NOT NULL,
    access_exp  INTEGER NOT NULL,
    used_at     INTEGER,
    grace_used  INTEGER NOT NULL DEFAULT 0 CHECK (grace_used IN (0, 1)),
    UNIQUE (family, seq)
) STRICT;

-- Revoked access-token ids, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
CREATE INDEX revoked_tokens_time ON revoked_tokens (revoked_at);

-- private_key_jwt assertion ids seen, single use within their lifetime.
CREATE TABLE client_assertions (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
