//! Turning rows into entities.

use kiln_store::Row;

use crate::entities::{Experiment, Metric, RunInfo, Tag};
use crate::error::Result;

pub(crate) const EXPERIMENT_COLUMNS: &str =
    "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

pub(crate) fn experiment(row: &Row) -> Result<Experiment> {
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

pub(crate) fn run(row: &Row) -> Result<RunRow> {
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

pub(crate) fn tag(row: &Row, first: usize) -> Result<Tag> {
    Ok(Tag { key: row.try_get(first)?, value: row.try_get(first + 1)? })
}

/// A metric point from columns `key, value_key, timestamp, step, is_nan` starting at `first`.
pub(crate) fn metric(row: &Row, first: usize) -> Result<Metric> {
    let is_nan: i64 = row.try_get(first + 4)?;
    Ok(Metric {
        key: row.try_get(first)?,
        value: value_from_key(row.try_get(first + 1)?, is_nan != 0),
        timestamp: row.try_get(first + 2)?,
        step: row.try_get(first + 3)?,
    })
}

/// How a metric value is stored: the value (NaN as 0 with a flag, infinities clamped to the
/// largest finite double so they survive every backend and sort as the extremes), its order
/// key, and the NaN flag.
pub(crate) fn stored_value(value: f64) -> (f64, i64, i64) {
    let (value, is_nan) = if value.is_nan() {
        (0.0, 1)
    } else if value.is_infinite() {
        (if value > 0.0 { f64::MAX } else { f64::MIN }, 0)
    } else {
        (value, 0)
    };
    (value, order_key(value), is_nan)
}

/// The bits of a double as an integer that sorts like the double: negative numbers have every
/// bit but the sign flipped. Its own inverse.
pub(crate) fn order_key(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    if bits < 0 { bits ^ i64::MAX } else { bits }
}

pub(crate) fn value_from_key(key: i64, is_nan: bool) -> f64 {
    if is_nan {
        return f64::NAN;
    }
    let bits = if key < 0 { key ^ i64::MAX } else { key };
    f64::from_bits(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_like_doubles_and_round_trip() {
        let values = [f64::MIN, -1e300, -1.5, -5e-324, -0.0, 0.0, 5e-324, 0.1, 1.0, 1e300, f64::MAX];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) < order_key(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(value_from_key(order_key(v), false).to_bits(), v.to_bits());
        }
        assert!(value_from_key(0, true).is_nan());
    }
}
