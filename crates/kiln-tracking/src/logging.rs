//! What runs log: the batch (metrics, params, tags) is the one write primitive; single-value
//! endpoints are batches of one. A batch is validated whole before anything is written and is
//! committed in one transaction, so it is all there or not at all.

use std::collections::{HashMap, HashSet};

use kiln_store::{Bind, Dialect, Transaction, query};

use crate::entities::*;
use crate::error::{Error, Result};
use crate::models::{ModelMetric, insert_model_metrics};
use crate::rows::stored_value;
use crate::runs::{active_run, upsert_run_tags};
use kiln_store::query::Sql;
use crate::validation::*;
use crate::Tracking;

#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<Tag>,
    pub tags: Vec<Tag>,
    /// Metrics that are also recorded against logged models (each is in `metrics` too); their
    /// run is the batch's.
    pub model_metrics: Vec<ModelMetric>,
}

/// Rows per multi-row INSERT; well under both backends' bind-parameter limits.
const INSERT_CHUNK: usize = 500;

impl Tracking {
    pub async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        let Batch { metrics, mut params, tags, mut model_metrics } = batch;
        for m in &mut model_metrics {
            m.run_id = run_id.to_string();
        }
        check_batch_limits(metrics.len(), params.len(), tags.len())?;
        for m in &metrics {
            validate_key("metric", &m.key)?;
            if m.timestamp < 0 {
                return Err(Error::invalid(format!(
                    "Metric '{}' has a negative timestamp {}: timestamps are milliseconds since the Unix epoch",
                    m.key, m.timestamp
                )));
            }
        }
        let mut seen = HashSet::new();
        for p in &mut params {
            validate_key("param", &p.key)?;
            if !seen.insert(p.key.clone()) {
                return Err(Error::invalid(format!(
                    "Duplicate parameter key '{}' in one batch: log each parameter once",
                    p.key
                )));
            }
            truncate_chars(&mut p.value, MAX_PARAM_VALUE_LENGTH);
        }
        // Later tags with the same key win, as in MLflow.
        let mut distinct_tags: Vec<Tag> = Vec::with_capacity(tags.len());
        for mut t in tags {
            validate_key("tag", &t.key)?;
            truncate_chars(&mut t.value, MAX_TAG_VALUE_LENGTH);
            match distinct_tags.iter_mut().find(|d| d.key == t.key) {
                Some(d) => d.value = t.value,
                None => distinct_tags.push(t),
            }
        }
        // An empty run name tag is ignored rather than blanking the run's name.
        distinct_tags.retain(|t| !(t.key == RUN_NAME_TAG && t.value.is_empty()));

        let mut tx = self.store.begin_write().await?;
        let run = active_run(&mut tx, run_id).await?;
        if !params.is_empty() {
            insert_params(&mut tx, self.store.dialect(), run.pk, run_id, &params).await?;
        }
        if !distinct_tags.is_empty() {
            upsert_run_tags(&mut tx, self.store.dialect(), run.pk, &distinct_tags).await?;
            if let Some(name) = distinct_tags.iter().rev().find(|t| t.key == RUN_NAME_TAG) {
                query("UPDATE runs SET name = $1 WHERE run_pk = $2")
                    .bind(&name.value)
                    .bind(run.pk)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if !metrics.is_empty() {
            insert_metrics(&mut tx, self.store.dialect(), run.pk, &metrics).await?;
        }
        if !model_metrics.is_empty() {
            insert_model_metrics(&mut tx, &model_metrics).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a run tag; a tag that is not there is NotFound.
    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'key'"));
        }
        let mut tx = self.store.begin_write().await?;
        let run = active_run(&mut tx, run_id).await?;
        let done = query("DELETE FROM run_tags WHERE run_pk = $1 AND key = $2")
            .bind(run.pk)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("No tag with name '{key}' in run with id {run_id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the datasets a run used. A dataset is one per experiment by (name, digest): the
    /// first one logged is kept. Logging a dataset a run already has changes nothing.
    pub async fn log_inputs(&self, run_id: &str, inputs: Vec<DatasetInput>, models: Vec<ModelInput>) -> Result<()> {
        if models.iter().any(|m| m.model_id.is_empty()) {
            return Err(Error::invalid("A model input has no model_id"));
        }
        for input in &inputs {
            if input.dataset.name.chars().count() > MAX_DATASET_NAME_LENGTH {
                return Err(Error::invalid(format!(
                    "Dataset name is longer than {MAX_DATASET_NAME_LENGTH} characters"
                )));
            }
            validate_tags("input tag", &input.tags)?;
        }
        let mut tx = self.store.begin_write().await?;
        let run = active_run(&mut tx, run_id).await?;
        let experiment_id: i64 = run.info.experiment_id.parse().unwrap_or_default();
        for m in &models {
            query("INSERT INTO run_model_inputs (run_pk, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(run.pk)
                .bind(&m.model_id)
                .execute(&mut *tx)
                .await?;
        }
        for input in inputs {
            let d = &input.dataset;
            let existing = query(
                "SELECT dataset_pk FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(experiment_id)
            .bind(&d.name)
            .bind(&d.digest)
            .fetch_optional(&mut *tx)
            .await?;
            let dataset_pk: i64 = match existing {
                Some(row) => row.try_get(0)?,
                None => query(
                    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING dataset_pk",
                )
                .bind(kiln_core::ids::new_run_id())
                .bind(experiment_id)
                .bind(&d.name)
                .bind(&d.digest)
                .bind(&d.source_type)
                .bind(&d.source)
                .bind(&d.schema)
                .bind(&d.profile)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?,
            };
            let added = query(
                "INSERT INTO run_inputs (run_pk, dataset_pk) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING input_pk",
            )
            .bind(run.pk)
            .bind(dataset_pk)
            .fetch_optional(&mut *tx)
            .await?;
            if added.is_some() {
                for tag in &input.tags {
                    query(
                        "INSERT INTO run_input_tags (run_pk, dataset_pk, key, value) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (run_pk, dataset_pk, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(run.pk)
                    .bind(dataset_pk)
                    .bind(&tag.key)
                    .bind(&tag.value)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records models a run produced; the same model at the same step twice is refused.
    pub async fn log_outputs(&self, run_id: &str, models: Vec<ModelOutput>) -> Result<()> {
        if let Some(m) = models.iter().find(|m| m.model_id.is_empty()) {
            return Err(Error::invalid(format!("A model output at step {} has no model_id", m.step)));
        }
        let mut tx = self.store.begin_write().await?;
        let run = active_run(&mut tx, run_id).await?;
        for m in &models {
            let added = query(
                "INSERT INTO run_outputs (run_pk, model_id, step) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING output_pk",
            )
            .bind(run.pk)
            .bind(&m.model_id)
            .bind(m.step)
            .fetch_optional(&mut *tx)
            .await?;
            if added.is_none() {
                return Err(Error::already_exists(format!(
                    "Run {run_id} already has model {} as an output at step {}",
                    m.model_id, m.step
                )));
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

fn check_batch_limits(metrics: usize, params: usize, tags: usize) -> Result<()> {
    let over = |what: &str, n: usize, limit: usize| {
        Error::invalid(format!("A batch holds {n} {what}; the limit is {limit}: split it into several batches"))
    };
    if metrics > MAX_METRICS_PER_BATCH {
        return Err(over("metrics", metrics, MAX_METRICS_PER_BATCH));
    }
    if params > MAX_PARAMS_PER_BATCH {
        return Err(over("params", params, MAX_PARAMS_PER_BATCH));
    }
    if tags > MAX_TAGS_PER_BATCH {
        return Err(over("tags", tags, MAX_TAGS_PER_BATCH));
    }
    let total = metrics + params + tags;
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(over("metrics, params and tags together", total, MAX_ENTITIES_PER_BATCH));
    }
    Ok(())
}

/// Logs parameters; a parameter already logged with another value fails the whole batch.
async fn insert_params(tx: &mut Transaction, dialect: Dialect, run_pk: i64, run_id: &str, params: &[Tag]) -> Result<()> {
    let mut q = Sql::new(dialect, "SELECT key, value FROM run_params WHERE run_pk = ");
    q.bind_int(run_pk).push(" AND key IN ");
    q.bind_list(params.iter().map(|p| Bind::Text(p.key.clone())));
    let mut existing: HashMap<String, String> = HashMap::new();
    for row in q.build().fetch_all(&mut **tx).await? {
        existing.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let mut new = Vec::new();
    for p in params {
        match existing.get(&p.key) {
            Some(old) if *old != p.value => {
                return Err(Error::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{old}' \
                     for run ID='{run_id}'. Attempted logging new value '{}'",
                    p.key, p.value
                )));
            }
            Some(_) => {}
            None => new.push(p),
        }
    }
    for chunk in new.chunks(INSERT_CHUNK) {
        let mut q = Sql::new(dialect, "INSERT INTO run_params (run_pk, key, value) VALUES ");
        for (i, p) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_int(run_pk).push(", ").bind_text(&p.key).push(", ").bind_text(&p.value).push(")");
        }
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The conflict clause of the latest_metrics insert: the latest point moves forward and the first
/// back, each only where the new one is beyond it, and a row neither moves is not written.
fn latest_upsert() -> String {
    const LATER: &str = "(excluded.step, excluded.timestamp, excluded.value) > \
         (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)";
    const EARLIER: &str = "(excluded.first_step, excluded.first_timestamp, excluded.first_value_key, excluded.first_is_nan) < \
         (latest_metrics.first_step, latest_metrics.first_timestamp, latest_metrics.first_value_key, latest_metrics.first_is_nan)";
    let pick = |condition: &str, column: &str| format!("{column} = CASE WHEN {condition} THEN excluded.{column} ELSE latest_metrics.{column} END");
    let latest = ["step", "timestamp", "value", "value_key", "is_nan"].map(|c| pick(LATER, c));
    let first = ["first_step", "first_timestamp", "first_value_key", "first_is_nan"].map(|c| pick(EARLIER, c));
    format!(" ON CONFLICT (run_pk, key) DO UPDATE SET {}, {} WHERE {LATER} OR {EARLIER}", latest.join(", "), first.join(", "))
}

/// Appends metric points and moves each key's latest value forward where a point is later
/// (by step, then timestamp, then value), and its first point back where one is earlier in step
/// order (by step, timestamp, value, NaN last).
async fn insert_metrics(tx: &mut Transaction, dialect: Dialect, run_pk: i64, metrics: &[Metric]) -> Result<()> {
    let mut latest: HashMap<&str, (i64, i64, f64, i64)> = HashMap::new();
    let mut first: HashMap<&str, (i64, i64, i64, i64)> = HashMap::new();
    for chunk in metrics.chunks(INSERT_CHUNK) {
        let mut q = Sql::new(dialect, "INSERT INTO metrics (run_pk, key, step, timestamp, value_key, is_nan) VALUES ");
        for (i, m) in chunk.iter().enumerate() {
            let (value, value_key, is_nan) = stored_value(m.value);
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_int(run_pk)
                .push(", ")
                .bind_text(&m.key)
                .push(", ")
                .bind_int(m.step)
                .push(", ")
                .bind_int(m.timestamp)
                .push(", ")
                .bind_int(value_key)
                .push(", ")
                .bind_int(is_nan)
                .push(")");
            let earliest = (m.step, m.timestamp, value_key, is_nan);
            first.entry(&m.key).and_modify(|best| *best = (*best).min(earliest)).or_insert(earliest);
            let candidate = (m.step, m.timestamp, value, is_nan);
            latest
                .entry(&m.key)
                .and_modify(|best| {
                    if (candidate.0, candidate.1, candidate.2) > (best.0, best.1, best.2) {
                        *best = candidate;
                    }
                })
                .or_insert(candidate);
        }
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut **tx).await?;
    }
    let latest: Vec<_> = latest.into_iter().collect();
    for chunk in latest.chunks(INSERT_CHUNK) {
        let mut q = Sql::new(
            dialect,
            "INSERT INTO latest_metrics (run_pk, key, step, timestamp, value, value_key, is_nan, \
             first_step, first_timestamp, first_value_key, first_is_nan) VALUES ",
        );
        for (i, (key, (step, timestamp, value, is_nan))) in chunk.iter().enumerate() {
            let (first_step, first_timestamp, first_value_key, first_is_nan) = first[key];
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_int(run_pk)
                .push(", ")
                .bind_text(key)
                .push(", ")
                .bind_int(*step)
                .push(", ")
                .bind_int(*timestamp)
                .push(", ")
                .bind(Bind::Float(*value))
                .push(", ")
                .bind_int(crate::rows::order_key(*value))
                .push(", ")
                .bind_int(*is_nan)
                .push(", ")
                .bind_int(first_step)
                .push(", ")
                .bind_int(first_timestamp)
                .push(", ")
                .bind_int(first_value_key)
                .push(", ")
                .bind_int(first_is_nan)
                .push(")");
        }
        q.push(&latest_upsert());
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
