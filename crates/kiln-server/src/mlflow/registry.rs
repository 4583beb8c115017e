//! MLflow's model registry endpoints (`registered-models/*`, `model-versions/*`) over
//! [`kiln_registry::Registry`].

use axum::Json;
use axum::extract::State;
use kiln_registry::{CreateModelVersion, ModelVersion, RegisteredModel, Search};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::de;
use super::extract::Params;
use super::tracking::{ApiResult, TagIn, empty, required, tags_in};
use crate::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct ModelReq {
    name: Option<String>,
    #[serde(default)]
    tags: Vec<TagIn>,
    description: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
    alias: Option<String>,
    #[serde(default, deserialize_with = "de::string_or_number")]
    version: Option<String>,
    #[serde(default, deserialize_with = "de::string_list")]
    stages: Vec<String>,
}

impl ModelReq {
    fn name(&self) -> Result<String, ApiError> {
        required(self.name.clone(), "name")
    }

    fn version(&self) -> Result<String, ApiError> {
        required(self.version.clone(), "version")
    }
}

fn model(m: RegisteredModel) -> Json<serde_json::Value> {
    Json(json!({ "registered_model": m }))
}

fn version(v: ModelVersion) -> Json<serde_json::Value> {
    Json(json!({ "model_version": v }))
}

pub(crate) async fn create_model(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let name = r.name()?;
    let tags = tags_in(r.tags, "tags")?;
    Ok(model(s.registry.create_registered_model(&name, &tags, r.description.as_deref()).await?))
}

pub(crate) async fn get_model(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    Ok(model(s.registry.get_registered_model(&r.name()?).await?))
}

pub(crate) async fn rename_model(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let new_name = required(r.new_name.clone(), "new_name")?;
    Ok(model(s.registry.rename_registered_model(&r.name()?, &new_name).await?))
}

pub(crate) async fn update_model(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    Ok(model(s.registry.update_registered_model(&r.name()?, r.description.as_deref()).await?))
}

pub(crate) async fn delete_model(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    s.registry.delete_registered_model(&r.name()?).await?;
    Ok(empty())
}

pub(crate) async fn set_model_tag(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let key = required(r.key.clone(), "key")?;
    let tag = kiln_tracking::Tag { key, value: r.value.clone().unwrap_or_default() };
    s.registry.set_registered_model_tag(&r.name()?, &tag).await?;
    Ok(empty())
}

pub(crate) async fn delete_model_tag(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let key = required(r.key.clone(), "key")?;
    s.registry.delete_registered_model_tag(&r.name()?, &key).await?;
    Ok(empty())
}

#[derive(Serialize)]
pub(crate) struct VersionList {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    model_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(crate) async fn get_latest_versions(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult<Json<VersionList>> {
    let model_versions = s.registry.get_latest_versions(&r.name()?, &r.stages).await?;
    Ok(Json(VersionList { model_versions, next_page_token: None }))
}

#[derive(Deserialize)]
pub(crate) struct SearchReq {
    filter: Option<String>,
    #[serde(default, deserialize_with = "de::int64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "de::string_list")]
    order_by: Vec<String>,
    page_token: Option<String>,
}

impl SearchReq {
    fn into_search(self) -> Search {
        Search {
            filter: self.filter.unwrap_or_default(),
            max_results: self.max_results,
            order_by: self.order_by,
            page_token: self.page_token.filter(|t| !t.is_empty()),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ModelList {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    registered_models: Vec<RegisteredModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(crate) async fn search_models(State(s): State<AppState>, Params(r): Params<SearchReq>) -> ApiResult<Json<ModelList>> {
    let page = s.registry.search_registered_models(r.into_search()).await?;
    Ok(Json(ModelList { registered_models: page.registered_models, next_page_token: page.next_page_token }))
}

pub(crate) async fn search_versions(State(s): State<AppState>, Params(r): Params<SearchReq>) -> ApiResult<Json<VersionList>> {
    let page = s.registry.search_model_versions(r.into_search()).await?;
    Ok(Json(VersionList { model_versions: page.model_versions, next_page_token: page.next_page_token }))
}

#[derive(Deserialize)]
pub(crate) struct CreateVersionReq {
    name: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<TagIn>,
    run_link: Option<String>,
    description: Option<String>,
    model_id: Option<String>,
}

pub(crate) async fn create_version(State(s): State<AppState>, Params(r): Params<CreateVersionReq>) -> ApiResult {
    let created = s
        .registry
        .create_model_version(CreateModelVersion {
            name: required(r.name, "name")?,
            source: required(r.source, "source")?,
            run_id: r.run_id,
            tags: tags_in(r.tags, "tags")?,
            run_link: r.run_link,
            description: r.description,
            model_id: r.model_id,
        })
        .await?;
    Ok(version(created))
}

pub(crate) async fn get_version(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    Ok(version(s.registry.get_model_version(&r.name()?, &r.version()?).await?))
}

pub(crate) async fn update_version(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    Ok(version(s.registry.update_model_version(&r.name()?, &r.version()?, r.description.as_deref()).await?))
}

pub(crate) async fn delete_version(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    s.registry.delete_model_version(&r.name()?, &r.version()?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub(crate) struct TransitionReq {
    name: Option<String>,
    #[serde(default, deserialize_with = "de::string_or_number")]
    version: Option<String>,
    stage: Option<String>,
    #[serde(default, deserialize_with = "de::boolean")]
    archive_existing_versions: Option<bool>,
}

pub(crate) async fn transition_stage(State(s): State<AppState>, Params(r): Params<TransitionReq>) -> ApiResult {
    let name = required(r.name, "name")?;
    let number = required(r.version, "version")?;
    let stage = required(r.stage, "stage")?;
    let archive = r.archive_existing_versions.ok_or_else(|| ApiError::missing("archive_existing_versions"))?;
    Ok(version(s.registry.transition_model_version_stage(&name, &number, &stage, archive).await?))
}

pub(crate) async fn download_uri(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let uri = s.registry.get_model_version_download_uri(&r.name()?, &r.version()?).await?;
    Ok(Json(json!({ "artifact_uri": uri })))
}

pub(crate) async fn set_version_tag(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let key = required(r.key.clone(), "key")?;
    let tag = kiln_tracking::Tag { key, value: r.value.clone().unwrap_or_default() };
    s.registry.set_model_version_tag(&r.name()?, &r.version()?, &tag).await?;
    Ok(empty())
}

pub(crate) async fn delete_version_tag(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let key = required(r.key.clone(), "key")?;
    s.registry.delete_model_version_tag(&r.name()?, &r.version()?, &key).await?;
    Ok(empty())
}

pub(crate) async fn set_alias(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let alias = required(r.alias.clone(), "alias")?;
    s.registry.set_registered_model_alias(&r.name()?, &alias, &r.version()?).await?;
    Ok(empty())
}

pub(crate) async fn delete_alias(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let alias = required(r.alias.clone(), "alias")?;
    s.registry.delete_registered_model_alias(&r.name()?, &alias).await?;
    Ok(empty())
}

pub(crate) async fn get_by_alias(State(s): State<AppState>, Params(r): Params<ModelReq>) -> ApiResult {
    let alias = required(r.alias.clone(), "alias")?;
    Ok(version(s.registry.get_model_version_by_alias(&r.name()?, &alias).await?))
}
