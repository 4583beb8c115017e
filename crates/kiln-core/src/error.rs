//! The kinds of failure every Kiln crate reports; the API edge maps each kind to a protocol's
//! error code and HTTP status in one table.

/// What went wrong, independent of any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid: a bad value, a malformed filter, a missing field.
    InvalidArgument,
    /// The named object does not exist.
    NotFound,
    /// An object with that identity exists already.
    AlreadyExists,
    /// The object exists but is in a state that forbids the operation (e.g. a deleted run).
    InvalidState,
    /// A dependency (the database) is temporarily unable to answer.
    Unavailable,
    /// A fault on our side.
    Internal,
}

/// A domain error with a message a person can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidState(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::InvalidState(_) => ErrorKind::InvalidState,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }
}
