-- People sign in (docs/sign-in.md).
--
-- Public clients (a CLI, a notebook): kind `public`, no secret
-- (auth_method `none`), and the redirect URIs the authorization-code flow
-- may return to.
ALTER TABLE oauth_clients DROP CONSTRAINT oauth_clients_kind_check;
ALTER TABLE oauth_clients DROP CONSTRAINT oauth_clients_auth_method_check;
ALTER TABLE oauth_clients ADD CONSTRAINT oauth_clients_kind_check CHECK (kind IN ('service', 'agent', 'public'));
ALTER TABLE oauth_clients ADD CONSTRAINT oauth_clients_auth_method_check CHECK (auth_method IN ('secret', 'private_key_jwt', 'none'));
ALTER TABLE oauth_clients ADD CONSTRAINT oauth_clients_public_check CHECK ((kind = 'public') = (auth_method = 'none'));
ALTER TABLE oauth_clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';

-- Authorization codes (RFC 6749 §4.1 with PKCE, RFC 7636), by SHA-256 of
-- the code. Single use: `used_at` is set by the one redemption that wins;
-- `family` is the refresh-token family that redemption started, revoked
-- if the code is presented again. `grant_data` is the JSON the tokens are
-- built from (subject, scopes, roles, audience).
CREATE TABLE authorization_codes (
    code_hash      BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(code_hash) = 32),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    grant_data     TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    family         TEXT
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- Device authorization grants (RFC 8628), by SHA-256 of the device code;
-- the user code is unique while pending. `status`: pending, approved
-- (with `grant_data`), denied, or issued (the token was handed out).
CREATE TABLE device_grants (
    device_hash   BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(device_hash) = 32),
    user_code     TEXT NOT NULL UNIQUE,
    client_id     TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    grant_data    TEXT,
    subject       TEXT,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    poll_interval BIGINT NOT NULL,
    last_poll_at  BIGINT,
    CHECK ((status IN ('approved', 'issued')) = (grant_data IS NOT NULL))
);
CREATE INDEX device_grants_expiry ON device_grants (expires_at);
