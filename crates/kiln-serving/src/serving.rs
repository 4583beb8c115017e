//! The models one process serves, by endpoint name. A model named by a registry URI that can
//! move (an alias, a stage, `latest`) is watched: when it names another version, that version is
//! loaded and warmed beside the old one, then swapped in; requests in flight finish on the old.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use kiln_registry::ModelUri;

use crate::client::Resolved;
use crate::resolve::Resolver;
use crate::error::{Error, Result};
use crate::inference_log::{InferenceLog, Record};
use crate::metrics::ModelMetrics;
use crate::model::{InferRequest, InferResponse, LoadedModel, ModelConfig};

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

/// The part a model plays under an endpoint's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Answers every request not sent to the challenger.
    Primary,
    /// Answers a share of the requests instead of the primary.
    Challenger,
    /// Gets a copy of a share of the requests; its answers are counted and logged, never returned.
    Shadow,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Challenger => "challenger",
            Role::Shadow => "shadow",
        }
    }
}

/// One model under an endpoint: where it comes from, the version loaded now, its share of the
/// requests (for a challenger or shadow) and what it has done.
pub struct Variant {
    pub role: Role,
    pub source: ModelSource,
    /// Percent of the endpoint's requests (challenger, shadow); 100 for the primary.
    pub percent: f64,
    config: ModelConfig,
    current: RwLock<Arc<LoadedModel>>,
    /// The folder the current version was downloaded into, removed when it is replaced.
    folder: RwLock<Option<PathBuf>>,
    pub metrics: Arc<ModelMetrics>,
}

impl Variant {
    pub fn model(&self) -> Arc<LoadedModel> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
}

/// One served name: its primary model, and optionally a challenger and a shadow.
pub struct Endpoint {
    pub name: String,
    pub primary: Arc<Variant>,
    pub challenger: Option<Arc<Variant>>,
    pub shadow: Option<Arc<Variant>>,
    requests: AtomicU64,
}

impl Endpoint {
    /// The primary's model.
    pub fn model(&self) -> Arc<LoadedModel> {
        self.primary.model()
    }

    pub fn variants(&self) -> impl Iterator<Item = &Arc<Variant>> {
        std::iter::once(&self.primary).chain(&self.challenger).chain(&self.shadow)
    }

    /// The model answering this request, and the shadow getting a copy of it, if any. Shares are
    /// taken from a counter run through a mixing function, so they hold over any stretch of
    /// requests without a random-number generator.
    fn route(&self) -> (Arc<Variant>, Option<Arc<Variant>>) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match &self.challenger {
            Some(c) if draw(n, CHALLENGER_SALT) < c.percent => c.clone(),
            _ => self.primary.clone(),
        };
        let shadow = self.shadow.as_ref().filter(|s| draw(n, SHADOW_SALT) < s.percent).cloned();
        (answer, shadow)
    }
}

const CHALLENGER_SALT: u64 = 0;
const SHADOW_SALT: u64 = 0x5bd1_e995_5bd1_e995;

/// Request `n`'s draw for a share, in percent (0 to 99.99): a request goes to a variant with
/// `percent` when its draw is below it.
fn draw(n: u64, salt: u64) -> f64 {
    (mix(n ^ salt) % 10_000) as f64 / 100.0
}

/// SplitMix64's finaliser: consecutive counters give well spread values.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Runs a request on a variant's current model and, when the variant logs its inferences,
/// hands the answered request to the log.
async fn answer(log: Option<Arc<InferenceLog>>, endpoint: &str, variant: &Variant, request: InferRequest) -> Result<InferResponse> {
    let Some(log) = log.filter(|_| variant.config.log_inferences) else {
        return variant.model().infer(request).await;
    };
    let (time, clock) = (SystemTime::now(), Instant::now());
    let (request_id, id, inputs) = (request.request_id.clone(), request.id.clone(), request.inputs.clone());
    let result = variant.model().infer(request).await;
    if let Ok(response) = &result {
        log.push(Record {
            time,
            endpoint: endpoint.to_string(),
            version: response.model_version.clone(),
            role: variant.role,
            request_id,
            id,
            total: clock.elapsed(),
            queue: response.timing.queue,
            inference: response.timing.inference,
            inputs,
            outputs: response.outputs.clone(),
            metrics: variant.metrics.clone(),
        });
    }
    result
}

/// Settings shared by every model of a process.
#[derive(Debug, Clone)]
pub struct ServingOptions {
    /// What resolves `models:/` and `runs:/` URIs and fetches their files.
    pub resolver: Option<Resolver>,
    /// Where downloaded models are kept while served.
    pub cache: PathBuf,
    /// How often moving URIs (aliases, stages) are checked.
    pub poll: Duration,
    /// How models loaded without their own settings run.
    pub defaults: ModelConfig,
    /// Where models with `log_inferences` send their answered requests.
    pub log: Option<Arc<InferenceLog>>,
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

    /// Loads a model as the primary of `name`, replacing the primary once the new one is ready
    /// (a challenger or shadow the endpoint has stays).
    pub async fn load(self: &Arc<Self>, name: &str, source: ModelSource, config: ModelConfig) -> Result<Arc<Endpoint>> {
        self.load_variant(name, Role::Primary, 100.0, source, config).await
    }

    /// Loads a model to play `role` under `name`: its primary, or a challenger or shadow given
    /// `percent` of the requests (the endpoint must have its primary already).
    pub async fn load_variant(
        self: &Arc<Self>,
        name: &str,
        role: Role,
        percent: f64,
        source: ModelSource,
        config: ModelConfig,
    ) -> Result<Arc<Endpoint>> {
        check_name(name)?;
        if !(0.0..=100.0).contains(&percent) {
            return Err(Error::invalid(format!("a {} gets between 0 and 100 percent of the requests, not {percent}", role.as_str())));
        }
        let existing = self.endpoint(name);
        if role != Role::Primary && existing.is_none() {
            return Err(Error::not_found(format!("the endpoint '{name}' has no primary model to give a {} to", role.as_str())));
        }
        let metrics = existing
            .as_ref()
            .and_then(|e| e.variants().find(|v| v.role == role).map(|v| v.metrics.clone()))
            .unwrap_or_default();
        let (model, folder) = self
            .fetch_and_load(name, &source, &config, metrics.clone(), None)
            .await?
            .ok_or_else(|| Error::Model(format!("the model '{name}' resolved to nothing to load")))?;
        let variant = Arc::new(Variant {
            role,
            source: source.clone(),
            percent,
            config,
            current: RwLock::new(model),
            folder: RwLock::new(folder),
            metrics,
        });
        let replaced = {
            let mut endpoints = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
            let existing = endpoints.get(name).cloned();
            let keep = |r: Role| existing.as_ref().and_then(|e| e.variants().find(|v| v.role == r).cloned());
            let pick = |r: Role| if r == role { Some(variant.clone()) } else { keep(r) };
            let Some(primary) = pick(Role::Primary) else {
                return Err(Error::not_found(format!("the endpoint '{name}' was unloaded while its {} loaded", role.as_str())));
            };
            let endpoint = Arc::new(Endpoint {
                name: name.to_string(),
                primary,
                challenger: pick(Role::Challenger),
                shadow: pick(Role::Shadow),
                requests: AtomicU64::new(0),
            });
            endpoints.insert(name.to_string(), endpoint);
            keep(role)
        };
        if let Some(old) = replaced {
            remove_folder(&old);
        }
        if source.moves() {
            tokio::spawn(watch(Arc::downgrade(self), name.to_string(), Arc::downgrade(&variant)));
        }
        let version = variant.model().version.clone();
        tracing::info!(model = name, role = role.as_str(), percent, version = %version, source = %source, "serving model");
        self.endpoint(name).ok_or_else(|| unknown_model(name))
    }

    /// Stops serving a model and its challenger and shadow; requests in flight finish.
    pub fn unload(&self, name: &str) -> Result<()> {
        let removed = self.endpoints.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        match removed {
            Some(endpoint) => {
                endpoint.variants().for_each(|v| remove_folder(v));
                tracing::info!(model = name, "unloaded model");
                Ok(())
            }
            None => Err(unknown_model(name)),
        }
    }

    pub fn endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// The primary model of `name`; with `version`, whichever of its models is that version.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>> {
        self.variant(name, version).map(|v| v.model())
    }

    /// The primary of `name`; with `version`, whichever of its variants serves that version.
    fn variant(&self, name: &str, version: Option<&str>) -> Result<Arc<Variant>> {
        let endpoint = self.endpoint(name).ok_or_else(|| unknown_model(name))?;
        match version.filter(|v| !v.is_empty()) {
            None => Ok(endpoint.primary.clone()),
            Some(v) => endpoint.variants().find(|x| x.model().version == v).cloned().ok_or_else(|| {
                Error::not_found(format!(
                    "the model '{name}' is served at version {}, not {v}",
                    endpoint.variants().map(|x| x.model().version.clone()).collect::<Vec<_>>().join(", ")
                ))
            }),
        }
    }

    /// Answers a request to `name`: a named version goes to the model of that version; otherwise
    /// the challenger takes its share and the primary the rest, and the shadow (if its share
    /// draws this request) gets a copy whose answer is logged, never returned.
    pub async fn infer(&self, name: &str, version: Option<&str>, request: InferRequest) -> Result<InferResponse> {
        if version.is_some_and(|v| !v.is_empty()) {
            let variant = self.variant(name, version)?;
            return answer(self.options.log.clone(), name, &variant, request).await;
        }
        let endpoint = self.endpoint(name).ok_or_else(|| unknown_model(name))?;
        let (chosen, shadow) = endpoint.route();
        if let Some(shadow) = shadow {
            let copy = request.clone();
            let (log, name) = (self.options.log.clone(), name.to_string());
            tokio::spawn(async move {
                let model = shadow.model();
                match answer(log, &name, &shadow, copy).await {
                    Ok(r) => tracing::info!(
                        model = %model.name,
                        role = "shadow",
                        version = %r.model_version,
                        id = r.id.as_deref().unwrap_or(""),
                        ms = r.timing.inference.as_secs_f64() * 1e3,
                        outputs = %summary(&r.outputs),
                        "shadow answered"
                    ),
                    Err(e) => tracing::warn!(model = %model.name, role = "shadow", error = %e, "shadow failed"),
                }
            });
        }
        answer(self.options.log.clone(), name, &chosen, request).await
    }

    /// Whether this process keeps an inference log (models may turn logging on).
    pub fn has_log(&self) -> bool {
        self.options.log.is_some()
    }

    /// Writes what the inference log holds and stops it (at shutdown).
    pub async fn close_log(&self) {
        if let Some(log) = &self.options.log {
            log.close().await;
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
                let client = self.options.resolver.as_ref().ok_or_else(|| {
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

/// Follows a moving URI until its variant is replaced or unloaded, or serving stops.
async fn watch(serving: Weak<Serving>, name: String, variant: Weak<Variant>) {
    loop {
        let poll = match serving.upgrade() {
            Some(s) => s.options.poll,
            None => return,
        };
        tokio::time::sleep(poll).await;
        let (Some(serving), Some(variant)) = (serving.upgrade(), variant.upgrade()) else { return };
        let still_served = serving.endpoint(&name).is_some_and(|e| e.variants().any(|v| Arc::ptr_eq(v, &variant)));
        if !still_served {
            return;
        }
        let current = variant.model();
        match serving.fetch_and_load(&name, &variant.source, &variant.config, variant.metrics.clone(), Some(&current.version)).await {
            Ok(None) => {}
            Ok(Some((model, folder))) => {
                let version = model.version.clone();
                *variant.current.write().unwrap_or_else(|e| e.into_inner()) = model;
                let old = std::mem::replace(&mut *variant.folder.write().unwrap_or_else(|e| e.into_inner()), folder);
                if let Some(old) = old {
                    let _ = std::fs::remove_dir_all(old);
                }
                tracing::info!(model = %name, role = variant.role.as_str(), from = %current.version, to = %version, source = %variant.source, "swapped in a new version");
            }
            Err(e) => tracing::warn!(model = %name, role = variant.role.as_str(), source = %variant.source, error = %e, "checking for a new version failed; serving the current one"),
        }
    }
}

/// Output names, shapes and first values, for a log line.
fn summary(outputs: &[crate::tensor::Tensor]) -> String {
    outputs
        .iter()
        .map(|t| {
            let first = t.shape.first().copied().unwrap_or(1).min(1);
            let values = serde_json::to_string(&t.data.rows(0, first, t.row_len())).unwrap_or_default();
            format!("{}{:?}={}", t.name, t.shape, values)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn remove_folder(variant: &Variant) {
    if let Some(folder) = variant.folder.write().unwrap_or_else(|e| e.into_inner()).take() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_hold_over_consecutive_requests() {
        for percent in [0.0, 1.0, 10.0, 50.0, 100.0] {
            let hits = (0..20_000u64).filter(|&n| draw(n, CHALLENGER_SALT) < percent).count() as f64 / 200.0;
            assert!((hits - percent).abs() < 1.0, "{percent}% drew {hits}%");
        }
        // The shadow's draws are not the challenger's: a 50% challenger and a 50% shadow overlap
        // on about a quarter of the requests, not on all of them.
        let both = (0..20_000u64).filter(|&n| draw(n, CHALLENGER_SALT) < 50.0 && draw(n, SHADOW_SALT) < 50.0).count();
        assert!((4_000..6_000).contains(&both), "{both}");
    }

    #[test]
    fn sources_and_names() {
        assert_eq!(ModelSource::parse("models:/m@champion"), ModelSource::Uri("models:/m@champion".into()));
        assert_eq!(ModelSource::parse("file:///tmp/m"), ModelSource::Path("/tmp/m".into()));
        assert!(ModelSource::Uri("models:/m@champion".into()).moves());
        assert!(ModelSource::Uri("models:/m/Production".into()).moves());
        assert!(!ModelSource::Uri("models:/m/3".into()).moves());
        assert!(check_name("fraud-v2.1_x").is_ok());
        for bad in ["", "..", "a/b", "a b", "a\"b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
