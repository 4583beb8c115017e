//! Searching registered models and model versions with MLflow's filter language.

use kiln_core::search::{Comparison, Entity, Op, PageToken, Schema, Value, parse_filter, parse_order_by};
use kiln_store::query::{Sql, direction, key_value_condition, next_token, numeric_comparison, page, text_comparison};

use crate::entities::{ModelVersion, RegisteredModel};
use crate::error::{Error, Result};
use crate::models::{MODEL_COLUMNS, model_row};
use crate::versions::{VERSION_COLUMNS, version_row};
use crate::Registry;

/// The tag that marks a registered model as a prompt (MLflow keeps prompts in the registry).
const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// Page sizes: MLflow's defaults and limits.
pub const DEFAULT_MODEL_RESULTS: i64 = 100;
pub const MAX_MODEL_RESULTS: i64 = 1000;
pub const DEFAULT_VERSION_RESULTS: i64 = 200_000;
pub const MAX_VERSION_RESULTS: i64 = 200_000;

#[derive(Debug, Clone, Default)]
pub struct Search {
    pub filter: String,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RegisteredModelPage {
    pub registered_models: Vec<RegisteredModel>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ModelVersionPage {
    pub model_versions: Vec<ModelVersion>,
    pub next_page_token: Option<String>,
}

fn page_size(requested: Option<i64>, default: i64, max: i64) -> Result<i64> {
    let n = requested.unwrap_or(default);
    if n < 1 || n > max {
        return Err(Error::invalid(format!(
            "Invalid value for request parameter max_results. It must be between 1 and {max}, but got value {n}"
        )));
    }
    Ok(n)
}

impl Registry {
    pub async fn search_registered_models(&self, req: Search) -> Result<RegisteredModelPage> {
        let max_results = page_size(req.max_results, DEFAULT_MODEL_RESULTS, MAX_MODEL_RESULTS)?;
        let filter = parse_filter(&req.filter, Schema::RegisteredModels)?;
        let order_by = parse_order_by(&req.order_by, Schema::RegisteredModels)?;
        let token = PageToken::decode(req.page_token.as_deref())?;
        let mut q = Sql::new(self.store.dialect(), &format!("SELECT {MODEL_COLUMNS} FROM registered_models rm WHERE 1 = 1"));
        // Prompts are registered models tagged as such; a search leaves them out unless it
        // asks for them, and the client's own "is not a prompt" clause means just that.
        let asks_for_prompts = filter
            .clauses
            .iter()
            .any(|c| matches!(&c.entity, Entity::Tag(k) if k == PROMPT_TAG) && c.op == Op::Eq);
        if !asks_for_prompts {
            q.push(" AND NOT EXISTS (SELECT 1 FROM registered_model_tags p WHERE p.model_pk = rm.model_pk AND p.key = ");
            q.bind_text(PROMPT_TAG).push(" AND LOWER(p.value) = 'true')");
        }
        for c in &filter.clauses {
            if matches!(&c.entity, Entity::Tag(k) if k == PROMPT_TAG) && c.op == Op::Ne {
                q.push(" AND NOT EXISTS (SELECT 1 FROM registered_model_tags t WHERE t.model_pk = rm.model_pk AND t.key = ");
                q.bind_text(PROMPT_TAG).push(" AND ");
                text_comparison(&mut q, "t.value", Op::Eq, &c.value)?;
                q.push(")");
                continue;
            }
            q.push(" AND ");
            match &c.entity {
                Entity::Tag(key) => key_value_condition(&mut q, "registered_model_tags", "t.model_pk = rm.model_pk", key, c)?,
                Entity::Attribute(a) => attribute_condition(&mut q, model_column(a), Schema::RegisteredModels, a, c)?,
                other => return Err(Error::invalid(format!("Registered models cannot be filtered by {} '{}'", other.kind_name(), other.key()))),
            }
        }
        let mut terms: Vec<String> = order_by.iter().map(|o| format!("{} {}", model_column(o.entity.key()), direction(o.ascending))).collect();
        if !order_by.iter().any(|o| o.entity.key() == "name") {
            terms.push("rm.name ASC".into());
        }
        q.push(" ORDER BY ").push(&terms.join(", "));
        page(&mut q, max_results, token);
        let rows = q.build().fetch_all(self.store.reader()).await?;
        let mut models = rows.iter().map(model_row).collect::<Result<Vec<_>>>()?;
        let next_page_token = next_token(&mut models, max_results, token);
        self.complete_models(&mut models).await?;
        Ok(RegisteredModelPage { registered_models: models.into_iter().map(|(_, m)| m).collect(), next_page_token })
    }

    pub async fn search_model_versions(&self, req: Search) -> Result<ModelVersionPage> {
        let max_results = page_size(req.max_results, DEFAULT_VERSION_RESULTS, MAX_VERSION_RESULTS)?;
        let filter = parse_filter(&req.filter, Schema::ModelVersions)?;
        let order_by = parse_order_by(&req.order_by, Schema::ModelVersions)?;
        let token = PageToken::decode(req.page_token.as_deref())?;
        let mut q = Sql::new(
            self.store.dialect(),
            &format!("SELECT {VERSION_COLUMNS} FROM model_versions mv JOIN registered_models rm ON rm.model_pk = mv.model_pk WHERE 1 = 1"),
        );
        for c in &filter.clauses {
            q.push(" AND ");
            match &c.entity {
                Entity::Tag(key) => key_value_condition(
                    &mut q,
                    "model_version_tags",
                    "t.model_pk = mv.model_pk AND t.version = mv.version",
                    key,
                    c,
                )?,
                Entity::Attribute(a) => attribute_condition(&mut q, version_column(a), Schema::ModelVersions, a, c)?,
                other => return Err(Error::invalid(format!("Model versions cannot be filtered by {} '{}'", other.kind_name(), other.key()))),
            }
        }
        let mut terms: Vec<String> =
            order_by.iter().map(|o| format!("{} {}", version_column(o.entity.key()), direction(o.ascending))).collect();
        if order_by.is_empty() {
            terms.push("mv.last_updated_time DESC".into());
        }
        if !order_by.iter().any(|o| o.entity.key() == "name") {
            terms.push("rm.name ASC".into());
        }
        if !order_by.iter().any(|o| o.entity.key() == "version_number") {
            terms.push("mv.version DESC".into());
        }
        q.push(" ORDER BY ").push(&terms.join(", "));
        page(&mut q, max_results, token);
        let rows = q.build().fetch_all(self.store.reader()).await?;
        let mut versions = rows.iter().map(version_row).collect::<Result<Vec<_>>>()?;
        let next_page_token = next_token(&mut versions, max_results, token);
        self.attach_version_tags(&mut versions).await?;
        Ok(ModelVersionPage { model_versions: versions.into_iter().map(|(_, v)| v).collect(), next_page_token })
    }
}

fn model_column(attribute: &str) -> &'static str {
    match attribute {
        "last_updated_timestamp" => "rm.last_updated_time",
        _ => "rm.name",
    }
}

fn version_column(attribute: &str) -> &'static str {
    match attribute {
        "version_number" => "mv.version",
        "run_id" => "mv.run_id",
        "source_path" => "mv.source",
        "creation_timestamp" => "mv.creation_time",
        "last_updated_timestamp" => "mv.last_updated_time",
        _ => "rm.name",
    }
}

fn attribute_condition(q: &mut Sql, column: &str, schema: Schema, attribute: &str, c: &Comparison) -> Result<()> {
    if schema.is_numeric_attribute(attribute) {
        numeric_comparison(q, column, c.op, &c.value)?;
    } else if c.op == Op::Ne && matches!(c.value, Value::String(_)) {
        // A missing run id differs from any given one.
        q.push(&format!("({column} IS NULL OR "));
        text_comparison(q, column, c.op, &c.value)?;
        q.push(")");
    } else {
        text_comparison(q, column, c.op, &c.value)?;
    }
    Ok(())
}
