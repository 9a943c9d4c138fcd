-- Signing keys: public JWK in clear, private key sealed (AES-256-GCM envelope).
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    generation     INTEGER NOT NULL UNIQUE,
    alg            TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    activates_at   INTEGER NOT NULL,
    retired_at     INTEGER,
    public_jwk     TEXT NOT NULL,
    sealed_private BLOB NOT NULL
) STRICT;

-- One row per setting; `master_key_fingerprint` ties the database to its master key.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
