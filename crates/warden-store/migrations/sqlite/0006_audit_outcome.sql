-- The outcome of an access decision ('allow' or 'deny'), copied out of the
-- body like `type` and `time`, so that activity can be counted by outcome
-- without reading bodies (AuditStore::audit_activity). NULL for every other
-- type. It is not personal data: erasure leaves it.
ALTER TABLE audit_events ADD COLUMN outcome TEXT CHECK (outcome IS NULL OR outcome IN ('allow', 'deny'));

-- Earlier events, from their bodies (canonical JSON with a top-level
-- "decision"). A body erased before this migration is gone, and its event
-- keeps a NULL outcome.
UPDATE audit_events
SET outcome = CASE json_extract(CAST(body AS TEXT), '$.decision')
                  WHEN 'allow' THEN 'allow'
                  WHEN 'deny' THEN 'deny'
              END
WHERE type = 'access_decision' AND body IS NOT NULL AND json_valid(CAST(body AS TEXT));

-- The outermost actor of a delegation (an agent acting for the subject),
-- for search by actor; who asked, for an erasure. NULL when nobody acted
-- for anybody, which the partial index leaves out.
ALTER TABLE audit_events ADD COLUMN actor TEXT;

UPDATE audit_events
SET actor = CASE type
                WHEN 'approval' THEN json_extract(CAST(body AS TEXT), '$.requester_actors[0]')
                WHEN 'erasure' THEN nullif(json_extract(CAST(body AS TEXT), '$.actor'), '')
                ELSE json_extract(CAST(body AS TEXT), '$.actor_chain[0]')
            END
WHERE type IN ('access_decision', 'registry_change', 'token_exchanged', 'approval', 'erasure')
  AND body IS NOT NULL AND json_valid(CAST(body AS TEXT));

CREATE INDEX audit_events_actor ON audit_events (actor) WHERE actor IS NOT NULL;

-- Activity counts (per time bucket, type and outcome) read only this index:
-- it replaces the plain time index, which range queries still lead with.
DROP INDEX audit_events_time;
CREATE INDEX audit_events_time ON audit_events (time, type, outcome);
