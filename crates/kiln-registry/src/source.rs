//! Where a model version's files come from, and `models:/` URIs.
//!
//! A version's `source` is accepted only when it names files in this server's artifact store:
//! `models:/<model_id>` (a logged model), `models:/<name>/<version>` (another version),
//! `runs:/<run_id>/<path>` (a run's artifacts), or `mlflow-artifacts:/<path>` inside the
//! artifact folder of the run or logged model given with it. Each resolves to a storage
//! location under the artifact root; paths are checked by [`ArtifactPath::parse`], the one gate
//! every artifact path goes through, so `..` in any encoding, absolute paths and the like are
//! refused before anything is stored.

use kiln_artifacts::{ArtifactPath, PROXY_SCHEME};

use crate::entities::{ModelVersion, Stage};
use crate::error::{Error, Result};
use crate::Registry;

/// A parsed `models:/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/name/3`
    Version { name: String, version: i64 },
    /// `models:/name/Production`: the newest version in the stage.
    Stage { name: String, stage: Stage },
    /// `models:/name/latest`: the newest version in any stage.
    Latest { name: String },
    /// `models:/name@champion`
    Alias { name: String, alias: String },
    /// `models:/m-...`: a logged model.
    LoggedModel { model_id: String },
}

impl ModelUri {
    pub fn parse(uri: &str) -> Result<ModelUri> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "Invalid model URI '{uri}': {why}. Use models:/<name>/<version>, models:/<name>/<stage>, \
                 models:/<name>@<alias> or models:/<model_id>"
            ))
        };
        let rest = uri.strip_prefix("models:/").ok_or_else(|| bad("it does not start with models:/"))?;
        if rest.starts_with('/') {
            return Err(bad("it names a host (models://...), which this server does not resolve"));
        }
        let rest = rest.trim_end_matches('/');
        if let Some((name, alias)) = rest.split_once('@') {
            if name.is_empty() || alias.is_empty() || alias.contains('/') {
                return Err(bad("an alias URI is models:/<name>@<alias>"));
            }
            return Ok(ModelUri::Alias { name: name.into(), alias: alias.into() });
        }
        match rest.split_once('/') {
            None if !rest.is_empty() => Ok(ModelUri::LoggedModel { model_id: rest.into() }),
            Some((name, which)) if !name.is_empty() && !which.is_empty() && !which.contains('/') => {
                if let Ok(version) = which.parse::<i64>() {
                    Ok(ModelUri::Version { name: name.into(), version })
                } else if which.eq_ignore_ascii_case("latest") {
                    Ok(ModelUri::Latest { name: name.into() })
                } else {
                    let stage = Stage::parse(which).map_err(|_| bad(&format!("'{which}' is not a version number, stage or 'latest'")))?;
                    Ok(ModelUri::Stage { name: name.into(), stage })
                }
            }
            _ => Err(bad("it names no model")),
        }
    }
}

/// A source, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub storage_location: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
}

fn is_within(path: &ArtifactPath, root: &ArtifactPath) -> bool {
    root.is_root() || path.as_str() == root.as_str() || path.as_str().starts_with(&format!("{}/", root.as_str()))
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.to_string()).filter(|t| !t.is_empty())
}

fn refused(source: &str, why: &str) -> Error {
    Error::invalid(format!("Invalid model version source: '{source}'. {why}"))
}

impl Registry {
    pub(crate) async fn resolve_source(&self, source: &str, run_id: Option<&str>, model_id: Option<&str>) -> Result<Resolved> {
        let run_id = run_id.filter(|r| !r.is_empty());
        let model_id = model_id.filter(|m| !m.is_empty());
        if source.starts_with("models:") {
            return match ModelUri::parse(source)? {
                ModelUri::LoggedModel { model_id: source_model } => {
                    if model_id != Some(source_model.as_str()) {
                        return Err(refused(source, "A models:/<model_id> source needs the same model_id given with it."));
                    }
                    let model = self.tracking.get_logged_model(&source_model).await?;
                    let run = run_id.map(str::to_string).or(non_empty(&model.info.source_run_id));
                    Ok(Resolved { storage_location: model.info.artifact_uri, run_id: run, model_id: Some(source_model) })
                }
                other => {
                    let version = self.resolve_model_uri(&other).await?;
                    Ok(Resolved {
                        storage_location: version.storage_location,
                        run_id: run_id.map(str::to_string).or(version.run_id),
                        model_id: model_id.map(str::to_string).or(version.model_id),
                    })
                }
            };
        }
        if let Some(rest) = source.strip_prefix("runs:/") {
            let (source_run, path) = rest.split_once('/').unwrap_or((rest, ""));
            if source_run.is_empty() {
                return Err(refused(source, "A runs:/ source is runs:/<run_id>/<path>."));
            }
            if run_id != Some(source_run) {
                return Err(refused(source, "A runs:/<run_id>/<path> source needs the same run_id given with it."));
            }
            let run = self.tracking.get_run(source_run).await?;
            let path = ArtifactPath::parse(path)?;
            let root = run.info.artifact_uri.trim_end_matches('/');
            let storage_location = if path.is_root() { root.to_string() } else { format!("{root}/{}", path.as_str()) };
            return Ok(Resolved { storage_location, run_id: Some(source_run.to_string()), model_id: model_id.map(str::to_string) });
        }
        if let Some(path) = ArtifactPath::from_proxy_uri(source) {
            let path = path?;
            let mut run_id = run_id.map(str::to_string);
            let root = if let Some(model_id) = model_id {
                let model = self.tracking.get_logged_model(model_id).await?;
                run_id = run_id.or(non_empty(&model.info.source_run_id));
                model.info.artifact_uri
            } else if let Some(run_id) = &run_id {
                match self.tracking.get_run(run_id).await {
                    Ok(run) => run.info.artifact_uri,
                    Err(e) if e.kind() == kiln_core::ErrorKind::NotFound => {
                        return Err(refused(source, &format!("The run {run_id} given with it does not exist.")));
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                return Err(refused(source, "An mlflow-artifacts source needs the run_id or model_id whose artifacts hold it."));
            };
            let inside = match ArtifactPath::from_proxy_uri(&root) {
                Some(root) => is_within(&path, &root?),
                None => false,
            };
            if !inside {
                return Err(refused(source, "It is not inside the artifact folder of the run or logged model given with it."));
            }
            return Ok(Resolved {
                storage_location: format!("{PROXY_SCHEME}/{}", path.as_str()),
                run_id,
                model_id: model_id.map(str::to_string),
            });
        }
        Err(refused(
            source,
            "This server registers models from its own artifact store: use models:/<model_id>, runs:/<run_id>/<path>, \
             models:/<name>/<version>, or an mlflow-artifacts:/ URI inside the run's or model's artifacts.",
        ))
    }

    /// The version a `models:/` URI names (not a logged model's URI).
    pub async fn resolve_model_uri(&self, uri: &ModelUri) -> Result<ModelVersion> {
        match uri {
            ModelUri::Version { name, version } => self.get_model_version(name, &version.to_string()).await,
            ModelUri::Alias { name, alias } => self.get_model_version_by_alias(name, alias).await,
            ModelUri::Stage { name, stage } => {
                let mut found = self.get_latest_versions(name, &[stage.as_str().to_string()]).await?;
                found.pop().ok_or_else(|| {
                    Error::not_found(format!("Registered model '{name}' has no version in stage '{}'", stage.as_str()))
                })
            }
            ModelUri::Latest { name } => {
                let versions = self.get_latest_versions(name, &[]).await?;
                versions
                    .into_iter()
                    .max_by_key(|v| v.version.parse::<i64>().unwrap_or(0))
                    .ok_or_else(|| Error::not_found(format!("Registered model '{name}' has no versions")))
            }
            ModelUri::LoggedModel { model_id } => Err(Error::invalid(format!(
                "models:/{model_id} names a logged model, not a registered model version"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uris() {
        let p = |s: &str| ModelUri::parse(s).unwrap();
        assert_eq!(p("models:/fraud/3"), ModelUri::Version { name: "fraud".into(), version: 3 });
        assert_eq!(p("models:/fraud@champion"), ModelUri::Alias { name: "fraud".into(), alias: "champion".into() });
        assert_eq!(p("models:/fraud/production"), ModelUri::Stage { name: "fraud".into(), stage: Stage::Production });
        assert_eq!(p("models:/fraud/latest"), ModelUri::Latest { name: "fraud".into() });
        assert_eq!(p("models:/m-abc"), ModelUri::LoggedModel { model_id: "m-abc".into() });
        for bad in ["runs:/x/y", "models:/", "models://host/x/1", "models:/x/y/z", "models:/x/Prod", "models:/@a", "models:/x@"] {
            assert!(ModelUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn within() {
        let p = |s: &str| ArtifactPath::parse(s).unwrap();
        assert!(is_within(&p("1/r/artifacts/model"), &p("1/r/artifacts")));
        assert!(is_within(&p("1/r/artifacts"), &p("1/r/artifacts")));
        assert!(!is_within(&p("1/r/artifactsX"), &p("1/r/artifacts")));
        assert!(!is_within(&p("1/other"), &p("1/r/artifacts")));
    }
}
