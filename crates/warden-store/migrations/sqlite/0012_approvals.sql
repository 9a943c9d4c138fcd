-- Human approval of agent actions (docs/approvals.md): backchannel
-- authentication requests (OpenID CIBA) with the RFC 9396 authorization
-- details a person approves, by the public id `id` (shown to approvers,
-- in the audit log) and the SHA-256 of the client's `auth_req_id`.
--
-- `request` is the JSON of what is asked and for whom (subject, agent,
-- person acted for, approver groups, deciding policies, details, the
-- grant the single-use token is built from, delivery mode). `status`:
-- pending → approved | denied; approved → issued (the token was handed
-- out) → used (the gateway accepted it, once); pending, approved and
-- issued → expired. `usable_until` is set by the approval.
CREATE TABLE approvals (
    id             TEXT PRIMARY KEY NOT NULL,
    auth_req_hash  BLOB NOT NULL UNIQUE CHECK (length(auth_req_hash) = 32),
    client_id      TEXT NOT NULL,
    request        TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'issued', 'used', 'expired')),
    decided_by     TEXT,
    decided_roles  TEXT,
    reason         TEXT,
    decided_at     INTEGER,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    token_ttl      INTEGER NOT NULL CHECK (token_ttl > 0),
    poll_interval  INTEGER NOT NULL,
    last_poll_at   INTEGER,
    usable_until   INTEGER,
    token_jti      TEXT,
    used_at        INTEGER,
    CHECK ((status = 'pending') OR (status = 'expired') OR (decided_by IS NOT NULL AND decided_at IS NOT NULL)),
    CHECK ((status IN ('issued', 'used')) = (token_jti IS NOT NULL) OR status = 'expired')
) STRICT;
CREATE INDEX approvals_open ON approvals (status, expires_at);
CREATE INDEX approvals_created ON approvals (created_at);
