//! Turning rows into entities.

use kiln_store::AnyRow;
use sqlx::Row;

use crate::entities::{Experiment, Metric, RunInfo, Tag};
use crate::error::Result;

pub(crate) const EXPERIMENT_COLUMNS: &str =
    "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

pub(crate) fn experiment(row: &AnyRow) -> Result<Experiment> {
    Ok(Experiment {
        experiment_id: row.try_get::<i64, _>(0)?.to_string(),
        name: row.try_get(1)?,
        artifact_location: row.try_get(2)?,
        lifecycle_stage: row.try_get(3)?,
        creation_time: row.try_get(4)?,
        last_update_time: row.try_get(5)?,
        tags: Vec::new(),
    })
}

pub(crate) const RUN_COLUMNS: &str = "r.run_pk, r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, \
     r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri";

/// A run's row: its internal key and its info.
pub(crate) struct RunRow {
    pub pk: i64,
    pub info: RunInfo,
}

pub(crate) fn run(row: &AnyRow) -> Result<RunRow> {
    let run_id: String = row.try_get(1)?;
    Ok(RunRow {
        pk: row.try_get(0)?,
        info: RunInfo {
            run_uuid: run_id.clone(),
            experiment_id: row.try_get::<i64, _>(2)?.to_string(),
            run_name: row.try_get(3)?,
            user_id: row.try_get(4)?,
            status: row.try_get(5)?,
            start_time: row.try_get(6)?,
            end_time: row.try_get(7)?,
            lifecycle_stage: row.try_get(8)?,
            artifact_uri: row.try_get(9)?,
            run_id,
        },
    })
}

pub(crate) fn tag(row: &AnyRow, first: usize) -> Result<Tag> {
    Ok(Tag { key: row.try_get(first)?, value: row.try_get(first + 1)? })
}

/// A metric point from columns `key, value, timestamp, step, is_nan` starting at `first`.
pub(crate) fn metric(row: &AnyRow, first: usize) -> Result<Metric> {
    let is_nan: i64 = row.try_get(first + 4)?;
    Ok(Metric {
        key: row.try_get(first)?,
        value: if is_nan != 0 { f64::NAN } else { row.try_get(first + 1)? },
        timestamp: row.try_get(first + 2)?,
        step: row.try_get(first + 3)?,
    })
}

/// How a metric value is stored: NaN as a flag with value 0, infinities clamped to the largest
/// finite double (so they survive every backend and sort as the extremes).
pub(crate) fn stored_value(value: f64) -> (f64, i64) {
    if value.is_nan() {
        (0.0, 1)
    } else if value.is_infinite() {
        (if value > 0.0 { f64::MAX } else { f64::MIN }, 0)
    } else {
        (value, 0)
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
