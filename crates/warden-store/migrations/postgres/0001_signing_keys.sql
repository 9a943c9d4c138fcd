-- Signing keys: public JWK in clear, private key sealed (AES-256-GCM envelope).
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL UNIQUE,
    alg            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    retired_at     BIGINT,
    public_jwk     TEXT NOT NULL,
    sealed_private BYTEA NOT NULL
);

-- One row per setting; `master_key_fingerprint` ties the database to its master key.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
