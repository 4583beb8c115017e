-- Logged models (MLflow 3's LoggedModel: a model an experiment produced, with its own artifact
-- folder) and the model registry (registered models, their numbered versions, tags and aliases).
CREATE TABLE logged_models (
    model_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    creation_timestamp_ms INTEGER NOT NULL,
    last_updated_timestamp_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    lifecycle_stage TEXT NOT NULL,
    model_type TEXT,
    source_run_id TEXT
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_timestamp_ms DESC, model_id);

CREATE TABLE logged_model_params (
    model_pk INTEGER NOT NULL REFERENCES logged_models (model_pk),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_pk, key)
) WITHOUT ROWID;

CREATE TABLE logged_model_tags (
    model_pk INTEGER NOT NULL REFERENCES logged_models (model_pk),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_pk, key)
) WITHOUT ROWID;

-- Metrics a run logged against a model (log-metric / log-batch with a model_id), optionally on a
-- dataset; values kept as in `metrics` (exact order key, NaN flag) plus the plain number for search.
CREATE TABLE logged_model_metrics (
    model_pk INTEGER NOT NULL REFERENCES logged_models (model_pk),
    key TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    step INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    dataset_name TEXT NOT NULL,
    dataset_digest TEXT NOT NULL,
    value REAL NOT NULL,
    value_key INTEGER NOT NULL,
    is_nan INTEGER NOT NULL,
    PRIMARY KEY (model_pk, key, timestamp, step, run_id, dataset_name, dataset_digest)
) WITHOUT ROWID;

-- Models a run used as inputs (a run that evaluates a logged model), in the order logged.
CREATE TABLE run_model_inputs (
    input_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    model_id TEXT NOT NULL,
    UNIQUE (run_pk, model_id)
);

-- next_version only grows: a deleted version's number is never given out again.
CREATE TABLE registered_models (
    model_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    creation_time INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description TEXT,
    next_version INTEGER NOT NULL
);
CREATE INDEX registered_models_by_update ON registered_models (last_updated_time, name);

CREATE TABLE registered_model_tags (
    model_pk INTEGER NOT NULL REFERENCES registered_models (model_pk) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_pk, key)
) WITHOUT ROWID;
CREATE INDEX registered_model_tags_by_key ON registered_model_tags (key, value);

-- storage_location is where the version's files are (source resolved: models:/ and runs:/ URIs
-- point at an artifact folder); flavors and signature are read from its MLmodel file.
CREATE TABLE model_versions (
    model_pk INTEGER NOT NULL REFERENCES registered_models (model_pk) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description TEXT,
    user_id TEXT,
    current_stage TEXT NOT NULL,
    source TEXT NOT NULL,
    storage_location TEXT NOT NULL,
    run_id TEXT,
    run_link TEXT,
    status TEXT NOT NULL,
    status_message TEXT,
    model_id TEXT,
    flavors TEXT,
    signature TEXT,
    PRIMARY KEY (model_pk, version)
);
CREATE INDEX model_versions_by_run ON model_versions (run_id);
CREATE INDEX model_versions_by_logged_model ON model_versions (model_id);

CREATE TABLE model_version_tags (
    model_pk INTEGER NOT NULL,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_pk, version, key),
    FOREIGN KEY (model_pk, version) REFERENCES model_versions (model_pk, version) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE registered_model_aliases (
    model_pk INTEGER NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model_pk, alias),
    FOREIGN KEY (model_pk, version) REFERENCES model_versions (model_pk, version) ON DELETE CASCADE
) WITHOUT ROWID;
