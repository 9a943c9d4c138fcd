-- The audit log (see src/audit.rs). One row per leaf, indices from 0 without gaps.
-- `type`, `subject`, `resource` and `time` are copied out of the body for queries;
-- body and salt are NULL once erased, the leaf hash stays.
CREATE TABLE audit_events (
    idx            BIGINT PRIMARY KEY CHECK (idx >= 0),
    time           BIGINT NOT NULL,
    type           TEXT NOT NULL,
    subject        TEXT,
    resource       TEXT,
    body           BYTEA,
    salt           BYTEA CHECK (salt IS NULL OR octet_length(salt) = 32),
    leaf_hash      BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32),
    erased_at      BIGINT,
    erasure_reason TEXT,
    CHECK ((body IS NULL) = (salt IS NULL)),
    CHECK ((erased_at IS NULL) = (erasure_reason IS NULL)),
    CHECK ((body IS NULL) = (erased_at IS NOT NULL))
);

-- (column, idx): a filtered page `WHERE subject = $1 AND idx >= $2 ORDER BY idx LIMIT $3` is one range scan.
CREATE INDEX audit_events_type ON audit_events (type, idx);
CREATE INDEX audit_events_subject ON audit_events (subject, idx);
CREATE INDEX audit_events_resource ON audit_events (resource, idx);
CREATE INDEX audit_events_time ON audit_events (time);

-- The root of every complete perfect subtree of level >= 1 (level 0 is audit_events.leaf_hash).
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx   BIGINT NOT NULL CHECK (idx >= 0),
    hash  BYTEA NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- One row: the log's size and its frontier (warden_audit::Frontier::to_bytes).
-- Appends lock it (SELECT ... FOR UPDATE), which serialises replicas.
CREATE TABLE audit_state (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    size     BIGINT NOT NULL CHECK (size >= 0),
    frontier BYTEA NOT NULL
);

-- The empty log: size 0, a frontier of eight zero bytes.
INSERT INTO audit_state (id, size, frontier) VALUES (0, 0, '\x0000000000000000'::bytea);

-- Signed checkpoints (C2SP signed notes), by tree size.
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY CHECK (size >= 0),
    time BIGINT NOT NULL,
    note TEXT NOT NULL
);
