//! Errors as MLflow's REST API reports them: `{"error_code": ..., "message": ...}` with the
//! HTTP status MLflow gives that code. One table maps every error kind to its code and status.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kiln_core::ErrorKind;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The one map from error kinds to MLflow's error codes and statuses. An object in the wrong
/// state is the caller's problem, so INVALID_STATE is a 400 here (MLflow answers 500).
fn mlflow_code(kind: ErrorKind) -> (&'static str, StatusCode) {
    match kind {
        ErrorKind::InvalidArgument => ("INVALID_PARAMETER_VALUE", StatusCode::BAD_REQUEST),
        ErrorKind::NotFound => ("RESOURCE_DOES_NOT_EXIST", StatusCode::NOT_FOUND),
        ErrorKind::AlreadyExists => ("RESOURCE_ALREADY_EXISTS", StatusCode::BAD_REQUEST),
        ErrorKind::InvalidState => ("INVALID_STATE", StatusCode::BAD_REQUEST),
        ErrorKind::Unavailable => ("TEMPORARILY_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
        ErrorKind::Internal => ("INTERNAL_ERROR", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let (code, status) = mlflow_code(kind);
        ApiError { status, code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn missing(field: &str) -> Self {
        ApiError::invalid(format!("Missing value for required parameter '{field}'"))
    }
}

impl From<kiln_tracking::Error> for ApiError {
    fn from(e: kiln_tracking::Error) -> Self {
        let kind = e.kind();
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(kind, e.to_string())
    }
}

impl From<kiln_registry::Error> for ApiError {
    fn from(e: kiln_registry::Error) -> Self {
        let kind = e.kind();
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(kind, e.to_string())
    }
}

impl From<kiln_core::Error> for ApiError {
    fn from(e: kiln_core::Error) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "ENDPOINT_NOT_FOUND",
        message: format!("No endpoint at {}", uri.path()),
    }
}

pub(crate) async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "BAD_REQUEST",
        message: format!("{} does not accept {method} requests", uri.path()),
    }
}

/// Answers 413 at once when a request declares a body over the limit, without reading it.
/// Bodies that declare no length are cut off at the limit as they stream in. Artifact
/// transfers stream to the store and have no limit.
pub(crate) async fn refuse_declared_oversize(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 && !crate::mlflow::is_artifact_transfer(req.uri().path()) => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "INVALID_PARAMETER_VALUE",
            message: format!("The request body is {n} bytes; the limit is {limit} bytes"),
        }
        .into_response(),
        _ => next.run(req).await,
    }
}
