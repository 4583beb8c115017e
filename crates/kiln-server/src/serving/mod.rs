//! The serving API over [`kiln_serving::Serving`]: the Open Inference Protocol's REST routes
//! (with the binary tensor extension) and its gRPC service ([`grpc`]), MLflow's scoring routes
//! (`/invocations`), health and Prometheus metrics. `kiln serve` serves it alone; `kiln server` can mount it beside the
//! tracking API.

pub mod grpc;
mod invocations;
mod oip;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kiln_core::ErrorKind;
use kiln_serving::Serving;
use tower_http::trace::TraceLayer;

use crate::routes::{Method, Permission, Resource, RouteTable};

/// What serving handlers share.
#[derive(Clone)]
pub struct ServingState {
    pub serving: Arc<Serving>,
    /// Whether the models asked for at start are loaded (`/v2/health/ready`).
    pub ready: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
pub struct ServingApiOptions {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ServingApiOptions {
    fn default() -> Self {
        ServingApiOptions { max_body_bytes: 64 * 1024 * 1024 }
    }
}

/// Every serving route; `scoring_meta` adds MLflow's scoring server's `/health` and `/version`
/// (which `kiln server` has already, for the tracking server).
pub fn table(scoring_meta: bool) -> RouteTable<ServingState> {
    let use_endpoint = Permission::Use(Resource::Endpoint);
    let read_endpoint = Permission::Read(Resource::Endpoint);
    let t = RouteTable::new()
        .route(Method::Get, "/v2/health/live", Permission::Public, oip::live)
        .route(Method::Get, "/v2/health/ready", Permission::Public, oip::ready)
        .route(Method::Get, "/v2", read_endpoint, oip::server_metadata)
        .route(Method::Get, "/v2/models/{model}", read_endpoint, oip::model_metadata)
        .route(Method::Get, "/v2/models/{model}/versions/{version}", read_endpoint, oip::model_version_metadata)
        .route(Method::Get, "/v2/models/{model}/ready", read_endpoint, oip::model_ready)
        .route(Method::Get, "/v2/models/{model}/versions/{version}/ready", read_endpoint, oip::model_version_ready)
        .route(Method::Post, "/v2/models/{model}/infer", use_endpoint, oip::infer)
        .route(Method::Post, "/v2/models/{model}/versions/{version}/infer", use_endpoint, oip::infer_version)
        .route(Method::Post, "/v2/repository/index", read_endpoint, oip::repository_index)
        .route(Method::Post, "/v2/repository/models/{model}/load", Permission::Manage(Resource::Endpoint), oip::repository_load)
        .route(Method::Post, "/v2/repository/models/{model}/unload", Permission::Manage(Resource::Endpoint), oip::repository_unload)
        .route(Method::Post, "/invocations", use_endpoint, invocations::invocations)
        .route(Method::Post, "/models/{model}/invocations", use_endpoint, invocations::model_invocations)
        .route(Method::Get, "/ping", Permission::Public, invocations::ping)
        .route(Method::Get, "/metrics", read_endpoint, metrics);
    if scoring_meta {
        t.route(Method::Get, "/health", Permission::Public, invocations::ping)
            .route(Method::Get, "/version", Permission::Public, invocations::version)
    } else {
        t
    }
}

/// The serving application on its own (`kiln serve`).
pub fn app(state: ServingState, options: &ServingApiOptions) -> Router {
    router(table(true), state, options).fallback(not_found).layer(TraceLayer::new_for_http())
}

/// The serving routes to merge into `kiln server`'s application, beside the tracking API.
pub fn mounted(state: ServingState, options: &ServingApiOptions) -> Router {
    router(table(false), state, options).layer(TraceLayer::new_for_http())
}

fn router(table: RouteTable<ServingState>, state: ServingState, options: &ServingApiOptions) -> Router {
    let limit = options.max_body_bytes;
    table
        .into_router()
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| refuse_oversize(limit, req, next)))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// A failure in the Open Inference Protocol's shape: `{"error": "..."}`.
#[derive(Debug)]
pub struct OipError {
    pub status: StatusCode,
    pub message: String,
}

impl OipError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> OipError {
        OipError { status, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> OipError {
        OipError::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The one map from error kinds to HTTP statuses for serving.
fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::AlreadyExists | ErrorKind::InvalidState => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<kiln_serving::Error> for OipError {
    fn from(e: kiln_serving::Error) -> Self {
        let kind = e.kind();
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %e, "inference request failed");
        }
        OipError::new(status(kind), e.to_string())
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

async fn not_found(uri: axum::http::Uri) -> OipError {
    OipError::new(StatusCode::NOT_FOUND, format!("no endpoint at {}", uri.path()))
}

/// Answers 413 at once when a request declares a body over the limit, without reading it;
/// bodies without a declared length are cut off at the limit as they arrive.
async fn refuse_oversize(limit: usize, req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            OipError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is {n} bytes; the limit is {limit} bytes"))
                .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Every answer carries the request's `x-request-id` (the caller's, or a new one), and the
/// request's log lines name it; handlers find it in the request's headers (see [`request_id_of`]).
async fn request_id(mut req: Request, next: Next) -> Response {
    let given = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty() && v.len() <= 128);
    let id = match given {
        Some(id) => id.to_string(),
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            if let Ok(value) = HeaderValue::from_str(&id) {
                req.headers_mut().insert("x-request-id", value);
            }
            id
        }
    };
    let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let mut response = tracing::Instrument::instrument(next.run(req), span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The request's id, as the `request_id` middleware left it.
fn request_id_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn metrics(axum::extract::State(s): axum::extract::State<ServingState>) -> Response {
    let endpoints = s.serving.endpoints();
    let body = kiln_serving::render_metrics(
        endpoints.iter().flat_map(|e| e.variants().map(move |v| (e.name.as_str(), v.role.as_str(), v.metrics.as_ref()))),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
