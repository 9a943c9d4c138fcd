-- Leases: one replica at a time does a named job (signing audit
-- checkpoints), holding the lease until `until` (Unix seconds) and
-- renewing it while it lives; another takes over once it lapses.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL
);
