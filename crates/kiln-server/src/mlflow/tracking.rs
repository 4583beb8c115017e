//! MLflow's tracking endpoints over [`kiln_tracking::Tracking`].

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use kiln_tracking::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::de;
use super::extract::Params;
use crate::AppState;
use crate::error::ApiError;

pub(crate) type ApiResult<T = Json<Value>> = Result<T, ApiError>;

pub(crate) fn required(value: Option<String>, field: &str) -> Result<String, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing(field))
}

pub(crate) fn empty() -> Json<Value> {
    Json(json!({}))
}

/// A key/value pair as a request carries it; a missing value is the empty string.
#[derive(Deserialize)]
pub(crate) struct TagIn {
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

pub(crate) fn tags_in(tags: Vec<TagIn>, what: &str) -> Result<Vec<Tag>, ApiError> {
    tags.into_iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(Tag { key: required(t.key, &format!("{what}[{i}].key"))?, value: t.value.unwrap_or_default() })
        })
        .collect()
}

// ---- experiments ----

#[derive(Deserialize)]
pub(crate) struct CreateExperimentReq {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<TagIn>,
}

pub(crate) async fn create_experiment(State(s): State<AppState>, Params(r): Params<CreateExperimentReq>) -> ApiResult {
    let name = required(r.name, "name")?;
    let tags = tags_in(r.tags, "tags")?;
    let id = s.tracking.create_experiment(&name, r.artifact_location.as_deref(), &tags).await?;
    Ok(Json(json!({ "experiment_id": id })))
}

#[derive(Deserialize)]
pub(crate) struct ExperimentIdReq {
    experiment_id: Option<String>,
}

pub(crate) async fn get_experiment(State(s): State<AppState>, Params(r): Params<ExperimentIdReq>) -> ApiResult {
    let id = required(r.experiment_id, "experiment_id")?;
    let experiment = s.tracking.get_experiment(&id).await?;
    Ok(Json(json!({ "experiment": experiment })))
}

#[derive(Deserialize)]
pub(crate) struct ExperimentNameReq {
    experiment_name: Option<String>,
}

pub(crate) async fn get_experiment_by_name(State(s): State<AppState>, Params(r): Params<ExperimentNameReq>) -> ApiResult {
    let name = required(r.experiment_name, "experiment_name")?;
    let experiment = s.tracking.get_experiment_by_name(&name).await?;
    Ok(Json(json!({ "experiment": experiment })))
}

#[derive(Deserialize)]
pub(crate) struct SearchExperimentsReq {
    #[serde(default, deserialize_with = "de::int64")]
    max_results: Option<i64>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "de::string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "de::view_type")]
    view_type: ViewType,
    page_token: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct ExperimentsPage {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    experiments: Vec<Experiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(crate) async fn search_experiments(
    State(s): State<AppState>,
    Params(r): Params<SearchExperimentsReq>,
) -> ApiResult<Json<ExperimentsPage>> {
    let max_results = r.max_results.ok_or_else(|| ApiError::missing("max_results"))?;
    let page = s
        .tracking
        .search_experiments(ExperimentSearch {
            filter: r.filter.unwrap_or_default(),
            view: r.view_type,
            max_results,
            order_by: r.order_by,
            page_token: r.page_token,
        })
        .await?;
    Ok(Json(ExperimentsPage { experiments: page.experiments, next_page_token: page.next_page_token }))
}

#[derive(Deserialize)]
pub(crate) struct UpdateExperimentReq {
    experiment_id: Option<String>,
    new_name: Option<String>,
}

pub(crate) async fn update_experiment(State(s): State<AppState>, Params(r): Params<UpdateExperimentReq>) -> ApiResult {
    let id = required(r.experiment_id, "experiment_id")?;
    let new_name = required(r.new_name, "new_name")?;
    s.tracking.rename_experiment(&id, &new_name).await?;
    Ok(empty())
}

pub(crate) async fn delete_experiment(State(s): State<AppState>, Params(r): Params<ExperimentIdReq>) -> ApiResult {
    let id = required(r.experiment_id, "experiment_id")?;
    s.tracking.delete_experiment(&id).await?;
    Ok(empty())
}

pub(crate) async fn restore_experiment(State(s): State<AppState>, Params(r): Params<ExperimentIdReq>) -> ApiResult {
    let id = required(r.experiment_id, "experiment_id")?;
    s.tracking.restore_experiment(&id).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct ExperimentTagReq {
    experiment_id: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

pub(crate) async fn set_experiment_tag(State(s): State<AppState>, Params(r): Params<ExperimentTagReq>) -> ApiResult {
    let id = required(r.experiment_id, "experiment_id")?;
    let key = required(r.key, "key")?;
    s.tracking.set_experiment_tag(&id, &Tag { key, value: r.value.unwrap_or_default() }).await?;
    Ok(empty())
}

pub(crate) async fn delete_experiment_tag(State(s): State<AppState>, Params(r): Params<ExperimentTagReq>) -> ApiResult {
    let id = required(r.experiment_id, "experiment_id")?;
    let key = required(r.key, "key")?;
    s.tracking.delete_experiment_tag(&id, &key).await?;
    Ok(empty())
}

// ---- runs ----

/// A run id under either of the names MLflow accepts.
#[derive(Deserialize)]
pub(crate) struct RunIdReq {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunIdReq {
    fn get(self) -> Result<String, ApiError> {
        required(self.run_id.filter(|s| !s.is_empty()).or(self.run_uuid), "run_id")
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateRunReq {
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "de::int64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<TagIn>,
}

/// runs/create answers the run without its (necessarily empty) outputs, as MLflow does.
#[derive(Serialize)]
struct CreatedRun<'a> {
    info: &'a RunInfo,
    data: &'a RunData,
    inputs: &'a RunInputs,
}

pub(crate) async fn create_run(State(s): State<AppState>, Params(r): Params<CreateRunReq>) -> ApiResult {
    let experiment_id = required(r.experiment_id, "experiment_id")?;
    let run = s
        .tracking
        .create_run(CreateRun {
            experiment_id,
            user_id: r.user_id,
            start_time: r.start_time,
            run_name: r.run_name,
            tags: tags_in(r.tags, "tags")?,
        })
        .await?;
    Ok(Json(json!({ "run": CreatedRun { info: &run.info, data: &run.data, inputs: &run.inputs } })))
}

pub(crate) async fn get_run(State(s): State<AppState>, Params(r): Params<RunIdReq>) -> ApiResult {
    let run = s.tracking.get_run(&r.get()?).await?;
    Ok(Json(json!({ "run": run })))
}

#[derive(Deserialize)]
pub(crate) struct UpdateRunReq {
    #[serde(flatten)]
    id: RunIdReq,
    status: Option<String>,
    #[serde(default, deserialize_with = "de::int64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

pub(crate) async fn update_run(State(s): State<AppState>, Params(r): Params<UpdateRunReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let info = s
        .tracking
        .update_run(&run_id, UpdateRun { status: r.status, end_time: r.end_time, run_name: r.run_name })
        .await?;
    Ok(Json(json!({ "run_info": info })))
}

pub(crate) async fn delete_run(State(s): State<AppState>, Params(r): Params<RunIdReq>) -> ApiResult {
    s.tracking.delete_run(&r.get()?).await?;
    Ok(empty())
}

pub(crate) async fn restore_run(State(s): State<AppState>, Params(r): Params<RunIdReq>) -> ApiResult {
    s.tracking.restore_run(&r.get()?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct SearchRunsReq {
    #[serde(default, deserialize_with = "de::string_list")]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "de::view_type")]
    run_view_type: ViewType,
    #[serde(default, deserialize_with = "de::int64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "de::string_list")]
    order_by: Vec<String>,
    page_token: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct RunsPage {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(crate) async fn search_runs(State(s): State<AppState>, Params(r): Params<SearchRunsReq>) -> ApiResult<Json<RunsPage>> {
    let page = s
        .tracking
        .search_runs(RunSearch {
            experiment_ids: r.experiment_ids,
            filter: r.filter.unwrap_or_default(),
            view: r.run_view_type,
            max_results: r.max_results.unwrap_or(1000),
            order_by: r.order_by,
            page_token: r.page_token,
        })
        .await?;
    Ok(Json(RunsPage { runs: page.runs, next_page_token: page.next_page_token }))
}

// ---- logging ----

#[derive(Deserialize)]
pub(crate) struct MetricIn {
    key: Option<String>,
    #[serde(default, deserialize_with = "de::double")]
    value: Option<f64>,
    #[serde(default, deserialize_with = "de::int64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de::int64")]
    step: Option<i64>,
    /// MLflow 3: the metric also belongs to this logged model, optionally on a dataset.
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

impl MetricIn {
    /// Adds the metric to the batch (and to its model's metrics when it names one).
    fn add_to(self, batch: &mut Batch, path: &str) -> Result<(), ApiError> {
        let metric = Metric {
            key: required(self.key, &format!("{path}key"))?,
            value: self.value.ok_or_else(|| ApiError::missing(&format!("{path}value")))?,
            timestamp: self.timestamp.ok_or_else(|| ApiError::missing(&format!("{path}timestamp")))?,
            step: self.step.unwrap_or(0),
        };
        if let Some(model_id) = self.model_id.filter(|m| !m.is_empty()) {
            batch.model_metrics.push(ModelMetric {
                key: metric.key.clone(),
                value: metric.value,
                timestamp: metric.timestamp,
                step: metric.step,
                dataset_name: self.dataset_name.filter(|d| !d.is_empty()),
                dataset_digest: self.dataset_digest.filter(|d| !d.is_empty()),
                model_id,
                run_id: String::new(),
            });
        }
        batch.metrics.push(metric);
        Ok(())
    }
}

#[derive(Deserialize)]
pub(crate) struct LogMetricReq {
    #[serde(flatten)]
    id: RunIdReq,
    #[serde(flatten)]
    metric: MetricIn,
}

pub(crate) async fn log_metric(State(s): State<AppState>, Params(r): Params<LogMetricReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let mut batch = Batch::default();
    r.metric.add_to(&mut batch, "")?;
    s.tracking.log_batch(&run_id, batch).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct KeyValueReq {
    #[serde(flatten)]
    id: RunIdReq,
    key: Option<String>,
    value: Option<String>,
}

pub(crate) async fn log_parameter(State(s): State<AppState>, Params(r): Params<KeyValueReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let param = Tag { key: required(r.key, "key")?, value: r.value.ok_or_else(|| ApiError::missing("value"))? };
    s.tracking.log_batch(&run_id, Batch { params: vec![param], ..Batch::default() }).await?;
    Ok(empty())
}

pub(crate) async fn set_tag(State(s): State<AppState>, Params(r): Params<KeyValueReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let tag = Tag { key: required(r.key, "key")?, value: r.value.ok_or_else(|| ApiError::missing("value"))? };
    s.tracking.log_batch(&run_id, Batch { tags: vec![tag], ..Batch::default() }).await?;
    Ok(empty())
}

pub(crate) async fn delete_tag(State(s): State<AppState>, Params(r): Params<KeyValueReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let key = required(r.key, "key")?;
    s.tracking.delete_run_tag(&run_id, &key).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct LogBatchReq {
    #[serde(flatten)]
    id: RunIdReq,
    #[serde(default)]
    metrics: Vec<MetricIn>,
    #[serde(default)]
    params: Vec<TagIn>,
    #[serde(default)]
    tags: Vec<TagIn>,
}

pub(crate) async fn log_batch(State(s): State<AppState>, Params(r): Params<LogBatchReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let mut batch = Batch { params: tags_in(r.params, "params")?, tags: tags_in(r.tags, "tags")?, ..Batch::default() };
    for (i, m) in r.metrics.into_iter().enumerate() {
        m.add_to(&mut batch, &format!("metrics[{i}]."))?;
    }
    s.tracking.log_batch(&run_id, batch).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct DatasetIn {
    name: Option<String>,
    digest: Option<String>,
    source_type: Option<String>,
    source: Option<String>,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DatasetInputIn {
    #[serde(default)]
    tags: Vec<TagIn>,
    dataset: Option<DatasetIn>,
}

#[derive(Deserialize)]
pub(crate) struct LogInputsReq {
    #[serde(flatten)]
    id: RunIdReq,
    #[serde(default)]
    datasets: Vec<DatasetInputIn>,
    #[serde(default)]
    models: Vec<ModelInputIn>,
}

#[derive(Deserialize)]
pub(crate) struct ModelInputIn {
    model_id: Option<String>,
}

pub(crate) async fn log_inputs(State(s): State<AppState>, Params(r): Params<LogInputsReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let inputs = r
        .datasets
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let dataset = d.dataset.ok_or_else(|| ApiError::missing(&format!("datasets[{i}].dataset")))?;
            Ok(DatasetInput {
                tags: tags_in(d.tags, &format!("datasets[{i}].tags"))?,
                dataset: Dataset {
                    name: dataset.name.unwrap_or_default(),
                    digest: dataset.digest.unwrap_or_default(),
                    source_type: dataset.source_type.unwrap_or_default(),
                    source: dataset.source.unwrap_or_default(),
                    schema: dataset.schema,
                    profile: dataset.profile,
                },
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let models = r
        .models
        .into_iter()
        .enumerate()
        .map(|(i, m)| Ok(ModelInput { model_id: required(m.model_id, &format!("models[{i}].model_id"))? }))
        .collect::<Result<Vec<_>, ApiError>>()?;
    s.tracking.log_inputs(&run_id, inputs, models).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct ModelOutputIn {
    model_id: Option<String>,
    #[serde(default, deserialize_with = "de::int64")]
    step: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct LogOutputsReq {
    #[serde(flatten)]
    id: RunIdReq,
    models: Option<Vec<ModelOutputIn>>,
}

pub(crate) async fn log_outputs(State(s): State<AppState>, Params(r): Params<LogOutputsReq>) -> ApiResult {
    let run_id = r.id.get()?;
    let models = r
        .models
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::missing("models"))?
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(ModelOutput {
                model_id: required(m.model_id, &format!("models[{i}].model_id"))?,
                step: m.step.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    s.tracking.log_outputs(&run_id, models).await?;
    Ok(empty())
}

// ---- metric history ----

#[derive(Deserialize)]
pub(crate) struct HistoryReq {
    #[serde(flatten)]
    id: RunIdReq,
    metric_key: Option<String>,
    page_token: Option<String>,
    #[serde(default, deserialize_with = "de::int64")]
    max_results: Option<i64>,
}

/// Streams `{"metrics": [...], "next_page_token": ...}` as the store yields points, so a
/// history of millions of points never sits whole in memory.
pub(crate) async fn get_metric_history(State(s): State<AppState>, Params(r): Params<HistoryReq>) -> ApiResult<Response> {
    let run_id = r.id.get()?;
    let key = required(r.metric_key, "metric_key")?;
    let rx = s.tracking.metric_history(&run_id, &key, r.max_results, r.page_token.as_deref()).await?;
    struct Writer {
        rx: tokio::sync::mpsc::Receiver<Result<HistoryChunk>>,
        opened: bool,
        done: bool,
    }
    let body = stream::unfold(Writer { rx, opened: false, done: false }, |mut w| async move {
        if w.done {
            return None;
        }
        let piece = match w.rx.recv().await {
            Some(Ok(HistoryChunk::Points(points))) => {
                let piece = encode_points(&points, w.opened);
                w.opened = true;
                piece
            }
            Some(Ok(HistoryChunk::End { next_page_token })) => {
                w.done = true;
                let mut out = String::new();
                if w.opened {
                    out.push(']');
                }
                if let Some(token) = next_page_token {
                    out.push_str(if w.opened { ", " } else { "{" });
                    out.push_str(&format!("\"next_page_token\": {}", Value::String(token)));
                } else if !w.opened {
                    out.push('{');
                }
                out.push('}');
                Ok(Bytes::from(out))
            }
            Some(Err(e)) => {
                w.done = true;
                tracing::error!(error = %e, "metric history failed while streaming");
                Err(std::io::Error::other(e.to_string()))
            }
            None => {
                w.done = true;
                Err(std::io::Error::other("metric history ended early"))
            }
        };
        Some((piece, w))
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}

fn encode_points(points: &[Metric], continued: bool) -> std::io::Result<Bytes> {
    let mut buf = Vec::with_capacity(points.len() * 80 + 16);
    buf.extend_from_slice(if continued { b"," } else { b"{\"metrics\": [" });
    for (i, m) in points.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut buf, m).map_err(std::io::Error::other)?;
    }
    Ok(Bytes::from(buf))
}

#[derive(Deserialize)]
pub(crate) struct BulkIntervalReq {
    #[serde(default, deserialize_with = "de::string_list")]
    run_ids: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "de::int64")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "de::int64")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "de::int64")]
    max_results: Option<i64>,
}

#[derive(Serialize)]
pub(crate) struct BulkMetrics {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metrics: Vec<RunMetric>,
}

pub(crate) async fn get_metric_history_bulk_interval(
    State(s): State<AppState>,
    Params(r): Params<BulkIntervalReq>,
) -> ApiResult<Json<BulkMetrics>> {
    let metric_key = required(r.metric_key, "metric_key")?;
    let metrics = s
        .tracking
        .metric_history_bulk_interval(BulkIntervalQuery {
            run_ids: r.run_ids,
            metric_key,
            start_step: r.start_step,
            end_step: r.end_step,
            max_results: r.max_results,
        })
        .await?;
    Ok(Json(BulkMetrics { metrics }))
}
