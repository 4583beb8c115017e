//! `kiln server` and `kiln db upgrade`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kiln_artifacts::ArtifactStore;
use kiln_registry::Registry;
use kiln_server::serving::{ServingApiOptions, ServingState};
use kiln_server::{ApiOptions, AppState};
use kiln_serving::{InferenceLog, InferenceLogOptions, LogDestination, ModelConfig, Resolver, Serving, ServingOptions};
use kiln_store::{MetaStore, StoreOptions};
use kiln_tracking::Tracking;
use tracing::info;

use crate::config::ServerConfig;

/// Experiments' artifact locations point at the server's proxied artifact API, as with
/// `mlflow server --serve-artifacts`.
const ARTIFACT_ROOT: &str = "mlflow-artifacts:/";

pub async fn run(config: ServerConfig) -> Result<()> {
    let started = Instant::now();
    let artifacts = ArtifactStore::open(&config.artifacts_destination).context("cannot open the artifact store")?;
    let store = MetaStore::connect(
        &config.backend_store_uri,
        StoreOptions { max_connections: config.db_max_connections, ..StoreOptions::default() },
    )
    .await
    .context("cannot open the backend store")?;
    let tracking = Tracking::open(store.clone(), ARTIFACT_ROOT).await.context("cannot open tracking")?;
    let artifact_description = artifacts.description().to_string();
    let registry = Registry::new(tracking.clone(), artifacts.clone());
    let state = AppState { tracking, registry: registry.clone(), artifacts: artifacts.clone() };
    let mut app = kiln_server::app(state, &ApiOptions { max_body_bytes: config.max_request_body });
    let address = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let mut serving_here = None;
    if config.serve {
        let models = config.serve_models.iter().map(|m| crate::serve::parse_model(m)).collect::<Result<Vec<_>>>()?;
        let defaults = ModelConfig { log_inferences: config.serve_log_inferences, ..ModelConfig::default() };
        let log = config.serve_log_inferences.then(|| {
            let destination = LogDestination::Store { store: artifacts.clone(), prefix: "inference-logs".into() };
            InferenceLog::start(destination, InferenceLogOptions::default())
        });
        let serving = Serving::new(ServingOptions {
            resolver: Some(Resolver::Local(registry)),
            cache: kiln_serving::default_cache(),
            poll: Duration::from_secs(2),
            defaults: defaults.clone(),
            log,
        });
        serving_here = Some(serving.clone());
        let ready = Arc::new(AtomicBool::new(models.is_empty()));
        let state = ServingState { serving: serving.clone(), ready: ready.clone() };
        app = app.merge(kiln_server::serving::mounted(state, &ServingApiOptions { max_body_bytes: config.max_request_body }));
        tokio::spawn(async move {
            let mut loaded = 0;
            for (name, source) in &models {
                match serving.load(name, source.clone(), defaults.clone()).await {
                    Ok(_) => loaded += 1,
                    Err(e) => tracing::error!(model = %name, source = %source, error = %e, "cannot serve the model"),
                }
            }
            if loaded == models.len() {
                ready.store(true, Ordering::Release);
            }
        });
    }
    info!(
        "kiln server listening on http://{} (metadata: {}; artifacts: {}) after {} ms",
        listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
        store.description(),
        artifact_description,
        started.elapsed().as_millis()
    );
    kiln_server::serve(listener, app, shutdown_signal(), Duration::from_secs(config.shutdown_grace_secs))
        .await
        .context("the server failed")?;
    if let Some(serving) = serving_here {
        serving.close_log().await;
    }
    store.close().await;
    info!("kiln server stopped");
    Ok(())
}

pub async fn upgrade(backend_store_uri: String) -> Result<()> {
    let store = MetaStore::connect(&backend_store_uri, StoreOptions { migrate: false, ..StoreOptions::default() })
        .await
        .context("cannot open the backend store")?;
    let applied = store.migrate().await.context("schema upgrade failed")?;
    if applied.is_empty() {
        println!("{}: the schema is up to date", store.description());
    } else {
        let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
        println!("{}: applied schema migrations {}", store.description(), versions.join(", "));
    }
    store.close().await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    info!("shutting down: finishing requests in flight");
}
