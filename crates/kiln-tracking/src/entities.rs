//! What tracking records, in the shapes MLflow's REST API uses for them.

use serde::{Serialize, Serializer};

pub const ACTIVE: &str = "active";
pub const DELETED: &str = "deleted";

/// The tag MLflow keeps a run's name in, beside the run's `run_name` attribute.
pub const RUN_NAME_TAG: &str = "mlflow.runName";
/// The input tag that says what a dataset was used for (training, evaluation).
pub const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub last_update_time: i64,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A key/value pair: a tag of an experiment or run, a parameter, an input tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "RUNNING" => RunStatus::Running,
            "SCHEDULED" => RunStatus::Scheduled,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            "KILLED" => RunStatus::Killed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub run_uuid: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
    pub run_id: String,
}

/// One point of a metric. NaN is kept; infinities are stored as the largest finite double.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    #[serde(serialize_with = "metric_value")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// A metric point tagged with its run, as the bulk history answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMetric {
    #[serde(flatten)]
    pub metric: Metric,
    pub run_id: String,
}

/// JSON has no NaN; MLflow's protocol writes it as the string "NaN".
pub fn metric_value<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() { s.serialize_str("NaN") } else { s.serialize_f64(*value) }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetInput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub dataset: Dataset,
}

/// A logged model a run used (evaluated, fine-tuned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModelInput {
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelInput>,
}

/// A model a run produced, at the step it was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

/// Which lifecycle stages a search includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    pub(crate) fn stages(self) -> &'static [&'static str] {
        match self {
            ViewType::ActiveOnly => &[ACTIVE],
            ViewType::DeletedOnly => &[DELETED],
            ViewType::All => &[ACTIVE, DELETED],
        }
    }
}
