//! MLflow 3's LoggedModel endpoints (`/api/2.0/mlflow/logged-models`) over
//! [`kiln_tracking::Tracking`].

use axum::Json;
use axum::extract::{Path, State};
use kiln_tracking::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::de;
use super::extract::Params;
use super::tracking::{ApiResult, TagIn, empty, required, tags_in};
use crate::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct CreateReq {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<TagIn>,
    #[serde(default)]
    tags: Vec<TagIn>,
}

pub(crate) async fn create(State(s): State<AppState>, Params(r): Params<CreateReq>) -> ApiResult {
    let model = s
        .tracking
        .create_logged_model(CreateLoggedModel {
            experiment_id: required(r.experiment_id, "experiment_id")?,
            name: r.name,
            model_type: r.model_type,
            source_run_id: r.source_run_id,
            params: tags_in(r.params, "params")?,
            tags: tags_in(r.tags, "tags")?,
        })
        .await?;
    Ok(Json(json!({ "model": model })))
}

#[derive(Deserialize)]
pub(crate) struct GetReq {
    #[serde(default, deserialize_with = "de::boolean")]
    allow_deleted: Option<bool>,
}

pub(crate) async fn get(State(s): State<AppState>, Path(model_id): Path<String>, Params(r): Params<GetReq>) -> ApiResult {
    let model = s.tracking.get_logged_model_with(&model_id, r.allow_deleted.unwrap_or(false)).await?;
    Ok(Json(json!({ "model": model })))
}

#[derive(Deserialize)]
pub(crate) struct FinalizeReq {
    #[serde(default, deserialize_with = "de::string_or_number")]
    status: Option<String>,
}

pub(crate) async fn finalize(State(s): State<AppState>, Path(model_id): Path<String>, Params(r): Params<FinalizeReq>) -> ApiResult {
    let text = required(r.status, "status")?;
    let status = LoggedModelStatus::parse(&text).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid status '{text}': use LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED or LOGGED_MODEL_PENDING"
        ))
    })?;
    let model = s.tracking.finalize_logged_model(&model_id, status).await?;
    Ok(Json(json!({ "model": model })))
}

pub(crate) async fn delete(State(s): State<AppState>, Path(model_id): Path<String>) -> ApiResult {
    s.tracking.delete_logged_model(&model_id).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct PairsReq {
    #[serde(default)]
    tags: Vec<TagIn>,
    #[serde(default)]
    params: Vec<TagIn>,
}

pub(crate) async fn set_tags(State(s): State<AppState>, Path(model_id): Path<String>, Params(r): Params<PairsReq>) -> ApiResult {
    s.tracking.set_logged_model_tags(&model_id, tags_in(r.tags, "tags")?).await?;
    Ok(empty())
}

pub(crate) async fn delete_tag(State(s): State<AppState>, Path((model_id, key)): Path<(String, String)>) -> ApiResult {
    s.tracking.delete_logged_model_tag(&model_id, &key).await?;
    Ok(empty())
}

pub(crate) async fn log_params(State(s): State<AppState>, Path(model_id): Path<String>, Params(r): Params<PairsReq>) -> ApiResult {
    s.tracking.log_logged_model_params(&model_id, tags_in(r.params, "params")?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct OrderIn {
    field_name: Option<String>,
    #[serde(default)]
    ascending: Option<bool>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DatasetIn {
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SearchReq {
    experiment_ids: Option<Vec<String>>,
    filter: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetIn>,
    #[serde(default, deserialize_with = "de::int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderIn>,
    page_token: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SearchPage {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    models: Vec<LoggedModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(crate) async fn search(State(s): State<AppState>, Params(r): Params<SearchReq>) -> ApiResult<Json<SearchPage>> {
    let order_by = r
        .order_by
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            Ok(LoggedModelOrder {
                field_name: required(o.field_name, &format!("order_by[{i}].field_name"))?,
                ascending: o.ascending.unwrap_or(true),
                dataset_name: o.dataset_name,
                dataset_digest: o.dataset_digest,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let datasets = r
        .datasets
        .into_iter()
        .map(|d| DatasetFilter { dataset_name: d.dataset_name.unwrap_or_default(), dataset_digest: d.dataset_digest })
        .collect();
    let page = s
        .tracking
        .search_logged_models(LoggedModelSearch {
            experiment_ids: r.experiment_ids.ok_or_else(|| ApiError::missing("experiment_ids"))?,
            filter: r.filter.unwrap_or_default(),
            datasets,
            max_results: r.max_results,
            order_by,
            page_token: r.page_token.filter(|t| !t.is_empty()),
        })
        .await?;
    Ok(Json(SearchPage { models: page.models, next_page_token: page.next_page_token }))
}
