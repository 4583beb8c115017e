-- Tracking: experiments, runs and what runs log. Runs carry an internal integer key (run_pk) so
-- the high-volume tables (metrics, params, tags) index and join on 8 bytes, not a 32-char id.
CREATE TABLE experiments (
    experiment_id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    artifact_location TEXT COLLATE "C" NOT NULL,
    lifecycle_stage TEXT COLLATE "C" NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_pk BIGSERIAL PRIMARY KEY,
    run_uuid TEXT COLLATE "C" NOT NULL UNIQUE,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    deleted_time BIGINT,
    lifecycle_stage TEXT COLLATE "C" NOT NULL,
    artifact_uri TEXT COLLATE "C" NOT NULL
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, run_uuid);

CREATE TABLE run_tags (
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_pk, key)
);
-- Values can exceed PostgreSQL's B-tree entry size, so only keys are indexed; a lookup by
-- run goes through the primary key.
CREATE INDEX run_tags_by_key ON run_tags (key);

CREATE TABLE run_params (
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_pk, key)
);
CREATE INDEX run_params_by_key ON run_params (key);

-- Every logged point, in the order metric history reads it back (timestamp, step, value).
-- A value is kept as its order key: the IEEE-754 bits of the double, with the bits of negative
-- numbers flipped so that integer order is numeric order. It is exact (text forms of doubles
-- from the database are not always) and sorts like the number. NaN is kept as is_nan = 1 with
-- the key of 0; infinities arrive clamped to the largest finite double, as MLflow stores them.
CREATE TABLE metrics (
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    key TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value_key BIGINT NOT NULL,
    is_nan BIGINT NOT NULL,
    PRIMARY KEY (run_pk, key, timestamp, step, value_key, is_nan)
);

-- The latest point of each metric of each run (highest step, then timestamp, then value):
-- what runs/get shows (from value_key, exact) and what search filters and orders on (value).
CREATE TABLE latest_metrics (
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    key TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    value_key BIGINT NOT NULL,
    is_nan BIGINT NOT NULL,
    PRIMARY KEY (run_pk, key)
);
CREATE INDEX latest_metrics_by_key ON latest_metrics (key, value);

CREATE TABLE datasets (
    dataset_pk BIGSERIAL PRIMARY KEY,
    dataset_uuid TEXT COLLATE "C" NOT NULL UNIQUE,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    source_type TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    schema TEXT COLLATE "C",
    profile TEXT COLLATE "C",
    UNIQUE (experiment_id, name, digest)
);

-- A run's dataset inputs, in the order they were logged (input_pk).
CREATE TABLE run_inputs (
    input_pk BIGSERIAL PRIMARY KEY,
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    dataset_pk BIGINT NOT NULL REFERENCES datasets (dataset_pk),
    UNIQUE (run_pk, dataset_pk)
);
CREATE INDEX run_inputs_by_dataset ON run_inputs (dataset_pk);

CREATE TABLE run_input_tags (
    run_pk BIGINT NOT NULL,
    dataset_pk BIGINT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk, key),
    FOREIGN KEY (run_pk, dataset_pk) REFERENCES run_inputs (run_pk, dataset_pk)
);

-- Models a run produced (MLflow 3's logged models), in the order they were logged.
CREATE TABLE run_outputs (
    output_pk BIGSERIAL PRIMARY KEY,
    run_pk BIGINT NOT NULL REFERENCES runs (run_pk),
    model_id TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL,
    UNIQUE (run_pk, model_id, step)
);
