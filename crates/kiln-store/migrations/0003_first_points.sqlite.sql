-- Each metric's first point in step order (lowest step, then timestamp, then value) beside its
-- latest: a sampled long history keeps both ends, and finding the first otherwise reads every
-- point of the metric (the points are kept in logging order).
ALTER TABLE latest_metrics ADD COLUMN first_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE latest_metrics ADD COLUMN first_timestamp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE latest_metrics ADD COLUMN first_value_key INTEGER NOT NULL DEFAULT 0;
ALTER TABLE latest_metrics ADD COLUMN first_is_nan INTEGER NOT NULL DEFAULT 0;
UPDATE latest_metrics SET (first_step, first_timestamp, first_value_key, first_is_nan) = (
    SELECT m.step, m.timestamp, m.value_key, m.is_nan FROM metrics m
    WHERE m.run_pk = latest_metrics.run_pk AND m.key = latest_metrics.key
    ORDER BY m.step, m.timestamp, m.value_key, m.is_nan LIMIT 1
);
