-- Tracking: experiments, runs and what runs log. Runs carry an internal integer key (run_pk) so
-- the high-volume tables (metrics, params, tags) index and join on 8 bytes, not a 32-char id.
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    run_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    run_uuid TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    deleted_time INTEGER,
    lifecycle_stage TEXT NOT NULL,
    artifact_uri TEXT NOT NULL
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, run_uuid);

CREATE TABLE run_tags (
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_pk, key)
) WITHOUT ROWID;
CREATE INDEX run_tags_by_key ON run_tags (key, value);

CREATE TABLE run_params (
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_pk, key)
) WITHOUT ROWID;
CREATE INDEX run_params_by_key ON run_params (key, value);

-- Every logged point, in the order metric history reads it back (timestamp, step, value).
-- A value is kept as its order key: the IEEE-754 bits of the double, with the bits of negative
-- numbers flipped so that integer order is numeric order. It is exact (text forms of doubles
-- from the database are not always) and sorts like the number. NaN is kept as is_nan = 1 with
-- the key of 0; infinities arrive clamped to the largest finite double, as MLflow stores them.
CREATE TABLE metrics (
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value_key INTEGER NOT NULL,
    is_nan INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key, timestamp, step, value_key, is_nan)
) WITHOUT ROWID;

-- The latest point of each metric of each run (highest step, then timestamp, then value):
-- what runs/get shows (from value_key, exact) and what search filters and orders on (value).
CREATE TABLE latest_metrics (
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value REAL NOT NULL,
    value_key INTEGER NOT NULL,
    is_nan INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_by_key ON latest_metrics (key, value);

CREATE TABLE datasets (
    dataset_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_uuid TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema TEXT,
    profile TEXT,
    UNIQUE (experiment_id, name, digest)
);

-- A run's dataset inputs, in the order they were logged (input_pk).
CREATE TABLE run_inputs (
    input_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    dataset_pk INTEGER NOT NULL REFERENCES datasets (dataset_pk),
    UNIQUE (run_pk, dataset_pk)
);
CREATE INDEX run_inputs_by_dataset ON run_inputs (dataset_pk);

CREATE TABLE run_input_tags (
    run_pk INTEGER NOT NULL,
    dataset_pk INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_pk, dataset_pk, key),
    FOREIGN KEY (run_pk, dataset_pk) REFERENCES run_inputs (run_pk, dataset_pk)
) WITHOUT ROWID;

-- Models a run produced (MLflow 3's logged models), in the order they were logged.
CREATE TABLE run_outputs (
    output_pk INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
    model_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    UNIQUE (run_pk, model_id, step)
);
