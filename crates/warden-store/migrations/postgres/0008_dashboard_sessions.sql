-- Dashboard sessions: one row per signed-in session token, so a person
-- (or an administrator) can list and end them from any replica. The
-- session itself is still the token; ending one revokes its `jti` through
-- `revoked_tokens`, and `ended_at` records when. Times are Unix seconds.
-- Rows are purged once their token has expired.
CREATE TABLE dashboard_sessions (
    jti TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    client_id TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    ended_at BIGINT
);
CREATE INDEX dashboard_sessions_subject ON dashboard_sessions (subject, expires_at);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
