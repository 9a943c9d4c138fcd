-- The audit log (see src/audit.rs). One row per leaf, indices from 0 without gaps.
-- `type`, `subject`, `resource` and `time` are copied out of the body for queries;
-- body and salt are NULL once erased, the leaf hash stays.
CREATE TABLE audit_events (
    idx            INTEGER PRIMARY KEY NOT NULL CHECK (idx >= 0),
    time           INTEGER NOT NULL,
    type           TEXT NOT NULL,
    subject        TEXT,
    resource       TEXT,
    body           BLOB,
    salt           BLOB CHECK (salt IS NULL OR length(salt) = 32),
    leaf_hash      BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    erased_at      INTEGER,
    erasure_reason TEXT,
    CHECK ((body IS NULL) = (salt IS NULL)),
    CHECK ((erased_at IS NULL) = (erasure_reason IS NULL)),
    CHECK ((body IS NULL) = (erased_at IS NOT NULL))
) STRICT;

-- Each index ends in the rowid, which is idx: (subject) orders as (subject, idx),
-- so `WHERE subject = ? AND idx >= ? ORDER BY idx LIMIT ?` is one range scan.
CREATE INDEX audit_events_type ON audit_events (type);
CREATE INDEX audit_events_subject ON audit_events (subject);
CREATE INDEX audit_events_resource ON audit_events (resource);
CREATE INDEX audit_events_time ON audit_events (time);

-- The root of every complete perfect subtree of level >= 1 (level 0 is audit_events.leaf_hash).
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- One row: the log's size and its frontier (warden_audit::Frontier::to_bytes). Appends lock it.
CREATE TABLE audit_state (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 0),
    size     INTEGER NOT NULL CHECK (size >= 0),
    frontier BLOB NOT NULL
) STRICT;

-- The empty log: size 0, a frontier of eight zero bytes.
INSERT INTO audit_state (id, size, frontier) VALUES (0, 0, X'0000000000000000');

-- Signed checkpoints (C2SP signed notes), by tree size.
CREATE TABLE audit_checkpoints (
    size INTEGER PRIMARY KEY NOT NULL CHECK (size >= 0),
    time INTEGER NOT NULL,
    note TEXT NOT NULL
) STRICT;
