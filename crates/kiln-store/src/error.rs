use kiln_core::ErrorKind;
use rusqlite::ErrorCode;

/// Failures of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid backend store URI '{uri}': {why}")]
    InvalidUri { uri: String, why: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("the database is unavailable: {0}")]
    Unavailable(&'static str),
    #[error("the query returned no row")]
    NoRow,
    #[error("column {index} holds {found}, not {expected}")]
    Decode { index: usize, expected: &'static str, found: &'static str },
    #[error("column '{column}' has the type {type_name}, which kiln does not read")]
    UnsupportedColumn { column: String, type_name: String },
    #[error("schema migration {version} ({description}) failed: {source}")]
    Migration { version: i64, description: &'static str, source: Box<Error> },
    #[error(
        "the database schema is at version {found}, newer than this kiln knows ({known}); upgrade kiln"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the store holds data this kiln cannot read: {0}")]
    Corrupt(String),
    #[error("cannot create the folder for the database file {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidUri { .. } => ErrorKind::InvalidArgument,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Postgres(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => {
                ErrorKind::Unavailable
            }
            Error::Sqlite(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)) => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the failure is a unique-constraint violation (an insert of an existing key).
    pub fn is_unique_violation(&self) -> bool {
        is_unique_violation(self)
    }
}

/// Whether a store error is a unique-constraint violation (an insert of an existing key).
pub fn is_unique_violation(e: &Error) -> bool {
    match e {
        Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        Error::Postgres(sqlx::Error::Database(db)) => db.is_unique_violation(),
        _ => false,
    }
}
