use kiln_core::ErrorKind;

/// Failures of registry operations: a caller's mistake (with a message that says what to fix),
/// or a failure of the store or of the tracking service underneath.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] kiln_core::Error),
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error(transparent)]
    Tracking(#[from] kiln_tracking::Error),
    #[error(transparent)]
    Artifacts(#[from] kiln_artifacts::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Domain(e) => e.kind(),
            Error::Store(e) => e.kind(),
            Error::Tracking(e) => e.kind(),
            Error::Artifacts(e) => e.kind(),
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
