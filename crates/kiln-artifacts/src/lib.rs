//! Kiln's artifact store: the files of runs and models. Every artifact path from a client goes
//! through [`ArtifactPath::parse`], the one place that decides what may be read or written.
//! Files are stored through the `object_store` crate: a local folder, S3, GCS or Azure.

mod local;
mod path;
mod store;
mod uploads;

pub use path::{ArtifactPath, PROXY_SCHEME};
pub use store::{ArtifactStore, FileInfo};
pub use uploads::{MAX_UPLOAD_PARTS, UploadPart};

use kiln_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidPath(String),
    #[error("no artifact at '{0}'")]
    NotFound(String),
    #[error("invalid artifact store location '{location}': {why}")]
    InvalidLocation { location: String, why: String },
    #[error("artifact store error: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact upload failed: {0}")]
    Upload(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPath(_) | Error::InvalidLocation { .. } => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Store(object_store::Error::NotFound { .. }) => ErrorKind::NotFound,
            Error::Store(_) | Error::Upload(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
