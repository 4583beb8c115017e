//! The metadata store over SQLite or PostgreSQL.

use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

use crate::db::SqliteTx;
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
    backend: Backend,
    dialect: Dialect,
    description: Arc<str>,
    acquire_timeout: Duration,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(Arc<Sqlite>),
    Postgres(PgPool),
}

#[derive(Debug)]
pub(crate) struct Sqlite {
    writer: Arc<Mutex<Connection>>,
    /// Reading connections; none for an in-memory database, whose one connection also reads.
    readers: Option<ReaderPool>,
    acquire_timeout: Duration,
}

#[derive(Debug)]
pub(crate) struct ReaderPool {
    idle: StdMutex<Vec<Connection>>,
    permits: Semaphore,
}

/// A connection lent for a read; it goes back to its pool when dropped.
pub(crate) enum ReadConn<'a> {
    Pooled { pool: &'a ReaderPool, conn: Option<Connection>, _permit: SemaphorePermit<'a> },
    Shared(tokio::sync::MutexGuard<'a, Connection>),
}

impl Deref for ReadConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Pooled { conn, .. } => conn.as_ref().expect("a lent connection is present until returned"),
            ReadConn::Shared(guard) => guard,
        }
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let ReadConn::Pooled { pool, conn, .. } = self
            && let Some(conn) = conn.take()
        {
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
    }
}

impl Sqlite {
    pub(crate) async fn reader(&self) -> Result<ReadConn<'_>, Error> {
        let wait = self.acquire_timeout;
        match &self.readers {
            Some(pool) => {
                let permit = tokio::time::timeout(wait, pool.permits.acquire())
                    .await
                    .map_err(|_| Error::Unavailable("no reading connection came free in time"))?
                    .map_err(|_| Error::Unavailable("the store is closed"))?;
                let conn = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                Ok(ReadConn::Pooled { pool, conn: Some(conn.expect("a permit always finds an idle connection")), _permit: permit })
            }
            None => Ok(ReadConn::Shared(
                tokio::time::timeout(wait, self.writer.lock())
                    .await
                    .map_err(|_| Error::Unavailable("the database connection did not come free in time"))?,
            )),
        }
    }

    async fn begin(&self) -> Result<SqliteTx, Error> {
        let guard = tokio::time::timeout(self.acquire_timeout, self.writer.clone().lock_owned())
            .await
            .map_err(|_| Error::Unavailable("the writing connection did not come free in time"))?;
        SqliteTx::begin(guard)
    }
}

/// Per-connection SQLite settings. WAL with synchronous=NORMAL keeps every committed transaction
/// across a crash or kill of the process; `case_sensitive_like` gives LIKE the case-sensitive
/// meaning it has in MLflow (ILIKE is compiled to lower() on both sides).
const SQLITE_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
     PRAGMA case_sensitive_like = ON; PRAGMA temp_store = MEMORY;";

/// Prepared statements kept per connection; searches build their text per filter, so keep many.
const STATEMENT_CACHE: usize = 256;

fn open_sqlite(path: Option<&Path>) -> Result<Connection, Error> {
    let conn = match path {
        Some(path) => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(Duration::from_secs(10))?;
    if path.is_some() {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    conn.execute_batch(SQLITE_PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl MetaStore {
    pub async fn connect(uri: &str, options: StoreOptions) -> Result<MetaStore, Error> {
        let parsed = DatabaseUri::parse(uri)?;
        let timeout = options.acquire_timeout;
        let store = match parsed {
            DatabaseUri::SqliteFile(path) => {
                let path = std::path::absolute(&path)
                    .map_err(|source| Error::CreateDir { path: path.display().to_string(), source })?;
                create_parent(&path)?;
                let writer = open_sqlite(Some(&path))?;
                let readers = (0..options.max_connections.max(1))
                    .map(|_| open_sqlite(Some(&path)))
                    .collect::<Result<Vec<_>, _>>()?;
                let readers = ReaderPool { permits: Semaphore::new(readers.len()), idle: StdMutex::new(readers) };
                let sqlite = Sqlite { writer: Arc::new(Mutex::new(writer)), readers: Some(readers), acquire_timeout: timeout };
                MetaStore::new(Backend::Sqlite(Arc::new(sqlite)), Dialect::Sqlite, format!("SQLite at {}", path.display()), timeout)
            }
            DatabaseUri::SqliteMemory => {
                let sqlite = Sqlite { writer: Arc::new(Mutex::new(open_sqlite(None)?)), readers: None, acquire_timeout: timeout };
                MetaStore::new(Backend::Sqlite(Arc::new(sqlite)), Dialect::Sqlite, "SQLite in memory".into(), timeout)
            }
            DatabaseUri::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .acquire_timeout(timeout)
                    .connect(&url)
                    .await?;
                MetaStore::new(Backend::Postgres(pool), Dialect::Postgres, format!("PostgreSQL at {}", redact(uri)), timeout)
            }
        };
        if options.migrate {
            store.migrate().await?;
        } else {
            migrate::check_not_newer(&store).await?;
        }
        Ok(store)
    }

    fn new(backend: Backend, dialect: Dialect, description: String, acquire_timeout: Duration) -> MetaStore {
        MetaStore { backend, dialect, description: description.into(), acquire_timeout }
    }

    /// Brings the schema up to the newest version this binary knows; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, Error> {
        migrate::run(self, i64::MAX).await
    }

    /// Applies the pending migrations up to `version` only (upgrade tests start from an earlier
    /// schema this way).
    pub async fn migrate_to(&self, version: i64) -> Result<Vec<i64>, Error> {
        migrate::run(self, version).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A human description of the backend, for logs (passwords hidden).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Where reads run: `query(..).fetch_all(store.reader())`.
    pub fn reader(&self) -> &MetaStore {
        self
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Starts a write transaction; it commits only when the caller commits it.
    pub async fn begin_write(&self) -> Result<Transaction, Error> {
        match &self.backend {
            Backend::Sqlite(sqlite) => Ok(Transaction::sqlite(sqlite.begin().await?)),
            Backend::Postgres(pool) => {
                let tx = tokio::time::timeout(self.acquire_timeout, pool.begin())
                    .await
                    .map_err(|_| Error::Unavailable("no database connection came free in time"))??;
                Ok(Transaction::postgres(tx))
            }
        }
    }

    pub async fn close(&self) {
        if let Backend::Postgres(pool) = &self.backend {
            pool.close().await;
        }
    }
}

fn create_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(|source| Error::CreateDir { path: path.display().to_string(), source }),
        _ => Ok(()),
    }
}
