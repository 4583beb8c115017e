//! Kiln's HTTP API: thin adapters that parse requests, call the domain services and map their
//! errors to each protocol's shape. Every route is declared once, with the permission it needs,
//! in the route table ([`routes`]).

mod error;
mod meta;
mod mlflow;
pub mod routes;
pub mod serving;
mod ui;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use kiln_artifacts::ArtifactStore;
use kiln_registry::Registry;
use kiln_tracking::Tracking;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub tracking: Tracking,
    pub registry: Registry,
    pub artifacts: ArtifactStore,
}

#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest request body the JSON API accepts, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions { max_body_bytes: 16 * 1024 * 1024 }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState, options: &ApiOptions) -> Router {
    let limit = options.max_body_bytes;
    routes::table()
        .into_router()
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| error::refuse_declared_oversize(limit, req, next)))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (for at most `grace`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopped_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::select! {
        result = server => result.map_err(std::io::Error::other)?,
        _ = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(seconds = grace.as_secs(), "requests still running after the grace period; stopping anyway");
            Ok(())
        }
    }
}
