use kiln_core::ErrorKind;

/// Failures of serving: a request the model cannot take, a model that cannot be found or loaded,
/// or ONNX Runtime's own failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The model exists but is not ready to answer (still loading, or its queue is full).
    #[error("{0}")]
    Unavailable(String),
    #[error("the request took longer than {0} ms")]
    Timeout(u64),
    /// A model that cannot be served as it is (a file missing, an unsupported type).
    #[error("{0}")]
    Model(String),
    #[error("ONNX Runtime: {0}")]
    Runtime(#[from] ort::Error),
    #[error(transparent)]
    Registry(#[from] kiln_registry::Error),
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unavailable(_) | Error::Timeout(_) => ErrorKind::Unavailable,
            Error::Registry(e) => e.kind(),
            Error::Model(_) | Error::Runtime(_) | Error::Io(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
