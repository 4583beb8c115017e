//! The models one process serves, by endpoint name. A model named by a registry URI that can
//! move (an alias, a stage, `latest`) is watched: when it names another version, that version is
//! loaded and warmed beside the old one, then swapped in; requests in flight finish on the old.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use kiln_registry::ModelUri;

use crate::client::{Resolved, TrackingClient};
use crate::error::{Error, Result};
use crate::metrics::ModelMetrics;
use crate::model::{LoadedModel, ModelConfig};

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A folder with `MLmodel` and the ONNX file, or an `.onnx` file.
    Path(PathBuf),
    /// `models:/...` or `runs:/...`, resolved by the tracking server.
    Uri(String),
}

impl ModelSource {
    pub fn parse(text: &str) -> ModelSource {
        if text.starts_with("models:/") || text.starts_with("runs:/") {
            ModelSource::Uri(text.to_string())
        } else {
            ModelSource::Path(PathBuf::from(text.strip_prefix("file://").unwrap_or(text)))
        }
    }

    /// Whether the version this source names can change while it is served.
    fn moves(&self) -> bool {
        match self {
            ModelSource::Uri(uri) => {
                matches!(ModelUri::parse(uri), Ok(ModelUri::Alias { .. } | ModelUri::Stage { .. } | ModelUri::Latest { .. }))
            }
            ModelSource::Path(_) => false,
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Path(p) => write!(f, "{}", p.display()),
            ModelSource::Uri(u) => f.write_str(u),
        }
    }
}

/// One served name: the model answering under it now and where it came from.
pub struct Endpoint {
    pub name: String,
    pub source: ModelSource,
    config: ModelConfig,
    current: RwLock<Arc<LoadedModel>>,
    /// The folder the current version was downloaded into, removed when it is replaced.
    folder: RwLock<Option<PathBuf>>,
    pub metrics: Arc<ModelMetrics>,
}

impl Endpoint {
    pub fn model(&self) -> Arc<LoadedModel> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
}

/// Settings shared by every model of a process.
#[derive(Debug, Clone)]
pub struct ServingOptions {
    /// The tracking server that resolves `models:/` and `runs:/` URIs.
    pub tracking: Option<TrackingClient>,
    /// Where downloaded models are kept while served.
    pub cache: PathBuf,
    /// How often moving URIs (aliases, stages) are checked.
    pub poll: Duration,
    /// How models loaded without their own settings run.
    pub defaults: ModelConfig,
}

pub struct Serving {
    endpoints: RwLock<BTreeMap<String, Arc<Endpoint>>>,
    options: ServingOptions,
    downloads: AtomicU64,
}

impl Serving {
    pub fn new(options: ServingOptions) -> Arc<Serving> {
        Arc::new(Serving { endpoints: RwLock::new(BTreeMap::new()), options, downloads: AtomicU64::new(0) })
    }

    pub fn default_config(&self) -> ModelConfig {
        self.options.defaults.clone()
    }

    /// Loads a model under `name` (replacing any model of that name once the new one is ready).
    pub async fn load(self: &Arc<Self>, name: &str, source: ModelSource, config: ModelConfig) -> Result<Arc<Endpoint>> {
        check_name(name)?;
        let metrics = match self.endpoint(name) {
            Some(existing) => existing.metrics.clone(),
            None => Arc::new(ModelMetrics::default()),
        };
        let (model, folder) = self
            .fetch_and_load(name, &source, &config, metrics.clone(), None)
            .await?
            .ok_or_else(|| Error::Model(format!("the model '{name}' resolved to nothing to load")))?;
        let endpoint = Arc::new(Endpoint {
            name: name.to_string(),
            source: source.clone(),
            config,
            current: RwLock::new(model),
            folder: RwLock::new(folder),
            metrics,
        });
        let replaced = self.endpoints.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), endpoint.clone());
        if let Some(old) = replaced {
            remove_folder(&old);
        }
        if source.moves() {
            tokio::spawn(watch(Arc::downgrade(self), Arc::downgrade(&endpoint)));
        }
        let model = endpoint.model();
        tracing::info!(model = name, version = %model.version, source = %source, "serving model");
        Ok(endpoint)
    }

    /// Stops serving a model; requests in flight finish.
    pub fn unload(&self, name: &str) -> Result<()> {
        let removed = self.endpoints.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        match removed {
            Some(endpoint) => {
                remove_folder(&endpoint);
                tracing::info!(model = name, "unloaded model");
                Ok(())
            }
            None => Err(unknown_model(name)),
        }
    }

    pub fn endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// The model answering under `name` now; with `version`, only if it is that version.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>> {
        let model = self.endpoint(name).ok_or_else(|| unknown_model(name))?.model();
        match version {
            Some(v) if !v.is_empty() && v != model.version => Err(Error::not_found(format!(
                "the model '{name}' is served at version {}, not {v}",
                model.version
            ))),
            _ => Ok(model),
        }
    }

    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Resolves a source, downloads it if it is remote, and loads it; gives the model and the
    /// folder it was downloaded into. With `known`, a source resolving to that version again is
    /// not loaded: None.
    async fn fetch_and_load(
        &self,
        name: &str,
        source: &ModelSource,
        config: &ModelConfig,
        metrics: Arc<ModelMetrics>,
        known: Option<&str>,
    ) -> Result<Option<(Arc<LoadedModel>, Option<PathBuf>)>> {
        let (version, path, folder) = match source {
            ModelSource::Path(path) => {
                if !path.exists() {
                    return Err(Error::not_found(format!("no model at {}", path.display())));
                }
                ("1".to_string(), path.clone(), None)
            }
            ModelSource::Uri(uri) => {
                let client = self.options.tracking.as_ref().ok_or_else(|| {
                    Error::invalid(format!("'{uri}' is resolved by a tracking server: give its URL with --tracking-uri or MLFLOW_TRACKING_URI"))
                })?;
                let Resolved { version, artifact_uri } = client.resolve(uri).await?;
                if known == Some(version.as_str()) {
                    return Ok(None);
                }
                let n = self.downloads.fetch_add(1, Ordering::Relaxed);
                let folder = self.options.cache.join(format!("{}-{}-{n}", sanitize(name), sanitize(&version)));
                if let Err(e) = client.download(&artifact_uri, &folder).await {
                    let _ = std::fs::remove_dir_all(&folder);
                    return Err(e);
                }
                (version, folder.clone(), Some(folder))
            }
        };
        let (name, origin, config) = (name.to_string(), source.to_string(), config.clone());
        let load_path = path.clone();
        let handle = tokio::runtime::Handle::current();
        let loaded = tokio::task::spawn_blocking(move || {
            let _entered = handle.enter();
            LoadedModel::load(&name, &version, &load_path, &origin, &config, metrics)
        })
        .await
        .map_err(|e| Error::Model(format!("loading the model failed: {e}")))?;
        match loaded {
            Ok(model) => Ok(Some((model, folder))),
            Err(e) => {
                if let Some(folder) = &folder {
                    let _ = std::fs::remove_dir_all(folder);
                }
                Err(e)
            }
        }
    }
}

/// Follows a moving URI until the endpoint is replaced or unloaded, or serving stops.
async fn watch(serving: Weak<Serving>, endpoint: Weak<Endpoint>) {
    loop {
        let poll = match serving.upgrade() {
            Some(s) => s.options.poll,
            None => return,
        };
        tokio::time::sleep(poll).await;
        let (Some(serving), Some(endpoint)) = (serving.upgrade(), endpoint.upgrade()) else { return };
        let still_served = serving.endpoint(&endpoint.name).is_some_and(|e| Arc::ptr_eq(&e, &endpoint));
        if !still_served {
            return;
        }
        let current = endpoint.model();
        match serving.fetch_and_load(&endpoint.name, &endpoint.source, &endpoint.config, endpoint.metrics.clone(), Some(&current.version)).await {
            Ok(None) => {}
            Ok(Some((model, folder))) => {
                let version = model.version.clone();
                *endpoint.current.write().unwrap_or_else(|e| e.into_inner()) = model;
                let old = std::mem::replace(&mut *endpoint.folder.write().unwrap_or_else(|e| e.into_inner()), folder);
                if let Some(old) = old {
                    let _ = std::fs::remove_dir_all(old);
                }
                tracing::info!(model = %endpoint.name, from = %current.version, to = %version, source = %endpoint.source, "swapped in a new version");
            }
            Err(e) => tracing::warn!(model = %endpoint.name, source = %endpoint.source, error = %e, "checking for a new version failed; serving the current one"),
        }
    }
}

fn remove_folder(endpoint: &Endpoint) {
    if let Some(folder) = endpoint.folder.write().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = std::fs::remove_dir_all(folder);
    }
}

fn unknown_model(name: &str) -> Error {
    Error::not_found(format!("no model named '{name}' is served here"))
}

/// Endpoint names go into URL paths and metric labels: letters, digits and `-_.`.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 256 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok && name != "." && name != ".." {
        Ok(())
    } else {
        Err(Error::invalid(format!("'{name}' cannot name a model: use letters, digits, '-', '_' and '.'")))
    }
}

fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect()
}

/// A folder under the system's temporary folder for this process's downloads.
pub fn default_cache() -> PathBuf {
    std::env::temp_dir().join(format!("kiln-serve-{}", std::process::id()))
}

/// Removes the download folder (on shutdown).
pub fn clear_cache(cache: &Path) {
    let _ = std::fs::remove_dir_all(cache);
}
