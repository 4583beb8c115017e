-- Logged models (MLflow 3's LoggedModel: a model an experiment produced, with its own artifact
-- folder) and the model registry (registered models, their numbered versions, tags and aliases).
CREATE TABLE logged_models (
    model_pk BIGSERIAL PRIMARY KEY,
    model_id TEXT COLLATE "C" NOT NULL UNIQUE,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT COLLATE "C" NOT NULL,
    artifact_location TEXT COLLATE "C" NOT NULL,
    creation_timestamp_ms BIGINT NOT NULL,
    last_updated_timestamp_ms BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    status_message TEXT COLLATE "C",
    lifecycle_stage TEXT COLLATE "C" NOT NULL,
    model_type TEXT COLLATE "C",
    source_run_id TEXT COLLATE "C"
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_timestamp_ms DESC, model_id);

CREATE TABLE logged_model_params (
    model_pk BIGINT NOT NULL REFERENCES logged_models (model_pk),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_pk, key)
);

CREATE TABLE logged_model_tags (
    model_pk BIGINT NOT NULL REFERENCES logged_models (model_pk),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_pk, key)
);

-- Metrics a run logged against a model (log-metric / log-batch with a model_id), optionally on a
-- dataset; values kept as in `metrics` (exact order key, NaN flag) plus the plain number for search.
CREATE TABLE logged_model_metrics (
    model_pk BIGINT NOT NULL REFERENCES logged_models (model_pk),
    key TEXT COLLATE "C" NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    dataset_name TEXT COLLATE "C" NOT NULL,
    dataset_digest TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    value_key BIGINT NOT NULL,
    is_nan BIGINT NOT NULL,
    PRIMARY KEY (model_pk, key, timestamp, step, run_id, dataset_name, dataset_digest)
);

-- Models a run used as inputs (a run that evaluates a logged model), in the order logged.
CREATE TABLE run_model_inputs (
    input_pk BIGSERIAL PRIMARY KEY,
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    model_id TEXT COLLATE "C" NOT NULL,
    UNIQUE (run_pk, model_id)
);

-- next_version only grows: a deleted version's number is never given out again.
CREATE TABLE registered_models (
    model_pk BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT COLLATE "C",
    next_version BIGINT NOT NULL
);
CREATE INDEX registered_models_by_update ON registered_models (last_updated_time, name);

CREATE TABLE registered_model_tags (
    model_pk BIGINT NOT NULL REFERENCES registered_models (model_pk) ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_pk, key)
);
CREATE INDEX registered_model_tags_by_key ON registered_model_tags (key, value);

-- storage_location is where the version's files are (source resolved: models:/ and runs:/ URIs
-- point at an artifact folder); flavors and signature are read from its MLmodel file.
CREATE TABLE model_versions (
    model_pk BIGINT NOT NULL REFERENCES registered_models (model_pk) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT COLLATE "C",
    user_id TEXT COLLATE "C",
    current_stage TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    storage_location TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C",
    run_link TEXT COLLATE "C",
    status TEXT COLLATE "C" NOT NULL,
    status_message TEXT COLLATE "C",
    model_id TEXT COLLATE "C",
    flavors TEXT COLLATE "C",
    signature TEXT COLLATE "C",
    PRIMARY KEY (model_pk, version)
);
CREATE INDEX model_versions_by_run ON model_versions (run_id);
CREATE INDEX model_versions_by_logged_model ON model_versions (model_id);

CREATE TABLE model_version_tags (
    model_pk BIGINT NOT NULL,
    version BIGINT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_pk, version, key),
    FOREIGN KEY (model_pk, version) REFERENCES model_versions (model_pk, version) ON DELETE CASCADE
);

CREATE TABLE registered_model_aliases (
    model_pk BIGINT NOT NULL,
    alias TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (model_pk, alias),
    FOREIGN KEY (model_pk, version) REFERENCES model_versions (model_pk, version) ON DELETE CASCADE
);
