-- The governance registry (see src/registry.rs). Times are Unix seconds;
-- lists and metrics are JSON text. Lineage nodes are `dataset:NAME@V` /
-- `model:NAME@V` strings (warden_registry::NodeRef).

-- Datasets are soft-deleted: the row, its versions and its lineage stay,
-- and the name is never reused.
CREATE TABLE datasets (
    name             TEXT PRIMARY KEY NOT NULL,
    owner            TEXT NOT NULL,
    classification   TEXT NOT NULL CHECK (classification IN ('public', 'internal', 'confidential', 'pii')),
    allowed_purposes TEXT NOT NULL,
    tenant           TEXT,
    description      TEXT,
    created_by       TEXT NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    deleted_at       BIGINT
);

CREATE TABLE dataset_versions (
    dataset    TEXT NOT NULL REFERENCES datasets (name),
    version    BIGINT  NOT NULL CHECK (version >= 1),
    digest     TEXT NOT NULL,
    size       BIGINT  NOT NULL CHECK (size >= 0),
    uri        TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (dataset, version)
);

CREATE TABLE models (
    name        TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    tenant      TEXT,
    description TEXT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE model_versions (
    model            TEXT NOT NULL REFERENCES models (name),
    version          BIGINT  NOT NULL CHECK (version >= 1),
    digest           TEXT NOT NULL,
    uri              TEXT NOT NULL,
    framework        TEXT,
    metrics          TEXT NOT NULL,
    training_run     TEXT,
    stage            TEXT NOT NULL CHECK (stage IN ('development', 'staging', 'production', 'archived')),
    created_by       TEXT NOT NULL,
    created_at       BIGINT  NOT NULL,
    stage_changed_at BIGINT  NOT NULL,
    PRIMARY KEY (model, version)
);

-- A model has at most one production version, whatever the code does.
CREATE UNIQUE INDEX model_versions_one_production ON model_versions (model) WHERE stage = 'production';

-- `to_node` was made from `from_node`. Edges are written with the version
-- they lead to, whose parents already exist, so the graph is acyclic.
-- The primary key serves downstream walks, the index upstream ones.
CREATE TABLE lineage_edges (
    from_node    TEXT NOT NULL,
    to_node      TEXT NOT NULL,
    training_run TEXT,
    recorded_by  TEXT NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (from_node, to_node)
);
CREATE INDEX lineage_edges_to ON lineage_edges (to_node);

-- Every stage change, in order (`id`); rollbacks read it to find the
-- previous production version.
CREATE TABLE stage_changes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model      TEXT NOT NULL,
    version    BIGINT  NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage   TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    reason     TEXT NOT NULL,
    request_id TEXT,
    changed_at BIGINT  NOT NULL,
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
CREATE INDEX stage_changes_model ON stage_changes (model, id);

CREATE TABLE promotion_requests (
    id               TEXT PRIMARY KEY NOT NULL,
    model            TEXT NOT NULL,
    version          BIGINT  NOT NULL,
    requested_by     TEXT NOT NULL,
    requester_actors TEXT NOT NULL,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'approved', 'rejected')),
    required         BIGINT  NOT NULL CHECK (required >= 1),
    approval_ttl     BIGINT  NOT NULL CHECK (approval_ttl >= 0),
    created_at       BIGINT  NOT NULL,
    closed_at        BIGINT,
    CHECK ((status = 'open') = (closed_at IS NULL)),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
-- At most one open request per version.
CREATE UNIQUE INDEX promotion_requests_one_open ON promotion_requests (model, version) WHERE status = 'open';
CREATE INDEX promotion_requests_created ON promotion_requests (created_at, id);
CREATE INDEX promotion_requests_model ON promotion_requests (model, created_at);

-- One ballot per voter and request; a renewed approval replaces the expired one.
CREATE TABLE ballots (
    request_id TEXT NOT NULL REFERENCES promotion_requests (id),
    voter      TEXT NOT NULL,
    vote       TEXT NOT NULL CHECK (vote IN ('approve', 'reject')),
    reason     TEXT NOT NULL,
    cast_at    BIGINT  NOT NULL,
    PRIMARY KEY (request_id, voter)
);
