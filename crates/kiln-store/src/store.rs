//! Connection pools over SQLite or PostgreSQL.

use std::path::Path;
use std::time::Duration;

use sqlx::Executor;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::uri::{DatabaseUri, redact};
use crate::{Error, Transaction, migrate};

/// Which SQL dialect the store speaks; queries that differ between the two branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections for reads (and, on PostgreSQL, writes).
    pub max_connections: u32,
    /// How long a request waits for a free connection before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// Run pending schema migrations when connecting (`kiln server` does; `kiln db upgrade`
    /// does it explicitly).
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 8, acquire_timeout: Duration::from_secs(30), migrate: true }
    }
}

/// The metadata store. Cheap to clone.
///
/// On SQLite, writes go through a single connection (SQLite admits one writer at a time; one
/// connection turns lock contention into an orderly queue) and reads through a pool that WAL mode
/// lets run beside the writer. On PostgreSQL both share one pool.
#[derive(Debug, Clone)]
pub struct MetaStore {
    read: AnyPool,
    write: AnyPool,
    dialect: Dialect,
    description: String,
}

/// Per-connection SQLite settings. WAL with synchronous=NORMAL keeps every committed transaction
/// across a crash or kill of the process; `case_sensitive_like` gives LIKE the case-sensitive
/// meaning it has in MLflow (ILIKE is compiled to lower() on both sides).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
     PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; PRAGMA temp_store = MEMORY;";

impl MetaStore {
    pub async fn connect(uri: &str, options: StoreOptions) -> Result<MetaStore, Error> {
        sqlx::any::install_default_drivers();
        let parsed = DatabaseUri::parse(uri)?;
        let store = match parsed {
            DatabaseUri::SqliteFile(path) => {
                let path = std::path::absolute(&path)
                    .map_err(|source| Error::CreateDir { path: path.display().to_string(), source })?;
                create_parent(&path)?;
                let url = sqlite_url(&path);
                let write = sqlite_pool(1, &options).connect(&url).await?;
                let read = sqlite_pool(options.max_connections.max(1), &options).connect(&url).await?;
                MetaStore { read, write, dialect: Dialect::Sqlite, description: format!("SQLite at {}", path.display()) }
            }
            DatabaseUri::SqliteMemory => {
                // An in-memory database lives as long as its one connection.
                let pool = sqlite_pool(1, &options)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect("sqlite::memory:")
                    .await?;
                MetaStore { read: pool.clone(), write: pool, dialect: Dialect::Sqlite, description: "SQLite in memory".into() }
            }
            DatabaseUri::Postgres(url) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .acquire_timeout(options.acquire_timeout)
                    .connect(&url)
                    .await?;
                MetaStore { read: pool.clone(), write: pool, dialect: Dialect::Postgres, description: format!("PostgreSQL at {}", redact(uri)) }
            }
        };
        if options.migrate {
            store.migrate().await?;
        } else {
            migrate::check_not_newer(&store).await?;
        }
        Ok(store)
    }

    /// Brings the schema up to the newest version this binary knows; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, Error> {
        migrate::run(self).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A human description of the backend, for logs (passwords hidden).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    pub(crate) fn write_pool(&self) -> &AnyPool {
        &self.write
    }

    /// Starts a write transaction; it commits only when the caller commits it.
    pub async fn begin_write(&self) -> Result<Transaction<'static>, Error> {
        Ok(self.write.begin().await?)
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn sqlite_pool(max: u32, options: &StoreOptions) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
}

fn create_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(|source| Error::CreateDir { path: path.display().to_string(), source }),
        _ => Ok(()),
    }
}

/// The driver's URL for a file path, percent-encoding anything that is not plainly safe.
fn sqlite_url(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    url
}
