//! What each search accepts: which entities, which attribute names, which operators. The rules
//! follow MLflow's, so a filter that works against `mlflow server` works here and vice versa.

use super::{Comparison, Entity, Op, Value};

/// The object a search looks through; each has its own attributes and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Runs,
    Experiments,
    /// MLflow 3's logged models: attributes, `metrics.`, `params.`, `tags.`.
    LoggedModels,
    RegisteredModels,
    ModelVersions,
}

struct Attributes {
    /// Compared as text with =, !=, LIKE, ILIKE.
    text: &'static [&'static str],
    /// Compared as numbers.
    numeric: &'static [&'static str],
    /// Compared as text with =, != and taking IN / NOT IN lists.
    ids: &'static [&'static str],
    orderable: &'static [&'static str],
    /// Order results but cannot filter them.
    order_only: &'static [&'static str],
}

const RUN_ATTRIBUTES: Attributes = Attributes {
    text: &["run_name", "status", "user_id", "artifact_uri"],
    numeric: &["start_time", "end_time"],
    ids: &["run_id"],
    orderable: &["run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"],
    order_only: &[],
};

const EXPERIMENT_ATTRIBUTES: Attributes = Attributes {
    text: &["name"],
    numeric: &["creation_time", "last_update_time"],
    ids: &["experiment_id"],
    orderable: &["experiment_id", "name", "creation_time", "last_update_time"],
    order_only: &[],
};

const LOGGED_MODEL_ATTRIBUTES: Attributes = Attributes {
    text: &["name", "model_type", "status", "source_run_id"],
    numeric: &["creation_timestamp", "last_updated_timestamp"],
    ids: &["model_id"],
    orderable: &["model_id", "name", "model_type", "status", "source_run_id", "creation_timestamp", "last_updated_timestamp"],
    order_only: &[],
};

const REGISTERED_MODEL_ATTRIBUTES: Attributes = Attributes {
    text: &[],
    numeric: &[],
    ids: &["name"],
    orderable: &["name", "last_updated_timestamp"],
    order_only: &["last_updated_timestamp"],
};

const MODEL_VERSION_ATTRIBUTES: Attributes = Attributes {
    text: &["source_path"],
    numeric: &["version_number"],
    ids: &["name", "run_id"],
    orderable: &["name", "version_number", "creation_timestamp", "last_updated_timestamp"],
    order_only: &["creation_timestamp", "last_updated_timestamp"],
};

const DATASET_FIELDS: &[&str] = &["name", "digest", "context"];

impl Schema {
    fn attributes(self) -> &'static Attributes {
        match self {
            Schema::Runs => &RUN_ATTRIBUTES,
            Schema::Experiments => &EXPERIMENT_ATTRIBUTES,
            Schema::LoggedModels => &LOGGED_MODEL_ATTRIBUTES,
            Schema::RegisteredModels => &REGISTERED_MODEL_ATTRIBUTES,
            Schema::ModelVersions => &MODEL_VERSION_ATTRIBUTES,
        }
    }

    /// Resolves `prefix.key` (or a bare key, which names an attribute) to an entity.
    pub(super) fn entity(self, prefix: Option<&str>, key: String) -> Result<Entity, String> {
        if key.is_empty() {
            return Err("a key is empty".into());
        }
        let entity = match (self, prefix) {
            (Schema::Runs, None | Some("attribute" | "attributes" | "attr" | "run"))
            | (Schema::Experiments | Schema::RegisteredModels | Schema::ModelVersions, None | Some("attribute"))
            | (Schema::LoggedModels, None | Some("attributes")) => Entity::Attribute(self.attribute(&key)?),
            (Schema::Runs, Some("metric" | "metrics")) | (Schema::LoggedModels, Some("metrics")) => Entity::Metric(key),
            (Schema::Runs, Some("param" | "params" | "parameter" | "parameters")) | (Schema::LoggedModels, Some("params")) => {
                Entity::Param(key)
            }
            (_, Some("tag" | "tags")) => Entity::Tag(key),
            (Schema::Runs, Some("dataset" | "datasets")) => {
                if !DATASET_FIELDS.contains(&key.as_str()) {
                    return Err(format!("'{key}' is not a dataset field: use one of {}", DATASET_FIELDS.join(", ")));
                }
                Entity::Dataset(key)
            }
            (_, Some(other)) => {
                let allowed = match self {
                    Schema::Runs => "metrics., params., tags., attributes. or datasets.",
                    Schema::Experiments | Schema::RegisteredModels | Schema::ModelVersions => "tags., attribute. or no prefix",
                    Schema::LoggedModels => "metrics., params., tags., attributes. or no prefix",
                };
                return Err(format!("'{other}.' is not a valid prefix here: use {allowed}"));
            }
        };
        Ok(entity)
    }

    fn attribute(self, key: &str) -> Result<String, String> {
        let canonical = match (self, key) {
            (Schema::Runs, "created" | "Created") => "start_time",
            (Schema::Runs, "run name" | "Run name" | "Run Name") => "run_name",
            (Schema::LoggedModels, "creation_time" | "creation_timestamp_ms") => "creation_timestamp",
            (Schema::LoggedModels, "last_updated_timestamp_ms") => "last_updated_timestamp",
            (Schema::RegisteredModels, "timestamp") => "last_updated_timestamp",
            (_, other) => other,
        };
        let a = self.attributes();
        if [a.text, a.numeric, a.ids, a.order_only].iter().any(|set| set.contains(&canonical)) {
            Ok(canonical.to_string())
        } else {
            let mut valid: Vec<&str> = a.text.iter().chain(a.numeric).chain(a.ids).copied().collect();
            valid.sort_unstable();
            Err(format!("'{key}' is not a valid attribute: use one of {}", valid.join(", ")))
        }
    }

    /// Whether the attribute compares as a number.
    pub fn is_numeric_attribute(self, key: &str) -> bool {
        self.attributes().numeric.contains(&key)
    }

    pub(super) fn check_comparison(self, c: &Comparison) -> Result<(), String> {
        let key = c.entity.key();
        let what = format!("{} '{key}'", c.entity.kind_name());
        if matches!(&c.entity, Entity::Attribute(a) if self.attributes().order_only.contains(&a.as_str())) {
            return Err(format!("{what} orders results but cannot filter them"));
        }
        let numeric = match &c.entity {
            Entity::Metric(_) => true,
            Entity::Attribute(a) => self.is_numeric_attribute(a),
            _ => false,
        };
        if numeric {
            if !c.op.is_numeric() {
                return Err(format!("{what} is compared with =, !=, <, <=, > or >=, not {}", c.op.as_str()));
            }
            if !matches!(c.value, Value::Number(_)) {
                return Err(format!("{what} is compared with a number, as in {key} < 0.5"));
            }
            return Ok(());
        }
        let allowed: &[Op] = match (self, &c.entity) {
            (Schema::LoggedModels, _) => &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn],
            (Schema::RegisteredModels | Schema::ModelVersions, Entity::Tag(_)) => &[Op::Eq, Op::Ne, Op::Like, Op::ILike],
            (_, Entity::Param(_) | Entity::Tag(_)) => &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::IsNull, Op::IsNotNull],
            (_, Entity::Dataset(_)) => &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn],
            (Schema::Experiments, Entity::Attribute(a)) if self.attributes().ids.contains(&a.as_str()) => {
                &[Op::Eq, Op::Ne, Op::In, Op::NotIn]
            }
            (_, Entity::Attribute(a)) if self.attributes().ids.contains(&a.as_str()) => {
                &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn]
            }
            _ => &[Op::Eq, Op::Ne, Op::Like, Op::ILike],
        };
        if !allowed.contains(&c.op) {
            let names: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
            return Err(format!("{what} is compared with {}, not {}", names.join(", "), c.op.as_str()));
        }
        match (&c.op, &c.value) {
            (Op::In | Op::NotIn, Value::List(_)) | (Op::IsNull | Op::IsNotNull, Value::Null) | (_, Value::String(_)) => Ok(()),
            _ => Err(format!("{what} is compared with a quoted string, as in {key} = 'value'")),
        }
    }

    pub(super) fn check_order_by(self, entity: &Entity) -> Result<(), String> {
        match (self, entity) {
            (_, Entity::Attribute(a)) if !self.attributes().orderable.contains(&a.as_str()) => {
                Err(format!("results cannot be ordered by attribute '{a}'"))
            }
            (_, Entity::Dataset(_)) => Err("results cannot be ordered by a dataset field".into()),
            (Schema::Experiments, Entity::Tag(_)) => Err("experiments cannot be ordered by a tag".into()),
            (Schema::LoggedModels, Entity::Param(_) | Entity::Tag(_)) => {
                Err("logged models are ordered by attributes or metrics only".into())
            }
            (Schema::RegisteredModels | Schema::ModelVersions, Entity::Tag(_)) => {
                Err("models are ordered by attributes only".into())
            }
            _ => Ok(()),
        }
    }
}
