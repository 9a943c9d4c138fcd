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
    secret_hash  BYTEA CHECK (secret_hash IS NULL OR octet_length(secret_hash) = 32),
    jwks         TEXT,
    disabled     BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    CHECK ((auth_method = 'secret') = (secret_hash IS NOT NULL)),
    CHECK ((auth_method = 'private_key_jwt') = (jwks IS NOT NULL))
);

-- Refresh-token families: one per original grant; revoking one revokes every token in it.
CREATE TABLE refresh_families (
    id          TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);
CREATE INDEX refresh_families_revoked ON refresh_families (revoked_at);

-- Refresh tokens, by SHA-256 of the opaque token. `grant_data` is the JSON
-- the next access token is built from (scope, audience, roles, act, tenant).
-- `access_jti`/`access_exp`: the access token issued with it, revoked with the family.
CREATE TABLE refresh_tokens (
    token_hash  BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(token_hash) = 32),
    family      TEXT NOT NULL REFERENCES refresh_families (id),
    seq         BIGINT NOT NULL,
    grant_data  TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    access_jti  TEXT NOT NULL,
    access_exp  BIGINT NOT NULL,
    used_at BIGINT,
    grace_used  BIGINT NOT NULL DEFAULT 0 CHECK (grace_used IN (0, 1)),
    UNIQUE (family, seq)
);

-- Revoked access-token ids, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
CREATE INDEX revoked_tokens_time ON revoked_tokens (revoked_at);

-- private_key_jwt assertion ids seen, single use within their lifetime.
CREATE TABLE client_assertions (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
