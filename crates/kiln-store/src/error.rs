use kiln_core::ErrorKind;

/// Failures of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid backend store URI '{uri}': {why}")]
    InvalidUri { uri: String, why: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("schema migration {version} ({description}) failed: {source}")]
    Migration { version: i64, description: &'static str, source: sqlx::Error },
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
            Error::Database(e) if is_unavailable(e) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the failure is a unique-constraint violation (an insert of an existing key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Database(e) if is_unique_violation(e))
    }
}

/// Whether a database error is a unique-constraint violation (an insert of an existing key).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
}
