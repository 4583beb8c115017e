//! MLflow's REST API, served under `/api/2.0/mlflow/` and the UI's `/ajax-api/2.0/mlflow/`.

mod artifacts;
mod de;
mod extract;
mod models;
mod registry;
mod tracking;

use crate::routes::{Method, Permission, Resource, RouteTable};

const PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];
const ARTIFACT_PREFIXES: [&str; 2] = ["/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"];

/// Whether a request path is an artifact transfer, whose body streams and has no size limit.
pub(crate) fn is_artifact_transfer(path: &str) -> bool {
    ARTIFACT_PREFIXES.iter().any(|p| path.starts_with(p))
}

pub(crate) fn routes(mut t: RouteTable) -> RouteTable {
    use Method::{Delete, Get, Patch, Post, Put};
    use tracking::*;
    let read = Permission::Read(Resource::Experiment);
    let edit = Permission::Edit(Resource::Experiment);
    let manage = Permission::Manage(Resource::Experiment);
    let read_model = Permission::Read(Resource::Model);
    let edit_model = Permission::Edit(Resource::Model);
    let manage_model = Permission::Manage(Resource::Model);
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
            .route(Post, &format!("{p}/logged-models"), edit, models::create)
            .route(Post, &format!("{p}/logged-models/search"), read, models::search)
            .route(Get, &format!("{p}/logged-models/{{model_id}}"), read, models::get)
            .route(Patch, &format!("{p}/logged-models/{{model_id}}"), edit, models::finalize)
            .route(Delete, &format!("{p}/logged-models/{{model_id}}"), edit, models::delete)
            .route(Patch, &format!("{p}/logged-models/{{model_id}}/tags"), edit, models::set_tags)
            .route(Delete, &format!("{p}/logged-models/{{model_id}}/tags/{{tag_key}}"), edit, models::delete_tag)
            .route(Post, &format!("{p}/logged-models/{{model_id}}/params"), edit, models::log_params)
            .route(Get, &format!("{p}/logged-models/{{model_id}}/artifacts/directories"), read, artifacts::list_logged_model)
            .route(Get, &format!("{p}/logged-models/{{model_id}}/artifacts/files"), read, artifacts::get_logged_model_artifact)
            .route(Post, &format!("{p}/registered-models/create"), edit_model, registry::create_model)
            .route(Get, &format!("{p}/registered-models/get"), read_model, registry::get_model)
            .route(Post, &format!("{p}/registered-models/rename"), manage_model, registry::rename_model)
            .route(Patch, &format!("{p}/registered-models/update"), edit_model, registry::update_model)
            .route(Delete, &format!("{p}/registered-models/delete"), manage_model, registry::delete_model)
            .route(Get, &format!("{p}/registered-models/search"), read_model, registry::search_models)
            .route(Post, &format!("{p}/registered-models/get-latest-versions"), read_model, registry::get_latest_versions)
            .route(Get, &format!("{p}/registered-models/get-latest-versions"), read_model, registry::get_latest_versions)
            .route(Post, &format!("{p}/registered-models/set-tag"), edit_model, registry::set_model_tag)
            .route(Delete, &format!("{p}/registered-models/delete-tag"), edit_model, registry::delete_model_tag)
            .route(Post, &format!("{p}/registered-models/alias"), manage_model, registry::set_alias)
            .route(Delete, &format!("{p}/registered-models/alias"), manage_model, registry::delete_alias)
            .route(Get, &format!("{p}/registered-models/alias"), read_model, registry::get_by_alias)
            .route(Post, &format!("{p}/model-versions/create"), edit_model, registry::create_version)
            .route(Get, &format!("{p}/model-versions/get"), read_model, registry::get_version)
            .route(Patch, &format!("{p}/model-versions/update"), edit_model, registry::update_version)
            .route(Delete, &format!("{p}/model-versions/delete"), manage_model, registry::delete_version)
            .route(Post, &format!("{p}/model-versions/transition-stage"), manage_model, registry::transition_stage)
            .route(Get, &format!("{p}/model-versions/search"), read_model, registry::search_versions)
            .route(Post, &format!("{p}/model-versions/set-tag"), edit_model, registry::set_version_tag)
            .route(Delete, &format!("{p}/model-versions/delete-tag"), edit_model, registry::delete_version_tag)
            .route(Get, &format!("{p}/model-versions/get-download-uri"), read_model, registry::download_uri);
    }
    for p in ARTIFACT_PREFIXES {
        t = t
            .route(Get, &format!("{p}/artifacts"), read, artifacts::list)
            .route(Get, &format!("{p}/artifacts/{{*path}}"), read, artifacts::download)
            .route(Put, &format!("{p}/artifacts/{{*path}}"), edit, artifacts::upload)
            .route(Delete, &format!("{p}/artifacts/{{*path}}"), edit, artifacts::delete)
            .route(Post, &format!("{p}/mpu/create/{{*path}}"), edit, artifacts::create_upload)
            .route(Put, &format!("{p}/mpu/upload/{{upload_id}}/{{part}}"), edit, artifacts::upload_part)
            .route(Post, &format!("{p}/mpu/complete/{{*path}}"), edit, artifacts::complete_upload)
            .route(Post, &format!("{p}/mpu/abort/{{*path}}"), edit, artifacts::abort_upload);
    }
    t.route(Get, "/get-artifact", read, artifacts::get_run_artifact).route(
        Get,
        "/model-versions/get-artifact",
        Permission::Read(Resource::Model),
        artifacts::get_model_version_artifact,
    )
}
