//! Experiments: create, read, rename, delete and restore, and their tags.

use std::collections::HashMap;

use kiln_core::time::now_millis;
use kiln_store::{Bind, Transaction, is_unique_violation, query};

use crate::entities::{ACTIVE, DELETED, Experiment, Tag};
use crate::error::{Error, Result};
use crate::rows::{self, EXPERIMENT_COLUMNS};
use kiln_store::query::{IN_CHUNK, Sql};
use crate::validation::{MAX_EXPERIMENT_TAG_VALUE_LENGTH, parse_experiment_id, validate_key};
use crate::Tracking;

pub(crate) const DEFAULT_EXPERIMENT_ID: i64 = 0;
const DEFAULT_EXPERIMENT_NAME: &str = "Default";

impl Tracking {
    pub(crate) async fn ensure_default_experiment(&self) -> Result<()> {
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        query(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, $3, 'active', $4, $4) ON CONFLICT DO NOTHING",
        )
        .bind(DEFAULT_EXPERIMENT_ID)
        .bind(DEFAULT_EXPERIMENT_NAME)
        .bind(self.experiment_location(DEFAULT_EXPERIMENT_ID))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_experiment(&self, name: &str, artifact_location: Option<&str>, tags: &[Tag]) -> Result<String> {
        if name.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'name': give the experiment a name"));
        }
        for tag in tags {
            validate_experiment_tag(tag)?;
        }
        if let Some(location) = artifact_location {
            validate_artifact_location(location)?;
        }
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let inserted = query(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, 'active', $3, $3) RETURNING experiment_id",
        )
        .bind(name)
        .bind(artifact_location.unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::already_exists(format!("Experiment '{name}' already exists")));
            }
            Err(e) => return Err(e.into()),
        };
        if artifact_location.is_none_or(str::is_empty) {
            query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
                .bind(self.experiment_location(id))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for tag in tags {
            upsert_experiment_tag(&mut tx, id, tag).await?;
        }
        tx.commit().await?;
        Ok(id.to_string())
    }

    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = parse_experiment_id(experiment_id)?;
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.experiment_id = $1");
        let row = query(sql).bind(id).fetch_optional(self.store.reader()).await?;
        let row = row.ok_or_else(|| Error::not_found(format!("No Experiment with id={id} exists")))?;
        let mut experiment = rows::experiment(&row)?;
        self.attach_experiment_tags(std::slice::from_mut(&mut experiment)).await?;
        Ok(experiment)
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        if name.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'experiment_name'"));
        }
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.name = $1");
        let row = query(sql).bind(name).fetch_optional(self.store.reader()).await?;
        let row = row.ok_or_else(|| Error::not_found(format!("Could not find experiment with name '{name}'")))?;
        let mut experiment = rows::experiment(&row)?;
        self.attach_experiment_tags(std::slice::from_mut(&mut experiment)).await?;
        Ok(experiment)
    }

    /// Fills in the tags of each experiment.
    pub(crate) async fn attach_experiment_tags(&self, experiments: &mut [Experiment]) -> Result<()> {
        let index: HashMap<String, usize> =
            experiments.iter().enumerate().map(|(i, e)| (e.experiment_id.clone(), i)).collect();
        let ids: Vec<i64> = experiments.iter().filter_map(|e| e.experiment_id.parse().ok()).collect();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql = Sql::new(self.store.dialect(), "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ");
            sql.bind_list(chunk.iter().map(|&id| Bind::Int(id)));
            sql.push(" ORDER BY experiment_id, key");
            for row in sql.build().fetch_all(self.store.reader()).await? {
                if let Some(&i) = index.get(&row.try_get::<i64, _>(0)?.to_string()) {
                    experiments[i].tags.push(rows::tag(&row, 1)?);
                }
            }
        }
        Ok(())
    }

    pub async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        if new_name.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'new_name': give the new name"));
        }
        let mut tx = self.store.begin_write().await?;
        let stage = experiment_stage(&mut tx, id).await?;
        if stage != ACTIVE {
            return Err(Error::invalid_state(format!(
                "Cannot rename experiment {id}: it is deleted; restore it first"
            )));
        }
        let renamed = query("UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(new_name)
            .bind(now_millis())
            .bind(id)
            .execute(&mut *tx)
            .await;
        match renamed {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::already_exists(format!("Experiment '{new_name}' already exists")));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks the experiment and all its active runs deleted.
    pub async fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        self.set_experiment_stage(experiment_id, ACTIVE, DELETED).await
    }

    /// Brings a deleted experiment back, with all its deleted runs.
    pub async fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        self.set_experiment_stage(experiment_id, DELETED, ACTIVE).await
    }

    async fn set_experiment_stage(&self, experiment_id: &str, from: &str, to: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let stage = experiment_stage(&mut tx, id).await?;
        if stage != from {
            return Err(Error::not_found(format!("No {from} experiment with id={id} exists: it is {stage}")));
        }
        query("UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(to)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted_time = if to == DELETED { Some(now) } else { None };
        query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE experiment_id = $3 AND lifecycle_stage = $4",
        )
        .bind(to)
        .bind(deleted_time)
        .bind(id)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        validate_experiment_tag(tag)?;
        let mut tx = self.store.begin_write().await?;
        require_active_experiment(&mut tx, id).await?;
        upsert_experiment_tag(&mut tx, id, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        if key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'key'"));
        }
        let mut tx = self.store.begin_write().await?;
        require_active_experiment(&mut tx, id).await?;
        let done = query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
            .bind(id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("No tag with name '{key}' in experiment {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Schemes of stores the clients write to directly; Kiln records such a location but never
/// reads or writes through it.
const CLIENT_SIDE_SCHEMES: &[&str] = &["s3", "s3a", "gs", "wasbs", "abfss", "az", "hdfs", "dbfs"];

/// An experiment's artifact location is this server's store (`mlflow-artifacts:/<path>`, the
/// path checked like any artifact path) or a cloud store the clients write to themselves.
/// Local paths are refused: a folder on the server's disk (or one named with `..`) is exactly
/// what a hostile client would point an experiment at.
fn validate_artifact_location(location: &str) -> Result<()> {
    let refuse = |why: &str| Error::invalid(format!("Invalid artifact_location '{location}': {why}"));
    if let Some(path) = kiln_artifacts::ArtifactPath::from_proxy_uri(location) {
        return path.map(drop).map_err(|e| refuse(&e.to_string()));
    }
    let Some((scheme, rest)) = location.split_once("://") else {
        return Err(refuse(
            "use mlflow-artifacts:/<path> (this server's artifact store) or a cloud store URI such as s3://bucket/path; \
             local paths are not accepted",
        ));
    };
    if !CLIENT_SIDE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(refuse(&format!("the scheme '{scheme}' is not accepted: use mlflow-artifacts:/ or one of {}", CLIENT_SIDE_SCHEMES.join(", "))));
    }
    let (_, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() {
        kiln_artifacts::ArtifactPath::parse(path.trim_end_matches('/')).map_err(|e| refuse(&e.to_string()))?;
    }
    Ok(())
}

fn validate_experiment_tag(tag: &Tag) -> Result<()> {
    validate_key("tag", &tag.key)?;
    let len = tag.value.chars().count();
    if len > MAX_EXPERIMENT_TAG_VALUE_LENGTH {
        return Err(Error::invalid(format!(
            "Experiment tag '{}' has a value of {len} characters; the limit is {MAX_EXPERIMENT_TAG_VALUE_LENGTH}",
            tag.key
        )));
    }
    Ok(())
}

async fn upsert_experiment_tag(tx: &mut Transaction, id: i64, tag: &Tag) -> Result<()> {
    query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The lifecycle stage and artifact location of an experiment, or NotFound.
async fn experiment_state(tx: &mut Transaction, id: i64) -> Result<(String, String)> {
    let row = query("SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok((row.try_get(0)?, row.try_get(1)?)),
        None => Err(Error::not_found(format!("No Experiment with id={id} exists"))),
    }
}

/// The lifecycle stage of an experiment, or NotFound.
pub(crate) async fn experiment_stage(tx: &mut Transaction, id: i64) -> Result<String> {
    Ok(experiment_state(tx, id).await?.0)
}

/// Refuses writes into a deleted experiment; answers the experiment's artifact location.
pub(crate) async fn require_active_experiment(tx: &mut Transaction, id: i64) -> Result<String> {
    let (stage, location) = experiment_state(tx, id).await?;
    if stage != ACTIVE {
        return Err(Error::invalid(format!(
            "The experiment {id} must be in the 'active' state; it is {stage}. Restore it first"
        )));
    }
    Ok(location)
}
