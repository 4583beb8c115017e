//! One migration sequence for both dialects: each version has its SQLite and PostgreSQL text,
//! applied in order, each in its own transaction, and recorded in `kiln_schema`.

use tracing::info;

use crate::{Dialect, Error, MetaStore, Transaction, query};

pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "tracking",
        sqlite: include_str!("../migrations/0001_tracking.sqlite.sql"),
        postgres: include_str!("../migrations/0001_tracking.postgres.sql"),
    },
    Migration {
        version: 2,
        description: "logged models and the model registry",
        sqlite: include_str!("../migrations/0002_models.sqlite.sql"),
        postgres: include_str!("../migrations/0002_models.postgres.sql"),
    },
    Migration {
        version: 3,
        description: "each metric's first point in step order beside its latest",
        sqlite: include_str!("../migrations/0003_first_points.sqlite.sql"),
        postgres: include_str!("../migrations/0003_first_points.postgres.sql"),
    },
];

/// Serialises migrations across replicas sharing one PostgreSQL database.
const PG_MIGRATION_LOCK: i64 = 0x6b696c6e_0001;

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS kiln_schema (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)";

fn latest_known() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies each pending migration in its own write transaction, which first takes the migration
/// lock (on PostgreSQL; SQLite's write transaction is exclusive already) and reads the version
/// again, so that replicas starting together apply each migration once.
pub(crate) async fn run(store: &MetaStore, until: i64) -> Result<Vec<i64>, Error> {
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version <= until) {
        let fail = |source| Error::Migration { version: m.version, description: m.description, source: Box::new(source) };
        let mut tx = store.begin_write().await?;
        if store.dialect() == Dialect::Postgres {
            query("SELECT pg_advisory_xact_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *tx).await?;
        }
        let current = current_version(&mut tx).await?;
        if current > latest_known() {
            return Err(Error::SchemaTooNew { found: current, known: latest_known() });
        }
        if current >= m.version {
            continue;
        }
        tx.execute_script(m.sql(store.dialect())).await.map_err(fail)?;
        query("INSERT INTO kiln_schema (version, description, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.description)
            .bind(kiln_core::time::now_millis())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        info!(version = m.version, description = m.description, "applied schema migration");
        applied.push(m.version);
    }
    Ok(applied)
}

async fn current_version(tx: &mut Transaction) -> Result<i64, Error> {
    tx.execute_script(CREATE_SCHEMA_TABLE).await?;
    query("SELECT COALESCE(MAX(version), 0) FROM kiln_schema").fetch_one(&mut **tx).await?.try_get(0)
}

/// Refuses to run against a schema newer than this binary (a downgrade would misread it).
pub(crate) async fn check_not_newer(store: &MetaStore) -> Result<(), Error> {
    let mut tx = store.begin_write().await?;
    let current = current_version(&mut tx).await?;
    tx.commit().await?;
    if current > latest_known() {
        return Err(Error::SchemaTooNew { found: current, known: latest_known() });
    }
    Ok(())
}
