-- The outcome of an access decision ('allow' or 'deny'), copied out of the
-- body like `type` and `time`, so that activity can be counted by outcome
-- without reading bodies (AuditStore::audit_activity). NULL for every other
-- type. It is not personal data: erasure leaves it.
ALTER TABLE audit_events ADD COLUMN outcome TEXT CHECK (outcome IS NULL OR outcome IN ('allow', 'deny'));

-- Earlier events, from their bodies (RFC 8785 canonical JSON: no spaces,
-- a top-level "decision"). Matched as text, not parsed: PostgreSQL's jsonb
-- refuses a \u0000 escape that a body may hold, and inside a JSON string a
-- quote is always escaped, so `"decision":"deny"` can only be the member
-- itself. A body erased before this migration is gone, and its event keeps
-- a NULL outcome.
UPDATE audit_events
SET outcome = CASE
                  WHEN strpos(convert_from(body, 'UTF8'), '"decision":"allow"') > 0 THEN 'allow'
                  WHEN strpos(convert_from(body, 'UTF8'), '"decision":"deny"') > 0 THEN 'deny'
              END
WHERE type = 'access_decision' AND body IS NOT NULL;

-- The outermost actor of a delegation (an agent acting for the subject),
-- for search by actor; who asked, for an erasure. NULL when nobody acted
-- for anybody, which the partial index leaves out. Matched as text like
-- the outcome (a body jsonb would refuse, or a damaged one, must not stop
-- the migration); a name holding a JSON escape is left NULL.
ALTER TABLE audit_events ADD COLUMN actor TEXT;

UPDATE audit_events
SET actor = CASE type
                WHEN 'approval' THEN substring(convert_from(body, 'UTF8') from '"requester_actors":\["([^"\\]*)"')
                WHEN 'erasure' THEN nullif(substring(convert_from(body, 'UTF8') from '"actor":"([^"\\]*)"'), '')
                ELSE substring(convert_from(body, 'UTF8') from '"actor_chain":\["([^"\\]*)"')
            END
WHERE type IN ('access_decision', 'registry_change', 'token_exchanged', 'approval', 'erasure')
  AND body IS NOT NULL;

CREATE INDEX audit_events_actor ON audit_events (actor) WHERE actor IS NOT NULL;

-- Activity counts (per time bucket, type and outcome) read only this index:
-- it replaces the plain time index, which range queries still lead with.
DROP INDEX audit_events_time;
CREATE INDEX audit_events_time ON audit_events (time, type, outcome);
