//! Routes about the server itself: health, version and capabilities.

use axum::Json;
use serde_json::{Value, json};

use crate::routes::{Method, Permission, RouteTable};

pub(crate) fn routes(t: RouteTable) -> RouteTable {
    t.route(Method::Get, "/health", Permission::Public, health)
        .route(Method::Get, "/version", Permission::Public, version)
        .route(Method::Get, "/api/3.0/mlflow/server-info", Permission::Public, server_info)
        .route(Method::Get, "/ajax-api/3.0/mlflow/server-info", Permission::Public, server_info)
}

async fn health() -> &'static str {
    "OK"
}

async fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// What the MLflow client asks a server it may not know: what it stores and what it offers.
async fn server_info() -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "features_enabled": {},
    }))
}
