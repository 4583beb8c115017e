//! Runs: create, read, update, delete and restore.

use std::collections::HashMap;

use kiln_core::ids::new_run_id;
use kiln_core::time::now_millis;
use kiln_store::{Bind, Dialect, Transaction, query};

use crate::entities::*;
use crate::error::{Error, Result};
use crate::experiments::require_active_experiment;
use crate::names::random_run_name;
use crate::rows::{self, RUN_COLUMNS, RunRow};
use kiln_store::query::{IN_CHUNK, Sql};
use crate::validation::{MAX_TAG_VALUE_LENGTH, parse_experiment_id, truncate_chars};
use crate::Tracking;

/// What `runs/create` takes.
#[derive(Debug, Clone, Default)]
pub struct CreateRun {
    pub experiment_id: String,
    pub user_id: Option<String>,
    /// Milliseconds since the epoch; MLflow's server records 0 when the client sends none.
    pub start_time: Option<i64>,
    pub run_name: Option<String>,
    pub tags: Vec<Tag>,
}

/// What `runs/update` changes; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateRun {
    pub status: Option<String>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

impl Tracking {
    pub async fn create_run(&self, req: CreateRun) -> Result<Run> {
        if req.experiment_id.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'experiment_id'"));
        }
        let experiment_id = parse_experiment_id(&req.experiment_id)?;
        let mut tags: Vec<Tag> = Vec::with_capacity(req.tags.len() + 1);
        for mut tag in req.tags {
            truncate_chars(&mut tag.value, MAX_TAG_VALUE_LENGTH);
            match tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => tags.push(tag),
            }
        }
        let tag_name = tags.iter().find(|t| t.key == RUN_NAME_TAG).map(|t| t.value.clone());
        let run_name = match (req.run_name.filter(|n| !n.is_empty()), tag_name) {
            (Some(name), Some(tagged)) if name != tagged => {
                return Err(Error::invalid(format!(
                    "Both 'run_name' ('{name}') and the tag '{RUN_NAME_TAG}' ('{tagged}') were given with different \
                     values: give one, or make them equal"
                )));
            }
            (Some(name), _) => name,
            (None, Some(tagged)) if !tagged.is_empty() => tagged,
            _ => random_run_name(),
        };
        match tags.iter_mut().find(|t| t.key == RUN_NAME_TAG) {
            Some(t) => t.value = run_name.clone(),
            None => tags.push(Tag { key: RUN_NAME_TAG.into(), value: run_name.clone() }),
        }

        let run_id = new_run_id();
        let mut tx = self.store.begin_write().await?;
        let location = require_active_experiment(&mut tx, experiment_id).await?;
        let info = RunInfo {
            run_uuid: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            run_name,
            user_id: req.user_id.unwrap_or_default(),
            status: RunStatus::Running.as_str().to_string(),
            start_time: req.start_time.unwrap_or(0),
            end_time: None,
            artifact_uri: format!("{}/{run_id}/artifacts", location.trim_end_matches('/')),
            lifecycle_stage: ACTIVE.to_string(),
            run_id: run_id.clone(),
        };
        let pk: i64 = query(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING run_pk",
        )
        .bind(&info.run_uuid)
        .bind(experiment_id)
        .bind(&info.run_name)
        .bind(&info.user_id)
        .bind(&info.status)
        .bind(info.start_time)
        .bind(&info.lifecycle_stage)
        .bind(&info.artifact_uri)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        upsert_run_tags(&mut tx, self.store.dialect(), pk, &tags).await?;
        tx.commit().await?;
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Run {
            info,
            data: RunData { tags, ..RunData::default() },
            inputs: RunInputs::default(),
            outputs: RunOutputs::default(),
        })
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        let row = self.find_run(run_id).await?;
        let mut runs = self.load_runs(vec![row]).await?;
        Ok(runs.remove(0))
    }

    pub(crate) async fn find_run(&self, run_id: &str) -> Result<RunRow> {
        require_run_id(run_id)?;
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1");
        let row = query(sql).bind(run_id).fetch_optional(self.store.reader()).await?;
        match row {
            Some(row) => rows::run(&row),
            None => Err(run_not_found(run_id)),
        }
    }

    pub async fn update_run(&self, run_id: &str, update: UpdateRun) -> Result<RunInfo> {
        let mut tx = self.store.begin_write().await?;
        let run = active_run(&mut tx, run_id).await?;
        let mut info = run.info;
        if let Some(text) = update.status.as_deref().filter(|s| !s.is_empty()) {
            let status = RunStatus::parse(text).ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid run status '{text}': use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED"
                ))
            })?;
            info.status = status.as_str().to_string();
        }
        if let Some(end_time) = update.end_time {
            info.end_time = Some(end_time);
        }
        if let Some(name) = update.run_name.filter(|n| !n.is_empty()) {
            upsert_run_tags(&mut tx, self.store.dialect(), run.pk, &[Tag { key: RUN_NAME_TAG.into(), value: name.clone() }]).await?;
            info.run_name = name;
        }
        query("UPDATE runs SET status = $1, end_time = $2, name = $3 WHERE run_pk = $4")
            .bind(&info.status)
            .bind(info.end_time)
            .bind(&info.run_name)
            .bind(run.pk)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Marks a run deleted; deleting a deleted run is not an error.
    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        self.set_run_stage(run_id, DELETED, Some(now_millis())).await
    }

    /// Brings a deleted run back; restoring an active run is not an error.
    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        self.set_run_stage(run_id, ACTIVE, None).await
    }

    async fn set_run_stage(&self, run_id: &str, stage: &str, deleted_time: Option<i64>) -> Result<()> {
        require_run_id(run_id)?;
        let mut tx = self.store.begin_write().await?;
        let done = query("UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_uuid = $3")
            .bind(stage)
            .bind(deleted_time)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(run_not_found(run_id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Completes run rows with their latest metrics, params, tags, inputs and outputs, keeping
    /// the rows' order.
    pub(crate) async fn load_runs(&self, rows: Vec<RunRow>) -> Result<Vec<Run>> {
        let index: HashMap<i64, usize> = rows.iter().enumerate().map(|(i, r)| (r.pk, i)).collect();
        let mut runs: Vec<Run> = rows
            .into_iter()
            .map(|r| Run { info: r.info, data: RunData::default(), inputs: RunInputs::default(), outputs: RunOutputs::default() })
            .collect();
        let pks: Vec<i64> = index.keys().copied().collect();
        let reader = self.store.reader();
        let dialect = self.store.dialect();
        for chunk in pks.chunks(IN_CHUNK) {
            let keys = || chunk.iter().map(|&pk| Bind::Int(pk));
            let mut q = Sql::new(dialect, run_data_sql(dialect));
            q.bind_list(keys());
            let packed: Option<String> = q.build().fetch_one(reader).await?.try_get(0)?;
            for (run_pk, data) in unpack_run_data(packed.as_deref())? {
                if let Some(&i) = index.get(&run_pk) {
                    runs[i].data = data;
                }
            }
            let mut q = Sql::new(
                dialect,
                "SELECT i.run_pk, i.dataset_pk, d.name, d.digest, d.source_type, d.source, d.schema, d.profile \
                 FROM run_inputs i JOIN datasets d ON d.dataset_pk = i.dataset_pk WHERE i.run_pk IN ",
            );
            q.bind_list(keys()).push(" ORDER BY i.input_pk");
            let mut input_slots: HashMap<(i64, i64), (usize, usize)> = HashMap::new();
            for row in q.build().fetch_all(reader).await? {
                let run_pk: i64 = row.try_get(0)?;
                let inputs = &mut runs[index[&run_pk]].inputs.dataset_inputs;
                input_slots.insert((run_pk, row.try_get(1)?), (index[&run_pk], inputs.len()));
                inputs.push(DatasetInput {
                    tags: Vec::new(),
                    dataset: Dataset {
                        name: row.try_get(2)?,
                        digest: row.try_get(3)?,
                        source_type: row.try_get(4)?,
                        source: row.try_get(5)?,
                        schema: row.try_get(6)?,
                        profile: row.try_get(7)?,
                    },
                });
            }
            if !input_slots.is_empty() {
                let mut q = Sql::new(dialect, "SELECT run_pk, dataset_pk, key, value FROM run_input_tags WHERE run_pk IN ");
                q.bind_list(keys()).push(" ORDER BY run_pk, dataset_pk, key");
                for row in q.build().fetch_all(reader).await? {
                    if let Some(&(run, slot)) = input_slots.get(&(row.try_get(0)?, row.try_get(1)?)) {
                        runs[run].inputs.dataset_inputs[slot].tags.push(rows::tag(&row, 2)?);
                    }
                }
            }
            let mut q = Sql::new(dialect, "SELECT run_pk, model_id FROM run_model_inputs WHERE run_pk IN ");
            q.bind_list(keys()).push(" ORDER BY input_pk");
            for row in q.build().fetch_all(reader).await? {
                runs[index[&row.try_get::<i64, _>(0)?]].inputs.model_inputs.push(ModelInput { model_id: row.try_get(1)? });
            }
            let mut q = Sql::new(dialect, "SELECT run_pk, model_id, step FROM run_outputs WHERE run_pk IN ");
            q.bind_list(keys()).push(" ORDER BY output_pk");
            for row in q.build().fetch_all(reader).await? {
                runs[index[&row.try_get::<i64, _>(0)?]]
                    .outputs
                    .model_outputs
                    .push(ModelOutput { model_id: row.try_get(1)?, step: row.try_get(2)? });
            }
        }
        Ok(runs)
    }
}

/// The latest metrics, params and tags of the runs in an `IN` list, packed by the database into
/// one JSON document: `[[run_pk, [[key, value, timestamp, step, is_nan], ...], [[key, value],
/// ...], [[key, value], ...]], ...]`. One row instead of one per value keeps the driver's
/// per-row cost off a 1,000-run page. Metric values travel as their exact order keys.
fn run_data_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT json_group_array(json_array(r.run_pk, \
             json((SELECT json_group_array(json_array(m.key, m.value_key, m.timestamp, m.step, m.is_nan) ORDER BY m.key) \
                   FROM latest_metrics m WHERE m.run_pk = r.run_pk)), \
             json((SELECT json_group_array(json_array(p.key, p.value) ORDER BY p.key) FROM run_params p WHERE p.run_pk = r.run_pk)), \
             json((SELECT json_group_array(json_array(t.key, t.value) ORDER BY t.key) FROM run_tags t WHERE t.run_pk = r.run_pk)))) \
             FROM runs r WHERE r.run_pk IN "
        }
        Dialect::Postgres => {
            "SELECT json_agg(json_build_array(r.run_pk, \
             (SELECT json_agg(json_build_array(m.key, m.value_key, m.timestamp, m.step, m.is_nan) ORDER BY m.key) \
              FROM latest_metrics m WHERE m.run_pk = r.run_pk), \
             (SELECT json_agg(json_build_array(p.key, p.value) ORDER BY p.key) FROM run_params p WHERE p.run_pk = r.run_pk), \
             (SELECT json_agg(json_build_array(t.key, t.value) ORDER BY t.key) FROM run_tags t WHERE t.run_pk = r.run_pk)))::text \
             FROM runs r WHERE r.run_pk IN "
        }
    }
}

type PackedMetric = (String, i64, i64, i64, i64);
type PackedRun = (i64, Option<Vec<PackedMetric>>, Option<Vec<(String, String)>>, Option<Vec<(String, String)>>);

fn unpack_run_data(packed: Option<&str>) -> Result<Vec<(i64, RunData)>> {
    let Some(packed) = packed else { return Ok(Vec::new()) };
    let corrupt = |why: String| Error::Store(kiln_store::Error::Corrupt(format!("unreadable packed run data: {why}")));
    let runs: Vec<PackedRun> = serde_json::from_str(packed).map_err(|e| corrupt(e.to_string()))?;
    let pairs = |items: Option<Vec<(String, String)>>| {
        items.unwrap_or_default().into_iter().map(|(key, value)| Tag { key, value }).collect::<Vec<_>>()
    };
    runs.into_iter()
        .map(|(run_pk, metrics, params, tags)| {
            let metrics = metrics
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value_key, timestamp, step, is_nan)| Metric {
                    key,
                    value: crate::rows::value_from_key(value_key, is_nan != 0),
                    timestamp,
                    step,
                })
                .collect();
            Ok((run_pk, RunData { metrics, params: pairs(params), tags: pairs(tags) }))
        })
        .collect()
}

pub(crate) fn require_run_id(run_id: &str) -> Result<()> {
    if run_id.is_empty() {
        return Err(Error::invalid("Missing value for required parameter 'run_id'"));
    }
    Ok(())
}

pub(crate) fn run_not_found(run_id: &str) -> Error {
    Error::not_found(format!("Run with id={} not found", run_id.chars().take(100).collect::<String>()))
}

/// The run, locked for this write transaction's purpose; writes to a deleted run are refused.
pub(crate) async fn active_run(tx: &mut Transaction, run_id: &str) -> Result<RunRow> {
    require_run_id(run_id)?;
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1");
    let row = query(sql).bind(run_id).fetch_optional(&mut **tx).await?;
    let run = match row {
        Some(row) => rows::run(&row)?,
        None => return Err(run_not_found(run_id)),
    };
    if run.info.lifecycle_stage != ACTIVE {
        return Err(Error::invalid(format!(
            "The run {run_id} must be in the 'active' state; it is {}. Restore it first",
            run.info.lifecycle_stage
        )));
    }
    Ok(run)
}

/// Inserts or overwrites tags (keys must be distinct).
pub(crate) async fn upsert_run_tags(tx: &mut Transaction, dialect: Dialect, run_pk: i64, tags: &[Tag]) -> Result<()> {
    for chunk in tags.chunks(300) {
        let mut q = Sql::new(dialect, "INSERT INTO run_tags (run_pk, key, value) VALUES ");
        for (i, tag) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_int(run_pk).push(", ").bind_text(&tag.key).push(", ").bind_text(&tag.value).push(")");
        }
        q.push(" ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
