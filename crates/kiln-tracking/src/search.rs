//! Searching runs and experiments: MLflow's filter language compiled to parameterised SQL.

use kiln_core::search::{Comparison, Entity, Op, OrderBy, PageToken, Schema, Value, parse_filter, parse_order_by};

use crate::entities::{Experiment, Run, ViewType};
use crate::error::{Error, Result};
use crate::rows::{self, EXPERIMENT_COLUMNS, RUN_COLUMNS};
use kiln_store::Bind;
use kiln_store::query::{Sql, direction, key_value_condition, next_token, numeric_comparison, page, text_comparison};
use crate::validation::{MAX_SEARCH_RESULTS, parse_experiment_id, validate_max_results};
use crate::Tracking;

#[derive(Debug, Clone)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub view: ViewType,
    pub max_results: i64,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

impl Default for RunSearch {
    fn default() -> Self {
        RunSearch {
            experiment_ids: Vec::new(),
            filter: String::new(),
            view: ViewType::ActiveOnly,
            max_results: 1000,
            order_by: Vec::new(),
            page_token: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunPage {
    pub runs: Vec<Run>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExperimentSearch {
    pub filter: String,
    pub view: ViewType,
    pub max_results: i64,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExperimentPage {
    pub experiments: Vec<Experiment>,
    pub next_page_token: Option<String>,
}

impl Tracking {
    pub async fn search_runs(&self, req: RunSearch) -> Result<RunPage> {
        validate_max_results(req.max_results, MAX_SEARCH_RESULTS)?;
        let filter = parse_filter(&req.filter, Schema::Runs)?;
        let order_by = parse_order_by(&req.order_by, Schema::Runs)?;
        let token = PageToken::decode(req.page_token.as_deref())?;
        let experiment_ids = req.experiment_ids.iter().map(|id| parse_experiment_id(id)).collect::<Result<Vec<_>>>()?;
        if experiment_ids.is_empty() {
            return Ok(RunPage { runs: Vec::new(), next_page_token: None });
        }
        let mut q = Sql::new(self.store.dialect(), &format!("SELECT {RUN_COLUMNS} FROM runs r"));
        let mut order_sql = Vec::new();
        for (i, o) in order_by.iter().enumerate() {
            order_run_by(&mut q, &mut order_sql, i, o, &filter.clauses)?;
        }
        q.push(" WHERE r.experiment_id IN ");
        q.bind_list(experiment_ids.into_iter().map(Bind::Int));
        q.push(" AND r.lifecycle_stage IN ");
        q.bind_list(req.view.stages().iter().map(|s| Bind::Text(s.to_string())));
        for c in &filter.clauses {
            q.push(" AND ");
            run_condition(&mut q, c)?;
        }
        if !order_by.iter().any(|o| o.entity == Entity::Attribute("start_time".into())) {
            order_sql.push("r.start_time DESC".into());
        }
        order_sql.push("r.run_uuid ASC".into());
        q.push(" ORDER BY ").push(&order_sql.join(", "));
        page(&mut q, req.max_results, token);
        let rows = q.build().fetch_all(self.store.reader()).await?;
        let mut run_rows = rows.iter().map(rows::run).collect::<Result<Vec<_>>>()?;
        let next_page_token = next_token(&mut run_rows, req.max_results, token);
        let runs = self.load_runs(run_rows).await?;
        Ok(RunPage { runs, next_page_token })
    }

    pub async fn search_experiments(&self, req: ExperimentSearch) -> Result<ExperimentPage> {
        validate_max_results(req.max_results, MAX_SEARCH_RESULTS)?;
        let filter = parse_filter(&req.filter, Schema::Experiments)?;
        let order_by = parse_order_by(&req.order_by, Schema::Experiments)?;
        let token = PageToken::decode(req.page_token.as_deref())?;
        let mut q = Sql::new(self.store.dialect(), &format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.lifecycle_stage IN "));
        q.bind_list(req.view.stages().iter().map(|s| Bind::Text(s.to_string())));
        for c in &filter.clauses {
            q.push(" AND ");
            experiment_condition(&mut q, c)?;
        }
        let mut order_sql: Vec<String> = order_by
            .iter()
            .map(|o| {
                let column = match o.entity.key() {
                    "name" => "e.name",
                    "creation_time" => "e.creation_time",
                    "last_update_time" => "e.last_update_time",
                    _ => "e.experiment_id",
                };
                format!("{column} {}", direction(o.ascending))
            })
            .collect();
        if order_by.is_empty() {
            order_sql = vec!["e.creation_time DESC".into(), "e.experiment_id ASC".into()];
        } else if !order_by.iter().any(|o| o.entity.key() == "experiment_id") {
            order_sql.push("e.experiment_id DESC".into());
        }
        q.push(" ORDER BY ").push(&order_sql.join(", "));
        page(&mut q, req.max_results, token);
        let rows = q.build().fetch_all(self.store.reader()).await?;
        let mut experiments = rows.iter().map(rows::experiment).collect::<Result<Vec<_>>>()?;
        let next_page_token = next_token(&mut experiments, req.max_results, token);
        self.attach_experiment_tags(&mut experiments).await?;
        Ok(ExperimentPage { experiments, next_page_token })
    }
}




/// Joins what an order_by clause needs and adds its ORDER BY terms. Runs without the metric,
/// param or tag sort last in both directions; NaN metrics sort after numbers and before those.
///
/// When the filter already requires a number for the metric (any comparison but `!=`), missing
/// and NaN values cannot occur: the join becomes an inner join carrying the filter's range, so
/// the database walks the (key, value) index in order and stops at the page's end.
fn order_run_by(q: &mut Sql, order_sql: &mut Vec<String>, i: usize, o: &OrderBy, filter: &[Comparison]) -> Result<()> {
    let dir = direction(o.ascending);
    let alias = format!("o{i}");
    let table = match &o.entity {
        Entity::Metric(_) => "latest_metrics",
        Entity::Param(_) => "run_params",
        Entity::Tag(_) => "run_tags",
        Entity::Attribute(a) => {
            let column = run_column(a)
                .ok_or_else(|| Error::invalid(format!("results cannot be ordered by attribute '{a}'")))?;
            order_sql.push(format!("CASE WHEN {column} IS NULL THEN 1 ELSE 0 END"));
            order_sql.push(format!("{column} {dir}"));
            return Ok(());
        }
        Entity::Dataset(_) => return Err(Error::invalid("results cannot be ordered by a dataset field")),
    };
    if let Entity::Metric(key) = &o.entity {
        let ranges: Vec<&Comparison> = filter
            .iter()
            .filter(|c| c.op != Op::Ne && matches!(&c.entity, Entity::Metric(k) if k == key))
            .collect();
        if !ranges.is_empty() {
            q.push(&format!(" JOIN latest_metrics {alias} ON {alias}.run_pk = r.run_pk AND {alias}.is_nan = 0 AND {alias}.key = "));
            q.bind_text(key);
            for c in ranges {
                q.push(" AND ");
                numeric_comparison(q, &format!("{alias}.value"), c.op, &c.value)?;
            }
            order_sql.push(format!("{alias}.value {dir}"));
            return Ok(());
        }
    }
    q.push(&format!(" LEFT JOIN {table} {alias} ON {alias}.run_pk = r.run_pk AND {alias}.key = "));
    q.bind_text(o.entity.key());
    if table == "latest_metrics" {
        order_sql.push(format!(
            "CASE WHEN {alias}.run_pk IS NULL THEN 2 WHEN {alias}.is_nan = 1 THEN 1 ELSE 0 END"
        ));
    } else {
        order_sql.push(format!("CASE WHEN {alias}.run_pk IS NULL THEN 1 ELSE 0 END"));
    }
    order_sql.push(format!("{alias}.value {dir}"));
    Ok(())
}



fn run_condition(q: &mut Sql, c: &Comparison) -> Result<()> {
    match &c.entity {
        Entity::Metric(key) => {
            q.push("EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_pk = r.run_pk AND m.key = ").bind_text(key);
            // NaN equals nothing and differs from everything.
            if c.op == Op::Ne {
                q.push(" AND (m.is_nan = 1 OR ");
                numeric_comparison(q, "m.value", c.op, &c.value)?;
                q.push("))");
            } else {
                q.push(" AND m.is_nan = 0 AND ");
                numeric_comparison(q, "m.value", c.op, &c.value)?;
                q.push(")");
            }
        }
        Entity::Param(key) => key_value_condition(q, "run_params", "t.run_pk = r.run_pk", key, c)?,
        Entity::Tag(key) => key_value_condition(q, "run_tags", "t.run_pk = r.run_pk", key, c)?,
        Entity::Attribute(a) => {
            let column = run_column(a).ok_or_else(|| Error::invalid(format!("'{a}' is not a searchable run attribute")))?;
            if Schema::Runs.is_numeric_attribute(a) {
                numeric_comparison(q, column, c.op, &c.value)?;
            } else {
                text_comparison(q, column, c.op, &c.value)?;
            }
        }
        Entity::Dataset(field) => {
            if field == "context" {
                q.push("EXISTS (SELECT 1 FROM run_input_tags t WHERE t.run_pk = r.run_pk AND t.key = ");
                q.bind_text(crate::entities::DATASET_CONTEXT_TAG).push(" AND ");
                text_comparison(q, "t.value", c.op, &c.value)?;
            } else {
                let column = if field == "digest" { "d.digest" } else { "d.name" };
                q.push(
                    "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_pk = i.dataset_pk \
                     WHERE i.run_pk = r.run_pk AND ",
                );
                text_comparison(q, column, c.op, &c.value)?;
            }
            q.push(")");
        }
    }
    Ok(())
}

/// The run column an attribute names.
fn run_column(attribute: &str) -> Option<&'static str> {
    Some(match attribute {
        "run_id" => "r.run_uuid",
        "run_name" => "r.name",
        "status" => "r.status",
        "user_id" => "r.user_id",
        "artifact_uri" => "r.artifact_uri",
        "start_time" => "r.start_time",
        "end_time" => "r.end_time",
        _ => return None,
    })
}


fn experiment_condition(q: &mut Sql, c: &Comparison) -> Result<()> {
    match &c.entity {
        Entity::Tag(key) => key_value_condition(q, "experiment_tags", "t.experiment_id = e.experiment_id", key, c)?,
        Entity::Attribute(a) => match a.as_str() {
            "name" => text_comparison(q, "e.name", c.op, &c.value)?,
            "creation_time" => numeric_comparison(q, "e.creation_time", c.op, &c.value)?,
            "last_update_time" => numeric_comparison(q, "e.last_update_time", c.op, &c.value)?,
            "experiment_id" => {
                let ids: Vec<Bind> = match &c.value {
                    Value::String(s) => vec![Bind::Int(parse_experiment_id(s)?)],
                    Value::List(items) => {
                        items.iter().map(|s| parse_experiment_id(s).map(Bind::Int)).collect::<Result<_>>()?
                    }
                    _ => return Err(Error::invalid("experiment_id is compared with quoted ids")),
                };
                let negate = matches!(c.op, Op::Ne | Op::NotIn);
                q.push(if negate { "e.experiment_id NOT IN " } else { "e.experiment_id IN " });
                q.bind_list(ids);
            }
            other => return Err(Error::invalid(format!("'{other}' is not a searchable experiment attribute"))),
        },
        other => {
            return Err(Error::invalid(format!("experiments cannot be filtered by {} '{}'", other.kind_name(), other.key())));
        }
    }
    Ok(())
}
