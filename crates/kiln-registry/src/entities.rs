//! What the registry records, in the shapes MLflow's REST API uses for them.

use kiln_tracking::Tag;
use serde::Serialize;

use crate::error::{Error, Result};

/// A model version's stage. Stages predate aliases; both work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::None, Stage::Staging, Stage::Production, Stage::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// A stage by name, in any letter case.
    pub fn parse(text: &str) -> Result<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text)).ok_or_else(|| {
            Error::invalid(format!(
                "Invalid Model Version stage: {text}. Value must be one of None, Staging, Production, Archived."
            ))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub current_stage: String,
    pub description: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub run_link: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The logged model the version was made from, if any.
    #[serde(skip)]
    pub model_id: Option<String>,
    /// Where the version's files are (its source, resolved).
    #[serde(skip)]
    pub storage_location: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The newest version in each stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
}

/// Longest tag key and value, and alias, the registry takes (MLflow's limits).
pub const MAX_TAG_KEY_LENGTH: usize = 250;
pub const MAX_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_ALIAS_LENGTH: usize = 255;
