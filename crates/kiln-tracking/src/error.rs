use kiln_core::ErrorKind;

/// Failures of tracking operations: a caller's mistake (with a message that says what to fix) or
/// the store's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] kiln_core::Error),
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Domain(e) => e.kind(),
            Error::Store(e) => e.kind(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Domain(kiln_core::Error::InvalidArgument(message.into()))
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Error::Domain(kiln_core::Error::NotFound(message.into()))
    }

    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Error::Domain(kiln_core::Error::AlreadyExists(message.into()))
    }

    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Error::Domain(kiln_core::Error::InvalidState(message.into()))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
