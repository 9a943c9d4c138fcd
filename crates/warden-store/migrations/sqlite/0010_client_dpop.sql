-- Whether an OAuth client must prove possession of a DPoP key (RFC 9449)
-- at the token endpoint (`warden client create --require-dpop`): without
-- a valid `DPoP` proof it gets `invalid_dpop_proof` and no token. 0: a
-- proof is optional, and binds the token when sent.
ALTER TABLE oauth_clients ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0 CHECK (require_dpop IN (0, 1));
