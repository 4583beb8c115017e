//! Where `models:/` and `runs:/` URIs are resolved and their files fetched: a tracking server
//! over its REST API (`kiln serve`), or the registry and artifact store of this very process
//! (`kiln server --serve`, which would otherwise call itself over HTTP).

use std::path::Path;

use futures_util::StreamExt;
use kiln_artifacts::ArtifactPath;
use kiln_registry::{ModelUri, Registry};
use kiln_tracking::LoggedModelSearch;
use tokio::io::AsyncWriteExt;

use crate::client::{Resolved, TrackingClient, join, join_uri, proxied_path, run_uri};
use crate::error::{Error, Result};

/// Most files a model folder may hold, and how deep its folders may nest.
const MAX_FILES: usize = 10_000;
const MAX_DEPTH: usize = 16;

#[derive(Clone)]
pub enum Resolver {
    /// A tracking server: kiln server or mlflow server.
    Remote(TrackingClient),
    /// This process's own registry and artifact store.
    Local(Registry),
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolver::Remote(client) => write!(f, "Remote({})", client.base()),
            Resolver::Local(_) => f.write_str("Local"),
        }
    }
}

impl Resolver {
    /// The version a URI names now, and where its files are.
    pub async fn resolve(&self, uri: &str) -> Result<Resolved> {
        let registry = match self {
            Resolver::Remote(client) => return client.resolve(uri).await,
            Resolver::Local(registry) => registry,
        };
        if let Some((run_id, path)) = run_uri(uri)? {
            let run = registry.tracking().get_run(run_id).await.map_err(kiln_registry::Error::from)?;
            let (name, rest) = path.split_once('/').unwrap_or((path, ""));
            if !name.is_empty() && !name.contains('\'') {
                let search = LoggedModelSearch {
                    experiment_ids: vec![run.info.experiment_id.clone()],
                    filter: format!("name = '{name}' AND source_run_id = '{run_id}'"),
                    datasets: Vec::new(),
                    max_results: Some(1),
                    order_by: Vec::new(),
                    page_token: None,
                };
                let found = registry.tracking().search_logged_models(search).await.map_err(kiln_registry::Error::from)?;
                if let Some(model) = found.models.into_iter().next() {
                    return Ok(Resolved { version: model.info.model_id, artifact_uri: join_uri(&model.info.artifact_uri, rest) });
                }
            }
            return Ok(Resolved { version: "1".into(), artifact_uri: join_uri(&run.info.artifact_uri, path) });
        }
        match ModelUri::parse(uri)? {
            ModelUri::LoggedModel { model_id } => {
                let model = registry.tracking().get_logged_model(&model_id).await.map_err(kiln_registry::Error::from)?;
                Ok(Resolved { version: model_id, artifact_uri: model.info.artifact_uri })
            }
            named => {
                let version = registry.resolve_model_uri(&named).await?;
                Ok(Resolved { version: version.version, artifact_uri: version.storage_location })
            }
        }
    }

    /// Downloads every file under an `mlflow-artifacts:` URI into `dest`.
    pub async fn download(&self, artifact_uri: &str, dest: &Path) -> Result<()> {
        let root = proxied_path(artifact_uri)?;
        let mut pending = vec![(String::new(), 0usize)];
        let mut files = 0usize;
        while let Some((dir, depth)) = pending.pop() {
            for (listed, is_dir) in self.list(&join(&root, &dir)).await? {
                let name = listed.rsplit('/').next().unwrap_or(&listed);
                if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
                    return Err(Error::Model(format!("the artifact store listed an unusable file name '{name}' under {artifact_uri}")));
                }
                let relative = join(&dir, name);
                if is_dir {
                    if depth + 1 > MAX_DEPTH {
                        return Err(Error::Model(format!("the model's folders under {artifact_uri} nest deeper than {MAX_DEPTH}")));
                    }
                    tokio::fs::create_dir_all(dest.join(&relative)).await.map_err(|e| Error::Io(format!("{}: {e}", dest.display())))?;
                    pending.push((relative, depth + 1));
                } else {
                    files += 1;
                    if files > MAX_FILES {
                        return Err(Error::Model(format!("the model under {artifact_uri} holds more than {MAX_FILES} files")));
                    }
                    self.fetch(&join(&root, &relative), &dest.join(&relative)).await?;
                }
            }
        }
        if files == 0 {
            return Err(Error::not_found(format!("no files under {artifact_uri}")));
        }
        Ok(())
    }

    /// (name, is a folder) of what is directly inside `path` of the proxied artifact store.
    async fn list(&self, path: &str) -> Result<Vec<(String, bool)>> {
        match self {
            Resolver::Remote(client) => client.list(path).await,
            Resolver::Local(registry) => {
                let found = registry.artifacts().list(&artifact_path(path)?).await.map_err(kiln_registry::Error::from)?;
                Ok(found.into_iter().map(|f| (f.path, f.is_dir)).collect())
            }
        }
    }

    async fn fetch(&self, path: &str, to: &Path) -> Result<()> {
        let mut body = match self {
            Resolver::Remote(client) => client.open_file(path).await?.boxed(),
            Resolver::Local(registry) => {
                let (_, body) = registry.artifacts().get(&artifact_path(path)?).await.map_err(kiln_registry::Error::from)?;
                body.map(|chunk| chunk.map_err(|e| Error::Registry(e.into()))).boxed()
            }
        };
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| Error::Io(format!("{}: {e}", parent.display())))?;
        }
        let mut file = tokio::fs::File::create(to).await.map_err(|e| Error::Io(format!("{}: {e}", to.display())))?;
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk?).await.map_err(|e| Error::Io(format!("{}: {e}", to.display())))?;
        }
        file.flush().await.map_err(|e| Error::Io(format!("{}: {e}", to.display())))
    }
}

fn artifact_path(path: &str) -> Result<ArtifactPath> {
    ArtifactPath::parse(path).map_err(|e| Error::Registry(e.into()))
}
