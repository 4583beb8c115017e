//! A tracking server (Kiln's or MLflow's) over its REST API: model URIs resolved, and the
//! model's files listed and fetched through its proxied artifact API.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use kiln_registry::ModelUri;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A model URI resolved to one version and where its files are.
/// Most pages of a logged-model search read while looking for a run's model.
const MAX_PAGES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The registry version (`3`), the logged model's id (also for a run's logged model), or `1`
    /// for a run's artifacts.
    pub version: String,
    /// Where the files are, as the server names them (`mlflow-artifacts:/1/models/m-.../artifacts`).
    pub artifact_uri: String,
}

#[derive(Debug, Clone)]
pub struct TrackingClient {
    base: String,
    http: reqwest::Client,
}

impl TrackingClient {
    /// A client of the tracking server at `base` (`http://127.0.0.1:5000`).
    pub fn new(base: &str) -> Result<TrackingClient> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::invalid(format!("the tracking URI '{base}' is not an http:// or https:// URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Io(format!("cannot make an HTTP client: {e}")))?;
        Ok(TrackingClient { base, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The version a URI names now, and where its files are.
    pub async fn resolve(&self, uri: &str) -> Result<Resolved> {
        if let Some((run_id, path)) = run_uri(uri)? {
            let run = self.get("/api/2.0/mlflow/runs/get", &[("run_id", run_id)]).await?;
            let (name, rest) = path.split_once('/').unwrap_or((path, ""));
            let experiment_id = text(&run, &["run", "info", "experiment_id"])?;
            if let Some((model_id, model_uri)) = self.run_model(&experiment_id, run_id, name).await? {
                return Ok(Resolved { version: model_id, artifact_uri: join_uri(&model_uri, rest) });
            }
            let root = text(&run, &["run", "info", "artifact_uri"])?;
            return Ok(Resolved { version: "1".into(), artifact_uri: join_uri(&root, path) });
        }
        let parsed = ModelUri::parse(uri)?;
        let (name, version) = match parsed {
            ModelUri::LoggedModel { model_id } => {
                let model = self.get(&format!("/api/2.0/mlflow/logged-models/{model_id}"), &[]).await?;
                return Ok(Resolved { version: model_id, artifact_uri: text(&model, &["model", "info", "artifact_uri"])? });
            }
            ModelUri::Version { name, version } => (name, version.to_string()),
            ModelUri::Alias { name, alias } => {
                let found = self.get("/api/2.0/mlflow/registered-models/alias", &[("name", &name), ("alias", &alias)]).await?;
                let version = text(&found, &["model_version", "version"])?;
                (name, version)
            }
            ModelUri::Stage { name, stage } => {
                let version = self.newest(&name, Some(stage.as_str())).await?;
                (name, version)
            }
            ModelUri::Latest { name } => {
                let version = self.newest(&name, None).await?;
                (name, version)
            }
        };
        let found = self.get("/api/2.0/mlflow/model-versions/get-download-uri", &[("name", &name), ("version", &version)]).await?;
        Ok(Resolved { version, artifact_uri: text(&found, &["artifact_uri"])? })
    }

    /// The id and files of the model a run logged under `name`: MLflow 3 keeps a logged model's
    /// files beside the run's, and `runs:/<run>/<name>` names them (found as MLflow's client
    /// finds them: by name in the run's experiment, then by source run).
    async fn run_model(&self, experiment_id: &str, run_id: &str, name: &str) -> Result<Option<(String, String)>> {
        if name.is_empty() || name.contains('\'') {
            return Ok(None);
        }
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut body = json!({ "experiment_ids": [experiment_id], "filter": format!("name = '{name}'"), "max_results": 100 });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let page = self.post("/api/2.0/mlflow/logged-models/search", body).await?;
            for model in page.get("models").and_then(Value::as_array).into_iter().flatten() {
                if model.pointer("/info/source_run_id").and_then(Value::as_str) == Some(run_id) {
                    return Ok(Some((text(model, &["info", "model_id"])?, text(model, &["info", "artifact_uri"])?)));
                }
            }
            token = page.get("next_page_token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(None)
    }

    /// The newest version of a model, in a stage or in any.
    async fn newest(&self, name: &str, stage: Option<&str>) -> Result<String> {
        let body = match stage {
            Some(stage) => json!({ "name": name, "stages": [stage] }),
            None => json!({ "name": name }),
        };
        let found = self.post("/api/2.0/mlflow/registered-models/get-latest-versions", body).await?;
        found
            .get("model_versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("version").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()))
            .max()
            .map(|v| v.to_string())
            .ok_or_else(|| match stage {
                Some(stage) => Error::not_found(format!("the model '{name}' has no version in the stage {stage}")),
                None => Error::not_found(format!("the model '{name}' has no versions")),
            })
    }

    /// The files and folders directly inside `path` of the proxied artifact store, as (name, is
    /// a folder) pairs.
    pub(crate) async fn list(&self, path: &str) -> Result<Vec<(String, bool)>> {
        let found = self.get("/api/2.0/mlflow-artifacts/artifacts", &[("path", path)]).await?;
        Ok(found
            .get("files")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|entry| {
                let name = entry.get("path").and_then(Value::as_str).unwrap_or_default().to_string();
                (name, entry.get("is_dir").and_then(Value::as_bool).unwrap_or(false))
            })
            .collect())
    }

    /// The bytes of the file at `path` of the proxied artifact store, as they arrive.
    pub(crate) async fn open_file(&self, path: &str) -> Result<impl Stream<Item = Result<Bytes>> + Send + use<>> {
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{}", self.base, encode_path(path));
        let response = self.http.get(&url).send().await.map_err(|e| self.unreachable(e))?;
        let response = self.check(response).await?;
        let base = self.base.clone();
        Ok(response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| Error::Unavailable(format!("cannot reach the tracking server at {base}: {e}")))
        }))
    }

    /// Writes a file at `path` in the server's proxied artifact store.
    pub async fn upload(&self, path: &str, bytes: Bytes) -> Result<()> {
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{}", self.base, encode_path(path));
        let response = self.http.put(&url).body(bytes).send().await.map_err(|e| self.unreachable(e))?;
        self.check(response).await.map(|_| ())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let response = self.http.get(format!("{}{path}", self.base)).query(query).send().await.map_err(|e| self.unreachable(e))?;
        self.json(response).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let response = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.map_err(|e| self.unreachable(e))?;
        self.json(response).await
    }

    async fn json(&self, response: reqwest::Response) -> Result<Value> {
        let response = self.check(response).await?;
        response.json().await.map_err(|e| Error::Unavailable(format!("the tracking server at {} answered with unreadable JSON: {e}", self.base)))
    }

    /// The response if it is a success; else the server's error as ours.
    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body.get("message").and_then(Value::as_str).unwrap_or("no message").to_string();
        let code = body.get("error_code").and_then(Value::as_str).unwrap_or_default();
        Err(if status == reqwest::StatusCode::NOT_FOUND || code == "RESOURCE_DOES_NOT_EXIST" {
            Error::NotFound(message)
        } else if status.is_client_error() {
            Error::Invalid(message)
        } else {
            Error::Unavailable(format!("the tracking server at {} answered {status}: {message}", self.base))
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        Error::Unavailable(format!("cannot reach the tracking server at {}: {e}", self.base))
    }
}

/// The run and the path inside its artifacts that a `runs:/<run_id>/<path>` URI names; None for
/// any other URI.
pub(crate) fn run_uri(uri: &str) -> Result<Option<(&str, &str)>> {
    let Some(rest) = uri.strip_prefix("runs:/") else { return Ok(None) };
    let rest = rest.trim_start_matches('/');
    let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
    if run_id.is_empty() {
        return Err(Error::invalid(format!("'{uri}' names no run: use runs:/<run_id>/<path>")));
    }
    Ok(Some((run_id, path)))
}

/// An artifact URI with a relative path below it.
pub(crate) fn join_uri(root: &str, path: &str) -> String {
    match path.trim_matches('/') {
        "" => root.to_string(),
        path => format!("{}/{path}", root.trim_end_matches('/')),
    }
}

/// The path inside the proxied artifact store that an `mlflow-artifacts:` URI names (with or
/// without a host: `mlflow-artifacts:/1/x`, `mlflow-artifacts://host:5000/1/x`).
pub(crate) fn proxied_path(uri: &str) -> Result<String> {
    let rest = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
        Error::Model(format!(
            "the model's files are at {uri}; kiln serve downloads models through the tracking server's proxied artifact \
             API (mlflow-artifacts:/), so start the tracking server with artifact proxying (kiln server does by default)"
        ))
    })?;
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Ok(path.trim_matches('/').to_string())
}

pub(crate) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Percent-encodes each segment of a path for a URL.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn text(value: &Value, path: &[&str]) -> Result<String> {
    let mut v = value;
    for key in path {
        v = v.get(key).ok_or_else(|| Error::Unavailable(format!("the tracking server's answer has no {}", path.join("."))))?;
    }
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(Error::Unavailable(format!("the tracking server's answer has no text at {}", path.join(".")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_uris_give_their_path() {
        assert_eq!(proxied_path("mlflow-artifacts:/1/models/m-1/artifacts").unwrap(), "1/models/m-1/artifacts");
        assert_eq!(proxied_path("mlflow-artifacts://127.0.0.1:5000/1/x/").unwrap(), "1/x");
        assert!(proxied_path("s3://bucket/1/x").is_err());
        assert!(proxied_path("file:///tmp/x").is_err());
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("1/a b/c%d"), "1/a%20b/c%25d");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a", "x"), "a/x");
    }
}
