//! MLflow's proxied artifact API (`/api/2.0/mlflow-artifacts/artifacts/...`) and the run-based
//! artifact listing and download, over [`kiln_artifacts::ArtifactStore`]. Paths are relative to
//! the artifact root, as in `mlflow-artifacts:/<experiment>/<run>/artifacts/<file>`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_artifacts::{ArtifactPath, FileInfo};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::Params;
use crate::AppState;
use crate::error::ApiError;

impl From<kiln_artifacts::Error> for ApiError {
    fn from(e: kiln_artifacts::Error) -> Self {
        let kind = e.kind();
        if kind == kiln_core::ErrorKind::Internal {
            // The details name folders of the server's disk: they go to the log, not the client.
            tracing::error!(error = %e, "artifact request failed");
            return ApiError::new(kind, "The artifact store failed; the server log has the details");
        }
        ApiError::new(kind, e.to_string())
    }
}

fn checked(raw: &str) -> Result<ArtifactPath, ApiError> {
    Ok(ArtifactPath::parse(raw)?)
}

pub(crate) async fn upload(State(s): State<AppState>, Path(raw): Path<String>, req: Request) -> Result<StatusCode, ApiError> {
    if raw.ends_with('/') {
        return Err(ApiError::invalid("An artifact path must name a file, not end with '/'"));
    }
    let path = checked(&raw)?;
    s.artifacts.put(&path, req.into_body().into_data_stream()).await?;
    Ok(StatusCode::OK)
}

pub(crate) async fn download(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    file_response(&s, &checked(&raw)?).await
}

pub(crate) async fn delete(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Json<Value>, ApiError> {
    let path = checked(&raw)?;
    if path.is_root() {
        return Err(ApiError::invalid("Deleting the whole artifact root is not allowed"));
    }
    match s.artifacts.delete(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == kiln_core::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(crate) struct ListReq {
    path: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Listing {
    #[serde(skip_serializing_if = "Option::is_none")]
    root_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<FileJson>,
}

#[derive(Serialize)]
struct FileJson {
    path: String,
    is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_size: Option<u64>,
}

fn file_json(info: FileInfo, prefix: &str) -> FileJson {
    let path = if prefix.is_empty() { info.path } else { format!("{prefix}/{}", info.path) };
    // MLflow leaves the size out for empty files as well as for folders.
    FileJson { path, is_dir: info.is_dir, file_size: info.file_size.filter(|&n| n > 0) }
}

/// Lists a folder by its path from the artifact root: names only, as MLflow answers.
pub(crate) async fn list(State(s): State<AppState>, Params(r): Params<ListReq>) -> Result<Json<Listing>, ApiError> {
    let path = checked(r.path.as_deref().unwrap_or(""))?;
    let files = s.artifacts.list(&path).await?.into_iter().map(|f| file_json(f, "")).collect();
    Ok(Json(Listing { root_uri: None, files }))
}

#[derive(Deserialize)]
pub(crate) struct RunArtifactReq {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
}

impl RunArtifactReq {
    fn run_id(&self) -> Result<String, ApiError> {
        self.run_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.run_uuid.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::missing("run_id"))
    }
}

/// The folder inside this server's store that an artifact URI of `what` names.
fn store_root(uri: &str, what: &str) -> Result<ArtifactPath, ApiError> {
    let Some(path) = ArtifactPath::from_proxy_uri(uri) else {
        return Err(ApiError::invalid(format!(
            "The artifacts of {what} live at {uri}, which this server does not serve; read them from there"
        )));
    };
    Ok(path?)
}

/// Lists `sub` inside `root_uri`, with paths relative to the root.
async fn list_under(s: &AppState, root_uri: String, what: &str, sub: Option<&str>) -> Result<Json<Listing>, ApiError> {
    let root = store_root(&root_uri, what)?;
    let sub = checked(sub.unwrap_or(""))?;
    let files = s.artifacts.list(&root.join(&sub)).await?.into_iter().map(|f| file_json(f, sub.as_str())).collect();
    Ok(Json(Listing { root_uri: Some(root_uri), files }))
}

/// Sends the file `sub` inside `root_uri`.
async fn file_under(s: &AppState, root_uri: &str, what: &str, sub: Option<&str>, field: &str) -> Result<Response, ApiError> {
    let root = store_root(root_uri, what)?;
    let sub = checked(sub.filter(|p| !p.is_empty()).ok_or_else(|| ApiError::missing(field))?)?;
    file_response(s, &root.join(&sub)).await
}

/// Lists a run's artifacts with paths relative to the run, as `/api/2.0/mlflow/artifacts/list`.
pub(crate) async fn list_run(State(s): State<AppState>, Params(r): Params<RunArtifactReq>) -> Result<Json<Listing>, ApiError> {
    let run_id = r.run_id()?;
    let uri = s.tracking.get_run(&run_id).await?.info.artifact_uri;
    list_under(&s, uri, &format!("run {run_id}"), r.path.as_deref()).await
}

/// Downloads one file of a run, as the UI's `/get-artifact`.
pub(crate) async fn get_run_artifact(State(s): State<AppState>, Params(r): Params<RunArtifactReq>) -> Result<Response, ApiError> {
    let run_id = r.run_id()?;
    let uri = s.tracking.get_run(&run_id).await?.info.artifact_uri;
    file_under(&s, &uri, &format!("run {run_id}"), r.path.as_deref(), "path").await
}

#[derive(Deserialize)]
pub(crate) struct ModelDirectoryReq {
    artifact_directory_path: Option<String>,
}

/// Lists a logged model's artifacts, relative to its artifact folder.
pub(crate) async fn list_logged_model(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    Params(r): Params<ModelDirectoryReq>,
) -> Result<Json<Listing>, ApiError> {
    let uri = s.tracking.get_logged_model(&model_id).await?.info.artifact_uri;
    list_under(&s, uri, &format!("model {model_id}"), r.artifact_directory_path.as_deref()).await
}

#[derive(Deserialize)]
pub(crate) struct ModelFileReq {
    artifact_file_path: Option<String>,
}

/// Downloads one file of a logged model.
pub(crate) async fn get_logged_model_artifact(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    Params(r): Params<ModelFileReq>,
) -> Result<Response, ApiError> {
    let Some(file) = r.artifact_file_path.filter(|p| !p.is_empty()) else {
        let mut e = ApiError::missing("artifact_file_path");
        e.code = "BAD_REQUEST";
        return Err(e);
    };
    let uri = s.tracking.get_logged_model(&model_id).await?.info.artifact_uri;
    file_under(&s, &uri, &format!("model {model_id}"), Some(&file), "artifact_file_path").await
}

#[derive(Deserialize)]
pub(crate) struct VersionFileReq {
    name: Option<String>,
    version: Option<String>,
    path: Option<String>,
}

/// Downloads one file of a registered model version.
pub(crate) async fn get_model_version_artifact(
    State(s): State<AppState>,
    Params(r): Params<VersionFileReq>,
) -> Result<Response, ApiError> {
    let name = r.name.ok_or_else(|| ApiError::missing("name"))?;
    let version = r.version.ok_or_else(|| ApiError::missing("version"))?;
    let uri = s.registry.get_model_version_download_uri(&name, &version).await?;
    file_under(&s, &uri, &format!("model {name} version {version}"), r.path.as_deref(), "path").await
}

async fn file_response(s: &AppState, path: &ArtifactPath) -> Result<Response, ApiError> {
    let (size, stream) = match s.artifacts.get(path).await {
        Ok(found) => found,
        Err(e) if e.kind() == kiln_core::ErrorKind::NotFound => {
            let is_dir = !path.is_root() && !s.artifacts.list(path).await?.is_empty();
            return Err(if is_dir || path.is_root() {
                ApiError::invalid(format!("'{}' is a folder, not a file: list it instead", path.as_str()))
            } else {
                ApiError::new(kiln_core::ErrorKind::NotFound, format!("No such artifact: '{}'", path.as_str()))
            });
        }
        Err(e) => return Err(e.into()),
    };
    let name = path.as_str().rsplit('/').next().unwrap_or("artifact");
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", name.replace(['"', '\\'], "_"))) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A content type from the file name; anything unknown is plain bytes. HTML and SVG go out as
/// text so that an uploaded page cannot run script on the server's origin.
fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        _ if name == "MLmodel" => "text/plain; charset=utf-8",
        Some("txt" | "log" | "md" | "py" | "yaml" | "yml" | "csv" | "tsv") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

// ---- multipart uploads (the client's MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD) ----

#[derive(Deserialize)]
pub(crate) struct UploadReq {
    /// The client's local file: its name is the uploaded file's name.
    path: Option<String>,
    #[serde(default, deserialize_with = "super::de::int64")]
    num_parts: Option<i64>,
    upload_id: Option<String>,
    #[serde(default)]
    parts: Vec<PartIn>,
}

#[derive(Deserialize)]
pub(crate) struct PartIn {
    #[serde(default, deserialize_with = "super::de::int64")]
    part_number: Option<i64>,
    etag: Option<String>,
}

impl UploadReq {
    /// The file the upload writes: the folder in the route, then the local file's name.
    fn destination(&self, folder: &str) -> Result<ArtifactPath, ApiError> {
        let local = self.path.as_deref().filter(|p| !p.is_empty()).ok_or_else(|| ApiError::missing("path"))?;
        let name = local.rsplit(['/', '\\']).next().unwrap_or(local);
        let folder = folder.trim_end_matches('/');
        checked(&if folder.is_empty() { name.to_string() } else { format!("{folder}/{name}") })
    }

    fn upload_id(&self) -> Result<&str, ApiError> {
        self.upload_id.as_deref().filter(|id| !id.is_empty()).ok_or_else(|| ApiError::missing("upload_id"))
    }
}

/// This server's address as the client reached it, for the URLs parts are sent to.
fn base_url(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))
        .ok_or_else(|| ApiError::invalid("A multipart upload needs the request's Host header"))?;
    let scheme = match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

pub(crate) async fn create_upload(
    State(s): State<AppState>,
    Path(folder): Path<String>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    Params(r): Params<UploadReq>,
) -> Result<Json<Value>, ApiError> {
    let destination = r.destination(&folder)?;
    let num_parts = r.num_parts.unwrap_or(1);
    let parts = u32::try_from(num_parts)
        .ok()
        .filter(|n| (1..=kiln_artifacts::MAX_UPLOAD_PARTS).contains(n))
        .ok_or_else(|| ApiError::invalid(format!("num_parts must be between 1 and {}", kiln_artifacts::MAX_UPLOAD_PARTS)))?;
    let upload_id = s.artifacts.create_upload(&destination, parts).await?;
    let prefix = uri.path().split("/mpu/create/").next().unwrap_or_default().to_string();
    let base = base_url(&headers)?;
    let credentials: Vec<Value> = (1..=parts)
        .map(|n| json!({ "url": format!("{base}{prefix}/mpu/upload/{upload_id}/{n}"), "part_number": n, "headers": {} }))
        .collect();
    Ok(Json(json!({ "upload_id": upload_id, "credentials": credentials })))
}

/// Receives one part; the answer's ETag header is what completion checks it by.
pub(crate) async fn upload_part(
    State(s): State<AppState>,
    Path((upload_id, part)): Path<(String, u32)>,
    req: Request,
) -> Result<Response, ApiError> {
    let etag = s.artifacts.put_part(&upload_id, part, req.into_body().into_data_stream()).await?;
    let mut response = Json(json!({})).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

pub(crate) async fn complete_upload(
    State(s): State<AppState>,
    Path(folder): Path<String>,
    Params(r): Params<UploadReq>,
) -> Result<Json<Value>, ApiError> {
    let destination = r.destination(&folder)?;
    let parts = r
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let number = p
                .part_number
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::missing(&format!("parts[{i}].part_number")))?;
            Ok(kiln_artifacts::UploadPart { part_number: number, etag: p.etag.clone().unwrap_or_default() })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if parts.is_empty() {
        return Err(ApiError::missing("parts"));
    }
    s.artifacts.complete_upload(&destination, r.upload_id()?, &parts).await?;
    Ok(Json(json!({})))
}

pub(crate) async fn abort_upload(
    State(s): State<AppState>,
    Path(folder): Path<String>,
    Params(r): Params<UploadReq>,
) -> Result<Json<Value>, ApiError> {
    let destination = r.destination(&folder)?;
    s.artifacts.abort_upload(&destination, r.upload_id()?).await?;
    Ok(Json(json!({})))
}
