-- The audit queue (see src/audit.rs, "Queue and integration"). An action is
-- acknowledged once its event is here, durable; the sequencer later moves
-- events into audit_events with their log indices, tree nodes and query
-- indexes, deleting them from here in the same transaction. A narrow table
-- with no secondary index and no shared row: replicas insert side by side
-- (a sequence hands out `seq` without waiting for anyone's commit).
-- `queued_at` is milliseconds since the Unix epoch, for the integration lag.
CREATE TABLE audit_queue (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queued_at BIGINT NOT NULL,
    time      BIGINT NOT NULL,
    type      TEXT NOT NULL,
    subject   TEXT,
    resource  TEXT,
    outcome   TEXT,
    actor     TEXT,
    body      BYTEA NOT NULL,
    salt      BYTEA NOT NULL CHECK (octet_length(salt) = 32),
    leaf_hash BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32)
);
