//! Registered models: create, read, rename, describe, delete, and their tags.

use std::collections::HashMap;

use kiln_core::time::now_millis;
use kiln_store::query::{IN_CHUNK, Sql};
use kiln_store::{Bind, Row, Transaction, is_unique_violation, query};
use kiln_tracking::Tag;

use crate::entities::*;
use crate::error::{Error, Result};
use crate::Registry;

pub(crate) const MODEL_COLUMNS: &str = "rm.model_pk, rm.name, rm.creation_time, rm.last_updated_time, rm.description";

pub(crate) fn model_row(row: &Row) -> Result<(i64, RegisteredModel)> {
    Ok((
        row.try_get(0)?,
        RegisteredModel {
            name: row.try_get(1)?,
            creation_timestamp: row.try_get(2)?,
            last_updated_timestamp: row.try_get(3)?,
            description: row.try_get(4)?,
            latest_versions: Vec::new(),
            tags: Vec::new(),
            aliases: Vec::new(),
        },
    ))
}

pub(crate) fn validate_name(name: &str, field: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid(format!("Missing value for required parameter '{field}'")));
    }
    if name.contains(['/', ':']) {
        return Err(Error::invalid(format!("Invalid model name '{name}'. Names cannot contain '/' or ':'.")));
    }
    if name == "." || name.starts_with("..") {
        return Err(Error::invalid(format!("Invalid model name '{name}': a name cannot be '.' or start with '..'")));
    }
    Ok(())
}

pub(crate) fn validate_tag(tag: &Tag) -> Result<()> {
    if tag.key.is_empty() {
        return Err(Error::invalid("Missing value for required parameter 'key'"));
    }
    kiln_tracking::validate_key("tag", &tag.key)?;
    if tag.key.chars().count() > MAX_TAG_KEY_LENGTH {
        return Err(Error::invalid(format!("Tag key '{}' is longer than {MAX_TAG_KEY_LENGTH} characters", tag.key)));
    }
    let len = tag.value.chars().count();
    if len > MAX_TAG_VALUE_LENGTH {
        return Err(Error::invalid(format!(
            "Tag '{}' has a value of {len} characters; the limit is {MAX_TAG_VALUE_LENGTH}",
            tag.key
        )));
    }
    Ok(())
}

pub(crate) fn model_not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

/// The internal key of the model called `name`, inside a write.
pub(crate) async fn model_pk(tx: &mut Transaction, name: &str) -> Result<i64> {
    validate_name(name, "name")?;
    let row = query("SELECT model_pk FROM registered_models WHERE name = $1").bind(name).fetch_optional(&mut **tx).await?;
    Ok(row.ok_or_else(|| model_not_found(name))?.try_get(0)?)
}

pub(crate) async fn touch_model(tx: &mut Transaction, pk: i64, now: i64) -> Result<()> {
    query("UPDATE registered_models SET last_updated_time = $1 WHERE model_pk = $2")
        .bind(now)
        .bind(pk)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Keeps the last value of a repeated key.
pub(crate) fn distinct_tags(tags: &[Tag]) -> Result<Vec<Tag>> {
    let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
    for t in tags {
        validate_tag(t)?;
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => out.push(t.clone()),
        }
    }
    Ok(out)
}

impl Registry {
    pub async fn create_registered_model(&self, name: &str, tags: &[Tag], description: Option<&str>) -> Result<RegisteredModel> {
        validate_name(name, "name")?;
        let tags = distinct_tags(tags)?;
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let inserted = query(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description, next_version) \
             VALUES ($1, $2, $2, $3, 1) RETURNING model_pk",
        )
        .bind(name)
        .bind(now)
        .bind(description)
        .fetch_one(&mut *tx)
        .await;
        let pk: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::already_exists(format!("Registered Model (name={name}) already exists.")));
            }
            Err(e) => return Err(e.into()),
        };
        for tag in &tags {
            upsert_model_tag(&mut tx, pk, tag).await?;
        }
        tx.commit().await?;
        self.get_registered_model(name).await
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        validate_name(name, "name")?;
        let sql = format!("SELECT {MODEL_COLUMNS} FROM registered_models rm WHERE rm.name = $1");
        let row = query(sql).bind(name).fetch_optional(self.store.reader()).await?;
        let row = row.ok_or_else(|| model_not_found(name))?;
        let mut models = vec![model_row(&row)?];
        self.complete_models(&mut models).await?;
        Ok(models.remove(0).1)
    }

    /// Renames a model; its versions, tags and aliases follow it.
    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        validate_name(new_name, "new_name")?;
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, name).await?;
        let renamed = query("UPDATE registered_models SET name = $1, last_updated_time = $2 WHERE model_pk = $3")
            .bind(new_name)
            .bind(now_millis())
            .bind(pk)
            .execute(&mut *tx)
            .await;
        match renamed {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::already_exists(format!("Registered Model (name={new_name}) already exists.")));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        self.get_registered_model(new_name).await
    }

    pub async fn update_registered_model(&self, name: &str, description: Option<&str>) -> Result<RegisteredModel> {
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, name).await?;
        query("UPDATE registered_models SET description = $1, last_updated_time = $2 WHERE model_pk = $3")
            .bind(description)
            .bind(now_millis())
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_registered_model(name).await
    }

    /// Deletes a model with all its versions, tags and aliases.
    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, name).await?;
        for table in ["registered_model_aliases", "model_version_tags", "model_versions", "registered_model_tags", "registered_models"] {
            query(format!("DELETE FROM {table} WHERE model_pk = $1")).bind(pk).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        validate_tag(tag)?;
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, name).await?;
        upsert_model_tag(&mut tx, pk, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a tag; a tag that is not there is not an error, as in MLflow.
    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'key'"));
        }
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, name).await?;
        query("DELETE FROM registered_model_tags WHERE model_pk = $1 AND key = $2")
            .bind(pk)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest version of the model in each of `stages` (all stages when empty).
    pub async fn get_latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        let wanted = stages.iter().map(|s| Stage::parse(s)).collect::<Result<Vec<_>>>()?;
        let model = self.get_registered_model(name).await?;
        let mut versions: Vec<ModelVersion> = model
            .latest_versions
            .into_iter()
            .filter(|v| wanted.is_empty() || wanted.iter().any(|s| s.as_str() == v.current_stage))
            .collect();
        for v in &mut versions {
            v.aliases = model.aliases.iter().filter(|a| a.version == v.version).map(|a| a.alias.clone()).collect();
        }
        Ok(versions)
    }

    /// Fills in each model's tags, aliases and newest version per stage.
    pub(crate) async fn complete_models(&self, models: &mut [(i64, RegisteredModel)]) -> Result<()> {
        let index: HashMap<i64, usize> = models.iter().enumerate().map(|(i, (pk, _))| (*pk, i)).collect();
        let pks: Vec<i64> = models.iter().map(|(pk, _)| *pk).collect();
        let dialect = self.store.dialect();
        for chunk in pks.chunks(IN_CHUNK) {
            let keys = || chunk.iter().map(|&pk| Bind::Int(pk));
            let mut q = Sql::new(dialect, "SELECT model_pk, key, value FROM registered_model_tags WHERE model_pk IN ");
            q.bind_list(keys()).push(" ORDER BY model_pk, key");
            for row in q.build().fetch_all(self.store.reader()).await? {
                let i = index[&row.try_get::<i64, _>(0)?];
                models[i].1.tags.push(Tag { key: row.try_get(1)?, value: row.try_get(2)? });
            }
            let mut q = Sql::new(dialect, "SELECT model_pk, alias, version FROM registered_model_aliases WHERE model_pk IN ");
            q.bind_list(keys()).push(" ORDER BY model_pk, alias");
            for row in q.build().fetch_all(self.store.reader()).await? {
                let i = index[&row.try_get::<i64, _>(0)?];
                let version: i64 = row.try_get(2)?;
                models[i].1.aliases.push(Alias { alias: row.try_get(1)?, version: version.to_string() });
            }
            let mut q = Sql::new(
                dialect,
                &format!(
                    "SELECT {} FROM model_versions mv JOIN registered_models rm ON rm.model_pk = mv.model_pk \
                     WHERE mv.model_pk IN ",
                    crate::versions::VERSION_COLUMNS
                ),
            );
            q.bind_list(keys()).push(
                " AND mv.version = (SELECT MAX(x.version) FROM model_versions x \
                 WHERE x.model_pk = mv.model_pk AND x.current_stage = mv.current_stage) ORDER BY mv.model_pk, mv.version",
            );
            let rows = q.build().fetch_all(self.store.reader()).await?;
            let mut versions = rows.iter().map(crate::versions::version_row).collect::<Result<Vec<_>>>()?;
            self.attach_version_tags(&mut versions).await?;
            for (pk, v) in versions {
                models[index[&pk]].1.latest_versions.push(v);
            }
        }
        Ok(())
    }
}

async fn upsert_model_tag(tx: &mut Transaction, pk: i64, tag: &Tag) -> Result<()> {
    query(
        "INSERT INTO registered_model_tags (model_pk, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value",
    )
    .bind(pk)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
