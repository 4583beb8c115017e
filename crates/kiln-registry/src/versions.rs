//! Model versions (numbered per model, never reused), their stages, tags and the model's aliases.

use std::collections::HashMap;

use kiln_core::time::now_millis;
use kiln_store::query::{IN_CHUNK, Sql};
use kiln_store::{Bind, Row, Transaction, query};
use kiln_tracking::Tag;

use crate::entities::*;
use crate::error::{Error, Result};
use crate::format::ModelFormat;
use crate::models::{distinct_tags, model_pk, touch_model, validate_name, validate_tag};
use crate::Registry;

pub(crate) const VERSION_COLUMNS: &str = "mv.model_pk, rm.name, mv.version, mv.creation_time, mv.last_updated_time, \
     mv.description, mv.user_id, mv.current_stage, mv.source, mv.storage_location, mv.run_id, mv.run_link, mv.status, \
     mv.status_message, mv.model_id";

/// The tag on a logged model that lists the registered versions made from it.
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

pub(crate) fn version_row(row: &Row) -> Result<(i64, ModelVersion)> {
    let version: i64 = row.try_get(2)?;
    Ok((
        row.try_get(0)?,
        ModelVersion {
            name: row.try_get(1)?,
            version: version.to_string(),
            creation_timestamp: row.try_get(3)?,
            last_updated_timestamp: row.try_get(4)?,
            description: row.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
            user_id: row.try_get(6)?,
            current_stage: row.try_get(7)?,
            source: row.try_get(8)?,
            storage_location: row.try_get(9)?,
            run_id: row.try_get(10)?,
            run_link: row.try_get::<Option<String>, _>(11)?.unwrap_or_default(),
            status: row.try_get(12)?,
            status_message: row.try_get(13)?,
            model_id: row.try_get(14)?,
            tags: Vec::new(),
            aliases: Vec::new(),
        },
    ))
}

/// A version number from the protocol's text.
pub(crate) fn parse_version(text: &str) -> Result<i64> {
    if text.is_empty() {
        return Err(Error::invalid("Missing value for required parameter 'version'"));
    }
    text.trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid(format!("Parameter 'version' must be an integer, got '{text}'.")))
}

fn version_not_found(name: &str, version: impl std::fmt::Display) -> Error {
    Error::not_found(format!("Model Version (name={name}, version={version}) not found"))
}

fn validate_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::invalid("Registered model alias name cannot be empty."));
    }
    if !alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    if alias.chars().count() > MAX_ALIAS_LENGTH {
        return Err(Error::invalid(format!("Alias '{alias}' is longer than {MAX_ALIAS_LENGTH} characters")));
    }
    if alias.eq_ignore_ascii_case("latest") {
        return Err(Error::invalid("'latest' alias name (case insensitive) is reserved."));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V')) && chars.clone().next().is_some() && chars.all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(format!("Version alias name '{alias}' is reserved.")));
    }
    Ok(())
}

/// What a new version is made from.
#[derive(Debug, Clone, Default)]
pub struct CreateModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub tags: Vec<Tag>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
}

/// The version's key and model key, inside a write; it must exist.
async fn version_key(tx: &mut Transaction, name: &str, version: &str) -> Result<(i64, i64)> {
    let pk = model_pk(tx, name).await?;
    let number = parse_version(version)?;
    let found = query("SELECT 1 FROM model_versions WHERE model_pk = $1 AND version = $2")
        .bind(pk)
        .bind(number)
        .fetch_optional(&mut **tx)
        .await?;
    if found.is_none() {
        return Err(version_not_found(name, number));
    }
    Ok((pk, number))
}

impl Registry {
    pub async fn create_model_version(&self, req: CreateModelVersion) -> Result<ModelVersion> {
        validate_name(&req.name, "name")?;
        if req.source.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'source'"));
        }
        let tags = distinct_tags(&req.tags)?;
        let resolved = self.resolve_source(&req.source, req.run_id.as_deref(), req.model_id.as_deref()).await?;
        let format = self.read_format(&resolved.storage_location).await;
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, &req.name).await?;
        let number: i64 = query(
            "UPDATE registered_models SET next_version = next_version + 1, last_updated_time = $1 \
             WHERE model_pk = $2 RETURNING next_version - 1",
        )
        .bind(now)
        .bind(pk)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        query(
            "INSERT INTO model_versions (model_pk, version, creation_time, last_updated_time, description, current_stage, \
             source, storage_location, run_id, run_link, status, model_id, flavors, signature) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, 'READY', $10, $11, $12)",
        )
        .bind(pk)
        .bind(number)
        .bind(now)
        .bind(req.description.as_deref())
        .bind(Stage::None.as_str())
        .bind(&req.source)
        .bind(&resolved.storage_location)
        .bind(resolved.run_id.as_deref())
        .bind(req.run_link.as_deref())
        .bind(resolved.model_id.as_deref())
        .bind(format.as_ref().map(ModelFormat::flavors_json))
        .bind(format.as_ref().and_then(ModelFormat::signature_json))
        .execute(&mut *tx)
        .await?;
        for tag in &tags {
            upsert_version_tag(&mut tx, pk, number, tag).await?;
        }
        tx.commit().await?;
        if let Some(model_id) = &resolved.model_id {
            self.record_version_on_logged_model(model_id, &req.name, number).await?;
        }
        self.get_model_version(&req.name, &number.to_string()).await
    }

    /// Adds `{name, version}` to the logged model's list of versions made from it.
    async fn record_version_on_logged_model(&self, model_id: &str, name: &str, version: i64) -> Result<()> {
        let model = self.tracking.get_logged_model(model_id).await?;
        let mut list: Vec<serde_json::Value> = model
            .info
            .tags
            .iter()
            .find(|t| t.key == MODEL_VERSIONS_TAG)
            .and_then(|t| serde_json::from_str(&t.value).ok())
            .unwrap_or_default();
        list.push(serde_json::json!({ "name": name, "version": version }));
        let value = serde_json::to_string(&list).unwrap_or_default();
        self.tracking.set_logged_model_tags(model_id, vec![Tag { key: MODEL_VERSIONS_TAG.into(), value }]).await?;
        Ok(())
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        validate_name(name, "name")?;
        let number = parse_version(version)?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv JOIN registered_models rm ON rm.model_pk = mv.model_pk \
             WHERE rm.name = $1 AND mv.version = $2"
        );
        let row = query(sql).bind(name).bind(number).fetch_optional(self.store.reader()).await?;
        let row = row.ok_or_else(|| version_not_found(name, number))?;
        let mut versions = vec![version_row(&row)?];
        self.attach_version_tags(&mut versions).await?;
        let (pk, mut v) = versions.remove(0);
        let rows = query("SELECT alias FROM registered_model_aliases WHERE model_pk = $1 AND version = $2 ORDER BY alias")
            .bind(pk)
            .bind(number)
            .fetch_all(self.store.reader())
            .await?;
        v.aliases = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        Ok(v)
    }

    pub async fn update_model_version(&self, name: &str, version: &str, description: Option<&str>) -> Result<ModelVersion> {
        let mut tx = self.store.begin_write().await?;
        let (pk, number) = version_key(&mut tx, name, version).await?;
        query("UPDATE model_versions SET description = $1, last_updated_time = $2 WHERE model_pk = $3 AND version = $4")
            .bind(description)
            .bind(now_millis())
            .bind(pk)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_model_version(name, version).await
    }

    /// Moves a version to `stage`; with `archive_existing`, the model's other versions in that
    /// stage move to Archived.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        let stage = Stage::parse(stage)?;
        if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
            return Err(Error::invalid(format!(
                "Model version transition cannot archive existing model versions because '{}' is not an Active stage. \
                 Valid stages are Staging and Production",
                stage.as_str()
            )));
        }
        let now = now_millis();
        let mut tx = self.store.begin_write().await?;
        let (pk, number) = version_key(&mut tx, name, version).await?;
        if archive_existing {
            query(
                "UPDATE model_versions SET current_stage = $1, last_updated_time = $2 \
                 WHERE model_pk = $3 AND version <> $4 AND current_stage = $5",
            )
            .bind(Stage::Archived.as_str())
            .bind(now)
            .bind(pk)
            .bind(number)
            .bind(stage.as_str())
            .execute(&mut *tx)
            .await?;
        }
        query("UPDATE model_versions SET current_stage = $1, last_updated_time = $2 WHERE model_pk = $3 AND version = $4")
            .bind(stage.as_str())
            .bind(now)
            .bind(pk)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        touch_model(&mut tx, pk, now).await?;
        tx.commit().await?;
        self.get_model_version(name, version).await
    }

    /// Deletes a version with its tags and the aliases that pointed at it. Its number is not
    /// given out again.
    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let (pk, number) = version_key(&mut tx, name, version).await?;
        for table in ["registered_model_aliases", "model_version_tags", "model_versions"] {
            query(format!("DELETE FROM {table} WHERE model_pk = $1 AND version = $2"))
                .bind(pk)
                .bind(number)
                .execute(&mut *tx)
                .await?;
        }
        touch_model(&mut tx, pk, now_millis()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where the version's files can be downloaded from.
    pub async fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String> {
        Ok(self.get_model_version(name, version).await?.storage_location)
    }

    pub async fn set_model_version_tag(&self, name: &str, version: &str, tag: &Tag) -> Result<()> {
        validate_tag(tag)?;
        let mut tx = self.store.begin_write().await?;
        let (pk, number) = version_key(&mut tx, name, version).await?;
        upsert_version_tag(&mut tx, pk, number, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: &str, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'key'"));
        }
        let mut tx = self.store.begin_write().await?;
        let (pk, number) = version_key(&mut tx, name, version).await?;
        query("DELETE FROM model_version_tags WHERE model_pk = $1 AND version = $2 AND key = $3")
            .bind(pk)
            .bind(number)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Points `alias` at a version, moving it if it pointed elsewhere.
    pub async fn set_registered_model_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        validate_alias(alias)?;
        let mut tx = self.store.begin_write().await?;
        let (pk, number) = version_key(&mut tx, name, version).await?;
        query(
            "INSERT INTO registered_model_aliases (model_pk, alias, version) VALUES ($1, $2, $3) \
             ON CONFLICT (model_pk, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(pk)
        .bind(alias)
        .bind(number)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        if alias.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'alias'"));
        }
        let mut tx = self.store.begin_write().await?;
        let pk = model_pk(&mut tx, name).await?;
        query("DELETE FROM registered_model_aliases WHERE model_pk = $1 AND alias = $2")
            .bind(pk)
            .bind(alias)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        validate_name(name, "name")?;
        if alias.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'alias'"));
        }
        let row = query(
            "SELECT a.version FROM registered_model_aliases a JOIN registered_models rm ON rm.model_pk = a.model_pk \
             WHERE rm.name = $1 AND a.alias = $2",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(self.store.reader())
        .await?;
        let Some(row) = row else {
            // MLflow answers an unknown alias of a known model as a bad parameter.
            self.get_registered_model(name).await?;
            return Err(Error::invalid(format!("Registered model alias {alias} not found.")));
        };
        let version: i64 = row.try_get(0)?;
        self.get_model_version(name, &version.to_string()).await
    }

    /// What Kiln read from the version's MLmodel file: its flavors, whether it carries an ONNX
    /// model, and its signature. None when the version has no MLmodel Kiln could read.
    pub async fn model_version_format(&self, name: &str, version: &str) -> Result<Option<ModelFormat>> {
        validate_name(name, "name")?;
        let number = parse_version(version)?;
        let row = query(
            "SELECT mv.flavors, mv.signature FROM model_versions mv JOIN registered_models rm ON rm.model_pk = mv.model_pk \
             WHERE rm.name = $1 AND mv.version = $2",
        )
        .bind(name)
        .bind(number)
        .fetch_optional(self.store.reader())
        .await?;
        let row = row.ok_or_else(|| version_not_found(name, number))?;
        let flavors: Option<String> = row.try_get(0)?;
        let signature: Option<String> = row.try_get(1)?;
        Ok(flavors.map(|f| ModelFormat::from_stored(&f, signature.as_deref())))
    }

    /// Fills in each version's tags.
    pub(crate) async fn attach_version_tags(&self, versions: &mut [(i64, ModelVersion)]) -> Result<()> {
        let mut index: HashMap<(i64, String), usize> = HashMap::new();
        for (i, (pk, v)) in versions.iter().enumerate() {
            index.insert((*pk, v.version.clone()), i);
        }
        let mut pks: Vec<i64> = versions.iter().map(|(pk, _)| *pk).collect();
        pks.sort_unstable();
        pks.dedup();
        for chunk in pks.chunks(IN_CHUNK) {
            let mut q = Sql::new(self.store.dialect(), "SELECT model_pk, version, key, value FROM model_version_tags WHERE model_pk IN ");
            q.bind_list(chunk.iter().map(|&pk| Bind::Int(pk))).push(" ORDER BY model_pk, version, key");
            for row in q.build().fetch_all(self.store.reader()).await? {
                let version: i64 = row.try_get(1)?;
                if let Some(&i) = index.get(&(row.try_get(0)?, version.to_string())) {
                    versions[i].1.tags.push(Tag { key: row.try_get(2)?, value: row.try_get(3)? });
                }
            }
        }
        Ok(())
    }
}

async fn upsert_version_tag(tx: &mut Transaction, pk: i64, version: i64, tag: &Tag) -> Result<()> {
    query(
        "INSERT INTO model_version_tags (model_pk, version, key, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (model_pk, version, key) DO UPDATE SET value = excluded.value",
    )
    .bind(pk)
    .bind(version)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        for ok in ["champion", "prod-2", "a_b", "v", "vx1", "Ünïcode"] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in ["", "latest", "LATEST", "v1", "V22", "a b", "a/b", "a.b", &"x".repeat(256)] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("3").unwrap(), 3);
        assert!(parse_version("").is_err());
        assert!(parse_version("three").is_err());
    }
}
