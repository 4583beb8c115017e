//! Logged models (MLflow 3's LoggedModel): a model an experiment produced, with its own artifact
//! folder under the experiment's (`{experiment location}/models/{model_id}/artifacts`), its
//! params, tags, and the metrics runs logged against it.

use std::collections::HashMap;

use kiln_core::search::{Comparison, Entity, Op, PageToken, Schema, Value, parse_filter, parse_order_by};
use kiln_core::time::now_millis;
use kiln_store::query::{IN_CHUNK, Sql, direction, key_value_condition, next_token, numeric_comparison, page, text_comparison};
use kiln_store::{Bind, Row, Transaction, query};
use serde::Serialize;

use crate::entities::{ACTIVE, DELETED, Tag, metric_value};
use crate::error::{Error, Result};
use crate::names::random_run_name;
use crate::rows::{self, stored_value};
use crate::experiments::require_active_experiment;
use crate::validation::{MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH, parse_experiment_id, truncate_chars, validate_key};
use crate::Tracking;

/// The page a logged-model search answers when not told (MLflow's default), the page a
/// max_results of 0 asks for; as in MLflow, a page has no upper limit.
pub const DEFAULT_LOGGED_MODEL_RESULTS: i64 = 50;
const ZERO_LOGGED_MODEL_RESULTS: i64 = 100;
pub const MAX_LOGGED_MODEL_RESULTS: i64 = i64::MAX - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedModelStatus {
    Pending,
    Ready,
    UploadFailed,
}

impl LoggedModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    /// The protocol's enum, by name or by number.
    pub fn parse(text: &str) -> Option<LoggedModelStatus> {
        Some(match text {
            "LOGGED_MODEL_PENDING" | "1" => LoggedModelStatus::Pending,
            "LOGGED_MODEL_READY" | "2" => LoggedModelStatus::Ready,
            "LOGGED_MODEL_UPLOAD_FAILED" | "3" => LoggedModelStatus::UploadFailed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub artifact_uri: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub model_type: String,
    /// The run that produced the model; empty when none was named.
    pub source_run_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A metric a run logged against a model, optionally on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelMetric {
    pub key: String,
    #[serde(serialize_with = "metric_value")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    pub model_id: String,
    pub run_id: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LoggedModelData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<ModelMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

#[derive(Debug, Clone, Default)]
pub struct CreateLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<Tag>,
    pub tags: Vec<Tag>,
}

/// One `order_by` entry of a logged-model search: a field, and for a metric the dataset whose
/// values count.
#[derive(Debug, Clone, Default)]
pub struct LoggedModelOrder {
    pub field_name: String,
    pub ascending: bool,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// Restricts metric filters (and, alone, the models) to metrics logged on these datasets.
#[derive(Debug, Clone, Default)]
pub struct DatasetFilter {
    pub dataset_name: String,
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LoggedModelSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub datasets: Vec<DatasetFilter>,
    pub max_results: Option<i64>,
    pub order_by: Vec<LoggedModelOrder>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LoggedModelPage {
    pub models: Vec<LoggedModel>,
    pub next_page_token: Option<String>,
}

const MODEL_COLUMNS: &str = "lm.model_pk, lm.model_id, lm.experiment_id, lm.name, lm.artifact_location, \
     lm.creation_timestamp_ms, lm.last_updated_timestamp_ms, lm.status, lm.status_message, lm.model_type, lm.source_run_id";

fn model_row(row: &Row) -> Result<(i64, LoggedModel)> {
    let info = LoggedModelInfo {
        model_id: row.try_get(1)?,
        experiment_id: row.try_get::<i64, _>(2)?.to_string(),
        name: row.try_get(3)?,
        artifact_uri: row.try_get(4)?,
        creation_timestamp_ms: row.try_get(5)?,
        last_updated_timestamp_ms: row.try_get(6)?,
        status: row.try_get(7)?,
        status_message: row.try_get(8)?,
        model_type: row.try_get::<Option<String>, _>(9)?.unwrap_or_default(),
        source_run_id: row.try_get::<Option<String>, _>(10)?.unwrap_or_default(),
        tags: Vec::new(),
    };
    Ok((row.try_get(0)?, LoggedModel { info, data: LoggedModelData::default() }))
}

fn model_not_found(model_id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{model_id}' not found."))
}

fn validate_model_name(name: &str) -> Result<()> {
    const BAD: [char; 6] = ['/', ':', '.', '%', '"', '\''];
    if name.is_empty() || name.contains(BAD) {
        return Err(Error::invalid(format!(
            "Invalid model name ('{name}'): a model name is a non-empty string without any of / : . % \" '"
        )));
    }
    Ok(())
}

/// The model's internal key, if it exists and is not deleted.
async fn live_model(tx: &mut Transaction, model_id: &str) -> Result<(i64, i64)> {
    if model_id.is_empty() {
        return Err(Error::invalid("Missing value for required parameter 'model_id'"));
    }
    let row = query("SELECT model_pk, experiment_id FROM logged_models WHERE model_id = $1 AND lifecycle_stage = $2")
        .bind(model_id)
        .bind(ACTIVE)
        .fetch_optional(&mut **tx)
        .await?;
    let row = row.ok_or_else(|| model_not_found(model_id))?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

async fn touch(tx: &mut Transaction, model_pk: i64) -> Result<()> {
    query("UPDATE logged_models SET last_updated_timestamp_ms = $1 WHERE model_pk = $2")
        .bind(now_millis())
        .bind(model_pk)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn upsert_pairs(tx: &mut Transaction, table: &str, model_pk: i64, pairs: &[Tag]) -> Result<()> {
    let sql = format!(
        "INSERT INTO {table} (model_pk, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value"
    );
    for p in pairs {
        query(sql.clone()).bind(model_pk).bind(&p.key).bind(&p.value).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Validates params, truncating long values; a key given twice is refused.
fn clean_params(params: Vec<Tag>) -> Result<Vec<Tag>> {
    let n = params.len();
    let cleaned = clean_pairs("param", params, MAX_PARAM_VALUE_LENGTH)?;
    if cleaned.len() != n {
        return Err(Error::invalid("A param key is given twice: log each param once"));
    }
    Ok(cleaned)
}

/// Validates key/value pairs, truncating long values, and keeps the last value of a repeated key.
fn clean_pairs(what: &str, pairs: Vec<Tag>, max_value: usize) -> Result<Vec<Tag>> {
    let mut out: Vec<Tag> = Vec::with_capacity(pairs.len());
    for mut p in pairs {
        validate_key(what, &p.key)?;
        truncate_chars(&mut p.value, max_value);
        match out.iter_mut().find(|o| o.key == p.key) {
            Some(o) => o.value = p.value,
            None => out.push(p),
        }
    }
    Ok(out)
}

impl Tracking {
    pub async fn create_logged_model(&self, req: CreateLoggedModel) -> Result<LoggedModel> {
        let experiment_id = parse_experiment_id(&req.experiment_id)?;
        if let Some(name) = &req.name {
            validate_model_name(name)?;
        }
        let params = clean_params(req.params)?;
        let tags = clean_pairs("tag", req.tags, MAX_TAG_VALUE_LENGTH)?;
        let source_run_id = req.source_run_id.filter(|r| !r.is_empty());
        if let Some(run_id) = &source_run_id {
            self.find_run(run_id).await?;
        }
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let name = req.name.unwrap_or_else(random_run_name);
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let location = require_active_experiment(&mut tx, experiment_id).await?;
        let artifact_location = format!("{}/models/{model_id}/artifacts", location.trim_end_matches('/'));
        let pk: i64 = query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
             last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9) RETURNING model_pk",
        )
        .bind(&model_id)
        .bind(experiment_id)
        .bind(&name)
        .bind(&artifact_location)
        .bind(now)
        .bind(LoggedModelStatus::Pending.as_str())
        .bind(ACTIVE)
        .bind(req.model_type.as_deref())
        .bind(source_run_id.as_deref())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        upsert_pairs(&mut tx, "logged_model_params", pk, &params).await?;
        upsert_pairs(&mut tx, "logged_model_tags", pk, &tags).await?;
        tx.commit().await?;
        self.get_logged_model(&model_id).await
    }

    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.get_logged_model_with(model_id, false).await
    }

    /// A logged model; with `allow_deleted`, also one that was deleted.
    pub async fn get_logged_model_with(&self, model_id: &str, allow_deleted: bool) -> Result<LoggedModel> {
        if model_id.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'model_id'"));
        }
        let sql = format!("SELECT {MODEL_COLUMNS} FROM logged_models lm WHERE lm.model_id = $1 AND lm.lifecycle_stage IN ($2, $3)");
        let also = if allow_deleted { DELETED } else { ACTIVE };
        let row = query(sql)
            .bind(model_id)
            .bind(ACTIVE)
            .bind(also)
            .fetch_optional(self.store.reader())
            .await?;
        let row = row.ok_or_else(|| model_not_found(model_id))?;
        let mut models = vec![model_row(&row)?];
        self.attach_model_data(&mut models).await?;
        Ok(models.remove(0).1)
    }

    /// Marks the model's upload as done (or failed).
    pub async fn finalize_logged_model(&self, model_id: &str, status: LoggedModelStatus) -> Result<LoggedModel> {
        let mut tx = self.store.begin_write().await?;
        let (pk, _) = live_model(&mut tx, model_id).await?;
        query("UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 WHERE model_pk = $3")
            .bind(status.as_str())
            .bind(now_millis())
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_logged_model(model_id).await
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: Vec<Tag>) -> Result<()> {
        let tags = clean_pairs("tag", tags, MAX_TAG_VALUE_LENGTH)?;
        let mut tx = self.store.begin_write().await?;
        let (pk, _) = live_model(&mut tx, model_id).await?;
        upsert_pairs(&mut tx, "logged_model_tags", pk, &tags).await?;
        touch(&mut tx, pk).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let (pk, _) = live_model(&mut tx, model_id).await?;
        let done = query("DELETE FROM logged_model_tags WHERE model_pk = $1 AND key = $2")
            .bind(pk)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("No tag with key '{key}' found for model with ID '{model_id}'.")));
        }
        touch(&mut tx, pk).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds params; a model's params are written once, so a key it has already is refused.
    pub async fn log_logged_model_params(&self, model_id: &str, params: Vec<Tag>) -> Result<()> {
        let params = clean_params(params)?;
        let mut tx = self.store.begin_write().await?;
        let (pk, _) = live_model(&mut tx, model_id).await?;
        for p in &params {
            let added = query(
                "INSERT INTO logged_model_params (model_pk, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING key",
            )
            .bind(pk)
            .bind(&p.key)
            .bind(&p.value)
            .fetch_optional(&mut *tx)
            .await?;
            if added.is_none() {
                return Err(Error::invalid(format!(
                    "Model {model_id} already has the param '{}': a model's params are logged once",
                    p.key
                )));
            }
        }
        touch(&mut tx, pk).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the model deleted; it is no longer found, searched or listed. Deleting it again
    /// changes nothing.
    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        if model_id.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'model_id'"));
        }
        let mut tx = self.store.begin_write().await?;
        let done = query(
            "UPDATE logged_models SET lifecycle_stage = $1, \
             last_updated_timestamp_ms = CASE WHEN lifecycle_stage = $1 THEN last_updated_timestamp_ms ELSE $2 END \
             WHERE model_id = $3",
        )
        .bind(DELETED)
        .bind(now_millis())
        .bind(model_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(model_not_found(model_id));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn search_logged_models(&self, req: LoggedModelSearch) -> Result<LoggedModelPage> {
        let max_results = match req.max_results {
            None => DEFAULT_LOGGED_MODEL_RESULTS,
            Some(0) => ZERO_LOGGED_MODEL_RESULTS,
            Some(n) => n,
        };
        if !(1..=MAX_LOGGED_MODEL_RESULTS).contains(&max_results) {
            return Err(Error::invalid(format!(
                "Invalid value {max_results} for parameter 'max_results': it must be between 1 and {MAX_LOGGED_MODEL_RESULTS}"
            )));
        }
        if req.datasets.iter().any(|d| d.dataset_name.is_empty()) {
            return Err(Error::invalid("`dataset_name` in the `datasets` clause must be specified."));
        }
        let experiment_ids = req.experiment_ids.iter().map(|id| parse_experiment_id(id)).collect::<Result<Vec<_>>>()?;
        let filter = parse_filter(&req.filter, Schema::LoggedModels)?;
        let fingerprint = search_fingerprint(&req);
        let token = decode_token(req.page_token.as_deref(), fingerprint)?;
        if experiment_ids.is_empty() {
            return Ok(LoggedModelPage { models: Vec::new(), next_page_token: None });
        }

        let mut q = Sql::new(self.store.dialect(), &format!("SELECT {MODEL_COLUMNS} FROM logged_models lm WHERE lm.lifecycle_stage = "));
        q.bind_text(ACTIVE).push(" AND lm.experiment_id IN ");
        q.bind_list(experiment_ids.into_iter().map(Bind::Int));
        let mut has_metric_filter = false;
        for c in &filter.clauses {
            q.push(" AND ");
            has_metric_filter |= matches!(c.entity, Entity::Metric(_));
            model_condition(&mut q, c, &req.datasets)?;
        }
        if !req.datasets.is_empty() && !has_metric_filter {
            q.push(" AND EXISTS (SELECT 1 FROM logged_model_metrics m WHERE m.model_pk = lm.model_pk");
            datasets_condition(&mut q, &req.datasets);
            q.push(")");
        }
        q.push(" ORDER BY ");
        let (mut by_creation, mut by_id) = (false, false);
        for o in &req.order_by {
            let parsed = parse_order_by(&[o.field_name.as_str()], Schema::LoggedModels)?.remove(0);
            let dir = direction(o.ascending);
            match &parsed.entity {
                Entity::Attribute(a) => {
                    let column = model_column(a).ok_or_else(|| Error::invalid(format!("Invalid order by field name: {a}")))?;
                    by_creation |= a == "creation_timestamp";
                    by_id |= a == "model_id";
                    q.push(&format!("{column} {dir} NULLS LAST, "));
                }
                Entity::Metric(key) => {
                    // The model's latest value of the metric (on the dataset, if named).
                    q.push("(SELECT o.value FROM logged_model_metrics o WHERE o.model_pk = lm.model_pk AND o.is_nan = 0 AND o.key = ");
                    q.bind_text(key);
                    if let Some(name) = &o.dataset_name {
                        q.push(" AND o.dataset_name = ").bind_text(name);
                    }
                    if let Some(digest) = &o.dataset_digest {
                        q.push(" AND o.dataset_digest = ").bind_text(digest);
                    }
                    q.push(&format!(" ORDER BY o.timestamp DESC, o.step DESC, o.run_id ASC LIMIT 1) {dir} NULLS LAST, "));
                }
                other => return Err(Error::invalid(format!("Invalid order by field name: {}. Only metrics are supported.", other.key()))),
            }
        }
        if !by_creation {
            q.push("lm.creation_timestamp_ms DESC, ");
        }
        q.push(if by_id { "lm.model_pk" } else { "lm.model_id ASC" });
        page(&mut q, max_results, token);
        let rows = q.build().fetch_all(self.store.reader()).await?;
        let mut models = rows.iter().map(model_row).collect::<Result<Vec<_>>>()?;
        let next_page_token = next_token(&mut models, max_results, token).map(|t| format!("{fingerprint:016x}{t}"));
        self.attach_model_data(&mut models).await?;
        Ok(LoggedModelPage { models: models.into_iter().map(|(_, m)| m).collect(), next_page_token })
    }

    /// Fills in each model's tags, params and metrics.
    async fn attach_model_data(&self, models: &mut [(i64, LoggedModel)]) -> Result<()> {
        let index: HashMap<i64, usize> = models.iter().enumerate().map(|(i, (pk, _))| (*pk, i)).collect();
        let pks: Vec<i64> = models.iter().map(|(pk, _)| *pk).collect();
        let dialect = self.store.dialect();
        for chunk in pks.chunks(IN_CHUNK) {
            let keys = || chunk.iter().map(|&pk| Bind::Int(pk));
            for table in ["logged_model_tags", "logged_model_params"] {
                let mut q = Sql::new(dialect, &format!("SELECT model_pk, key, value FROM {table} WHERE model_pk IN "));
                q.bind_list(keys()).push(" ORDER BY model_pk, key");
                for row in q.build().fetch_all(self.store.reader()).await? {
                    let (_, model) = &mut models[index[&row.try_get::<i64, _>(0)?]];
                    let pair = rows::tag(&row, 1)?;
                    if table == "logged_model_tags" { model.info.tags.push(pair) } else { model.data.params.push(pair) }
                }
            }
            let mut q = Sql::new(
                dialect,
                "SELECT model_pk, key, value_key, timestamp, step, is_nan, run_id, dataset_name, dataset_digest \
                 FROM logged_model_metrics WHERE model_pk IN ",
            );
            q.bind_list(keys()).push(" ORDER BY model_pk, key, timestamp, step, run_id");
            for row in q.build().fetch_all(self.store.reader()).await? {
                let (_, model) = &mut models[index[&row.try_get::<i64, _>(0)?]];
                let is_nan: i64 = row.try_get(5)?;
                let text = |i: usize| -> Result<Option<String>> {
                    Ok(Some(row.try_get::<String, _>(i)?).filter(|s| !s.is_empty()))
                };
                model.data.metrics.push(ModelMetric {
                    key: row.try_get(1)?,
                    value: rows::value_from_key(row.try_get(2)?, is_nan != 0),
                    timestamp: row.try_get(3)?,
                    step: row.try_get(4)?,
                    run_id: row.try_get(6)?,
                    dataset_name: text(7)?,
                    dataset_digest: text(8)?,
                    model_id: model.info.model_id.clone(),
                });
            }
        }
        Ok(())
    }

    /// The artifact folder of a live logged model.
    pub async fn logged_model_artifact_location(&self, model_id: &str) -> Result<String> {
        Ok(self.get_logged_model(model_id).await?.info.artifact_uri)
    }
}

/// Records metrics a run logged against models, inside the run's logging transaction. Every
/// model must exist.
pub(crate) async fn insert_model_metrics(tx: &mut Transaction, metrics: &[ModelMetric]) -> Result<()> {
    let mut pks: HashMap<&str, i64> = HashMap::new();
    for m in metrics {
        if !pks.contains_key(m.model_id.as_str()) {
            let (pk, _) = live_model(tx, &m.model_id).await?;
            pks.insert(&m.model_id, pk);
        }
        let (value, value_key, is_nan) = stored_value(m.value);
        query(
            "INSERT INTO logged_model_metrics (model_pk, key, timestamp, step, run_id, dataset_name, dataset_digest, \
             value, value_key, is_nan) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (model_pk, key, timestamp, step, run_id, dataset_name, dataset_digest) \
             DO UPDATE SET value = excluded.value, value_key = excluded.value_key, is_nan = excluded.is_nan",
        )
        .bind(pks[m.model_id.as_str()])
        .bind(&m.key)
        .bind(m.timestamp)
        .bind(m.step)
        .bind(&m.run_id)
        .bind(m.dataset_name.as_deref().unwrap_or(""))
        .bind(m.dataset_digest.as_deref().unwrap_or(""))
        .bind(value)
        .bind(value_key)
        .bind(is_nan)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A page token continues only the search it came from: it carries a fingerprint of the
/// search (experiments, filter, datasets, order) ahead of the offset.
fn search_fingerprint(req: &LoggedModelSearch) -> u64 {
    let mut text = String::new();
    text.push_str(&req.experiment_ids.join("\u{1}"));
    text.push('\u{2}');
    text.push_str(&req.filter);
    for d in &req.datasets {
        text.push_str(&format!("\u{2}{}\u{1}{}", d.dataset_name, d.dataset_digest.as_deref().unwrap_or("")));
    }
    for o in &req.order_by {
        text.push_str(&format!(
            "\u{3}{}\u{1}{}\u{1}{}\u{1}{}",
            o.field_name,
            o.ascending,
            o.dataset_name.as_deref().unwrap_or(""),
            o.dataset_digest.as_deref().unwrap_or("")
        ));
    }
    // FNV-1a: stable across processes and versions, unlike the standard library's hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn decode_token(token: Option<&str>, fingerprint: u64) -> Result<PageToken> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(PageToken::default());
    };
    let expected = format!("{fingerprint:016x}");
    match token.get(..16) {
        Some(prefix) if prefix == expected => Ok(PageToken::decode(Some(&token[16..]))?),
        _ => Err(Error::invalid(
            "Invalid page token: it belongs to a different search. Pass the next_page_token of the same search unchanged",
        )),
    }
}

fn model_column(attribute: &str) -> Option<&'static str> {
    Some(match attribute {
        "model_id" => "lm.model_id",
        "name" => "lm.name",
        "model_type" => "lm.model_type",
        "status" => "lm.status",
        "source_run_id" => "lm.source_run_id",
        "creation_timestamp" => "lm.creation_timestamp_ms",
        "last_updated_timestamp" => "lm.last_updated_timestamp_ms",
        _ => return None,
    })
}

fn datasets_condition(q: &mut Sql, datasets: &[DatasetFilter]) {
    if datasets.is_empty() {
        return;
    }
    q.push(" AND (");
    for (i, d) in datasets.iter().enumerate() {
        q.push(if i == 0 { "(m.dataset_name = " } else { " OR (m.dataset_name = " });
        q.bind_text(&d.dataset_name);
        if let Some(digest) = &d.dataset_digest {
            q.push(" AND m.dataset_digest = ").bind_text(digest);
        }
        q.push(")");
    }
    q.push(")");
}

fn model_condition(q: &mut Sql, c: &Comparison, datasets: &[DatasetFilter]) -> Result<()> {
    match &c.entity {
        Entity::Metric(key) => {
            q.push("EXISTS (SELECT 1 FROM logged_model_metrics m WHERE m.model_pk = lm.model_pk AND m.key = ").bind_text(key);
            q.push(" AND m.is_nan = 0 AND ");
            numeric_comparison(q, "m.value", c.op, &c.value)?;
            datasets_condition(q, datasets);
            q.push(")");
        }
        Entity::Param(key) => key_value_condition(q, "logged_model_params", "t.model_pk = lm.model_pk", key, c)?,
        Entity::Tag(key) => key_value_condition(q, "logged_model_tags", "t.model_pk = lm.model_pk", key, c)?,
        Entity::Attribute(a) => {
            let column = model_column(a).ok_or_else(|| Error::invalid(format!("'{a}' is not a searchable model attribute")))?;
            if Schema::LoggedModels.is_numeric_attribute(a) {
                numeric_comparison(q, column, c.op, &c.value)?;
            } else if a == "status" {
                // Statuses are compared by their protocol names; "READY" also matches.
                let full = |s: &String| {
                    if s.starts_with("LOGGED_MODEL_") { s.clone() } else { format!("LOGGED_MODEL_{s}") }
                };
                let value = match &c.value {
                    Value::String(s) if matches!(c.op, Op::Eq | Op::Ne) => Value::String(full(s)),
                    Value::List(items) => Value::List(items.iter().map(full).collect()),
                    other => other.clone(),
                };
                text_comparison(q, column, c.op, &value)?;
            } else {
                text_comparison(q, column, c.op, &c.value)?;
            }
        }
        Entity::Dataset(_) => return Err(Error::invalid("logged models are not filtered by datasets. fields")),
    }
    Ok(())
}
