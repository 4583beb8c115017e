//! MLflow's REST API, served under `/api/2.0/mlflow/` and the UI's `/ajax-api/2.0/mlflow/`.

mod artifacts;
mod de;
mod extract;
mod tracking;

use crate::routes::{Method, Permission, Resource, RouteTable};

const PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];
const ARTIFACT_PREFIXES: [&str; 2] = ["/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"];

/// Whether a request path is an artifact transfer, whose body streams and has no size limit.
pub(crate) fn is_artifact_transfer(path: &str) -> bool {
    ARTIFACT_PREFIXES.iter().any(|p| path.starts_with(p))
}

pub(crate) fn routes(mut t: RouteTable) -> RouteTable {
    use Method::{Delete, Get, Post, Put};
    use tracking::*;
    let read = Permission::Read(Resource::Experiment);
    let edit = Permission::Edit(Resource::Experiment);
    let manage = Permission::Manage(Resource::Experiment);
    for p in PREFIXES {
        t = t
            .route(Post, &format!("{p}/experiments/create"), edit, create_experiment)
            .route(Get, &format!("{p}/experiments/get"), read, get_experiment)
            .route(Get, &format!("{p}/experiments/get-by-name"), read, get_experiment_by_name)
            .route(Post, &format!("{p}/experiments/search"), read, search_experiments)
            .route(Get, &format!("{p}/experiments/search"), read, search_experiments)
            .route(Post, &format!("{p}/experiments/update"), edit, update_experiment)
            .route(Post, &format!("{p}/experiments/delete"), manage, delete_experiment)
            .route(Post, &format!("{p}/experiments/restore"), manage, restore_experiment)
            .route(Post, &format!("{p}/experiments/set-experiment-tag"), edit, set_experiment_tag)
            .route(Post, &format!("{p}/experiments/delete-experiment-tag"), edit, delete_experiment_tag)
            .route(Post, &format!("{p}/runs/create"), edit, create_run)
            .route(Get, &format!("{p}/runs/get"), read, get_run)
            .route(Post, &format!("{p}/runs/update"), edit, update_run)
            .route(Post, &format!("{p}/runs/delete"), edit, delete_run)
            .route(Post, &format!("{p}/runs/restore"), edit, restore_run)
            .route(Post, &format!("{p}/runs/search"), read, search_runs)
            .route(Post, &format!("{p}/runs/log-metric"), edit, log_metric)
            .route(Post, &format!("{p}/runs/log-parameter"), edit, log_parameter)
            .route(Post, &format!("{p}/runs/set-tag"), edit, set_tag)
            .route(Post, &format!("{p}/runs/delete-tag"), edit, delete_tag)
            .route(Post, &format!("{p}/runs/log-batch"), edit, log_batch)
            .route(Post, &format!("{p}/runs/log-inputs"), edit, log_inputs)
            .route(Post, &format!("{p}/runs/outputs"), edit, log_outputs)
            .route(Get, &format!("{p}/metrics/get-history"), read, get_metric_history)
            .route(Get, &format!("{p}/metrics/get-history-bulk-interval"), read, get_metric_history_bulk_interval)
            .route(Get, &format!("{p}/artifacts/list"), read, artifacts::list_run)
            .route(Post, &format!("{p}/logged-models/search"), read, artifacts::search_logged_models);
    }
    for p in ARTIFACT_PREFIXES {
        t = t
            .route(Get, &format!("{p}/artifacts"), read, artifacts::list)
            .route(Get, &format!("{p}/artifacts/{{*path}}"), read, artifacts::download)
            .route(Put, &format!("{p}/artifacts/{{*path}}"), edit, artifacts::upload)
            .route(Delete, &format!("{p}/artifacts/{{*path}}"), edit, artifacts::delete);
    }
    t.route(Get, "/get-artifact", read, artifacts::get_run_artifact)
}
