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
