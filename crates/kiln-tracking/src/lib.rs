//! Experiment tracking: experiments, runs, and the metrics, parameters, tags and datasets runs
//! log. [`Tracking`] is the service the HTTP API and the CLI call; it owns its queries and runs
//! them on the shared metadata store.

mod entities;
mod error;
mod experiments;
mod history;
mod logging;
mod models;
mod names;
mod rows;
mod runs;
mod search;
mod validation;

pub use entities::*;
pub use error::{Error, Result};
pub use history::{BulkIntervalQuery, EXACT_SAMPLE_LIMIT, HistoryChunk};
pub use logging::Batch;
pub use models::{
    CreateLoggedModel, DatasetFilter, LoggedModel, LoggedModelData, LoggedModelInfo, LoggedModelOrder, LoggedModelPage,
    LoggedModelSearch, LoggedModelStatus, ModelMetric,
};
pub use runs::{CreateRun, UpdateRun};
pub use search::{ExperimentPage, ExperimentSearch, RunPage, RunSearch};
pub use validation::{MAX_SEARCH_RESULTS, validate_key};

use kiln_store::MetaStore;

/// The tracking service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tracking {
    store: MetaStore,
    artifact_root: String,
}

impl Tracking {
    /// Opens tracking on `store`; experiments created without an `artifact_location` get
    /// `{artifact_root}/{experiment_id}`. Makes the Default experiment ("0") if the store has none.
    pub async fn open(store: MetaStore, artifact_root: impl Into<String>) -> Result<Tracking> {
        let artifact_root = artifact_root.into().trim_end_matches('/').to_string();
        let tracking = Tracking { store, artifact_root };
        tracking.ensure_default_experiment().await?;
        Ok(tracking)
    }

    pub fn store(&self) -> &MetaStore {
        &self.store
    }

    fn experiment_location(&self, experiment_id: i64) -> String {
        format!("{}/{experiment_id}", self.artifact_root)
    }
}
