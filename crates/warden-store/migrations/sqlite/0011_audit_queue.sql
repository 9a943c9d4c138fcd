-- The audit queue (see src/audit.rs, "Queue and integration"). An action is
-- acknowledged once its event is here, durable; the sequencer later moves
-- events, oldest first, into audit_events with their log indices, tree
-- nodes and query indexes, deleting them from here in the same
-- transaction. A narrow table with no secondary index: a queued event
-- costs one row and the primary key. `seq` is never reused
-- (AUTOINCREMENT), so a receipt names one event forever; `queued_at` is
-- milliseconds since the Unix epoch, for the integration lag.
CREATE TABLE audit_queue (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    queued_at INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    type      TEXT NOT NULL,
    subject   TEXT,
    resource  TEXT,
    outcome   TEXT,
    actor     TEXT,
    body      BLOB NOT NULL,
    salt      BLOB NOT NULL CHECK (length(salt) = 32),
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
);
