-- People sign in (docs/sign-in.md).
--
-- Public clients (a CLI, a notebook): kind `public`, no secret
-- (auth_method `none`), and the redirect URIs the authorization-code flow
-- may return to. SQLite cannot alter a CHECK, so the table is rebuilt
-- with every row kept.
CREATE TABLE oauth_clients_v9 (
    client_id     TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('service', 'agent', 'public')),
    grants        TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    roles         TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    auth_method   TEXT NOT NULL CHECK (auth_method IN ('secret', 'private_key_jwt', 'none')),
    secret_hash   BLOB CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    jwks          TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    tenant        TEXT,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    CHECK ((auth_method = 'secret') = (secret_hash IS NOT NULL)),
    CHECK ((auth_method = 'private_key_jwt') = (jwks IS NOT NULL)),
    CHECK ((kind = 'public') = (auth_method = 'none'))
) STRICT;
INSERT INTO oauth_clients_v9 (client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, last_used_at, tenant)
    SELECT client_id, kind, grants, scopes, roles, audiences, auth_method, secret_hash, jwks, disabled, created_at, updated_at, last_used_at, tenant FROM oauth_clients;
DROP TABLE oauth_clients;
ALTER TABLE oauth_clients_v9 RENAME TO oauth_clients;

-- Authorization codes (RFC 6749 §4.1 with PKCE, RFC 7636), by SHA-256 of
-- the code. Single use: `used_at` is set by the one redemption that wins;
-- `family` is the refresh-token family that redemption started, revoked
-- if the code is presented again. `grant_data` is the JSON the tokens are
-- built from (subject, scopes, roles, audience).
CREATE TABLE authorization_codes (
    code_hash      BLOB PRIMARY KEY NOT NULL CHECK (length(code_hash) = 32),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    grant_data     TEXT NOT NULL,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    family         TEXT
) STRICT;
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- Device authorization grants (RFC 8628), by SHA-256 of the device code;
-- the user code is unique while pending. `status`: pending, approved
-- (with `grant_data`), denied, or issued (the token was handed out).
CREATE TABLE device_grants (
    device_hash   BLOB PRIMARY KEY NOT NULL CHECK (length(device_hash) = 32),
    user_code     TEXT NOT NULL UNIQUE,
    client_id     TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    grant_data    TEXT,
    subject       TEXT,
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    poll_interval INTEGER NOT NULL,
    last_poll_at  INTEGER,
    CHECK ((status IN ('approved', 'issued')) = (grant_data IS NOT NULL))
) STRICT;
CREATE INDEX device_grants_expiry ON device_grants (expires_at);
