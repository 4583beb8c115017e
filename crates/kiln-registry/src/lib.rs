//! The model registry: registered models with numbered versions, stages, aliases and tags, in
//! MLflow's model-registry shapes. A version points at a model's files in the artifact store
//! (its `source`, resolved to a storage location) and carries the run and logged model it came
//! from. [`Registry`] is the service the HTTP API and the CLI call.

mod entities;
mod error;
mod format;
mod models;
mod search;
mod source;
mod versions;

pub use entities::*;
pub use error::{Error, Result};
pub use format::{ModelFormat, TensorSpec};
pub use search::{ModelVersionPage, RegisteredModelPage, Search};
pub use source::ModelUri;
pub use versions::CreateModelVersion;

use kiln_artifacts::ArtifactStore;
use kiln_store::MetaStore;
use kiln_tracking::Tracking;

/// The registry service. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: MetaStore,
    tracking: Tracking,
    artifacts: ArtifactStore,
}

impl Registry {
    /// The registry over the tracking service's store; `artifacts` is the store that
    /// `mlflow-artifacts:` URIs name, where versions' MLmodel files are read from.
    pub fn new(tracking: Tracking, artifacts: ArtifactStore) -> Registry {
        Registry { store: tracking.store().clone(), tracking, artifacts }
    }

    /// The tracking service the registry's versions come from (runs, logged models).
    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    /// The store that `mlflow-artifacts:` URIs name.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }
}
