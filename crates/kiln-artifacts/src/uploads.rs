//! Multipart uploads: a large file sent as numbered parts (in parallel, each retried on its
//! own), then assembled. Parts wait in the store's reserved uploads folder, which no client path
//! can name, next to a manifest that fixes the file's destination; completing streams the
//! parts, in order, into the destination as one ordinary upload and removes them.

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt, TryStreamExt};

use crate::path::ArtifactPath;
use crate::store::ArtifactStore;
use crate::{Error, Result};

/// Most parts one upload may have (as in S3).
pub const MAX_UPLOAD_PARTS: u32 = 10_000;

/// A part as the client reports it at completion: its number and the ETag its upload answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    pub part_number: u32,
    pub etag: String,
}

/// An upload id is 32 hex digits; anything else never reaches a store path.
fn check_id(upload_id: &str) -> Result<()> {
    if upload_id.len() == 32 && upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::InvalidPath(format!("Invalid upload id '{}'", upload_id.chars().take(64).collect::<String>())))
    }
}

fn manifest(upload_id: &str) -> ArtifactPath {
    ArtifactPath::internal(&format!("{upload_id}/manifest"))
}

fn part_path(upload_id: &str, part: u32) -> ArtifactPath {
    ArtifactPath::internal(&format!("{upload_id}/part-{part:05}"))
}

fn check_part_number(part: u32, num_parts: u32) -> Result<()> {
    if part == 0 || part > num_parts {
        return Err(Error::InvalidPath(format!("Part {part} is outside this upload's parts 1 to {num_parts}")));
    }
    Ok(())
}

/// The ETag a part's upload answers: its number and size, which completion checks again.
fn part_etag(part: u32, size: u64) -> String {
    format!("\"{part}-{size}\"")
}

fn no_such_upload(upload_id: &str) -> Error {
    Error::NotFound(format!("upload {upload_id}"))
}

impl ArtifactStore {
    /// Starts an upload of `num_parts` parts to `destination`; answers its id.
    pub async fn create_upload(&self, destination: &ArtifactPath, num_parts: u32) -> Result<String> {
        if destination.is_root() {
            return Err(Error::InvalidPath("An upload needs a file name".into()));
        }
        if num_parts == 0 || num_parts > MAX_UPLOAD_PARTS {
            return Err(Error::InvalidPath(format!(
                "An upload has between 1 and {MAX_UPLOAD_PARTS} parts, not {num_parts}"
            )));
        }
        self.check_writable(destination).await?;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let text = format!("{num_parts}\n{}", destination.as_str());
        self.put(&manifest(&upload_id), one_chunk(Bytes::from(text))).await?;
        Ok(upload_id)
    }

    /// The destination and number of parts an upload was started with.
    async fn read_manifest(&self, upload_id: &str) -> Result<(String, u32)> {
        check_id(upload_id)?;
        let (_, body) = match self.get(&manifest(upload_id)).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Err(no_such_upload(upload_id)),
            Err(e) => return Err(e),
        };
        let chunks: Vec<Bytes> = body.try_collect().await?;
        let text = String::from_utf8_lossy(&chunks.concat()).into_owned();
        let (count, destination) = text.split_once('\n').ok_or_else(|| no_such_upload(upload_id))?;
        Ok((destination.to_string(), count.parse().map_err(|_| no_such_upload(upload_id))?))
    }

    /// Stores one part (sent again, it replaces the earlier one); answers its ETag.
    pub async fn put_part<S, E>(&self, upload_id: &str, part: u32, body: S) -> Result<String>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let (_, num_parts) = self.read_manifest(upload_id).await?;
        check_part_number(part, num_parts)?;
        let size = self.put(&part_path(upload_id, part), body).await?;
        Ok(part_etag(part, size))
    }

    /// Assembles the parts, in order, into the upload's destination, which must be the one it
    /// was started with; every part from 1 to the last must be there with the ETag its upload
    /// answered. The parts are removed afterwards.
    pub async fn complete_upload(&self, destination: &ArtifactPath, upload_id: &str, parts: &[UploadPart]) -> Result<u64> {
        let (started_for, num_parts) = self.read_manifest(upload_id).await?;
        if started_for != destination.as_str() {
            return Err(Error::InvalidPath(format!("Upload {upload_id} was started for another file")));
        }
        let mut numbers: Vec<u32> = parts.iter().map(|p| p.part_number).collect();
        numbers.sort_unstable();
        if numbers != (1..=num_parts).collect::<Vec<_>>() {
            return Err(Error::InvalidPath(format!("Completing upload {upload_id} needs each of its parts 1 to {num_parts} once")));
        }
        let mut ordered = parts.to_vec();
        ordered.sort_by_key(|p| p.part_number);
        for p in &ordered {
            let size = match self.size_of(&part_path(upload_id, p.part_number)).await {
                Ok(size) => size,
                Err(Error::NotFound(_)) => {
                    return Err(Error::InvalidPath(format!("Part {} of upload {upload_id} was never uploaded", p.part_number)));
                }
                Err(e) => return Err(e),
            };
            if p.etag.trim_matches('"') != part_etag(p.part_number, size).trim_matches('"') {
                return Err(Error::InvalidPath(format!("Part {} has ETag {}, not {}", p.part_number, part_etag(p.part_number, size), p.etag)));
            }
        }
        let sources: Vec<ArtifactPath> = ordered.iter().map(|p| part_path(upload_id, p.part_number)).collect();
        let store = self.clone();
        let body = futures_util::stream::iter(sources)
            .then(move |path| {
                let store = store.clone();
                async move { store.get(&path).await.map(|(_, body)| body) }.boxed()
            })
            .try_flatten()
            .boxed();
        let written = self.put(destination, body.map_err(|e| e.to_string())).await?;
        self.remove_upload(upload_id).await?;
        Ok(written)
    }

    /// Drops an upload and its parts; the destination is untouched.
    pub async fn abort_upload(&self, destination: &ArtifactPath, upload_id: &str) -> Result<()> {
        let (started_for, _) = self.read_manifest(upload_id).await?;
        if started_for != destination.as_str() {
            return Err(Error::InvalidPath(format!("Upload {upload_id} was started for another file")));
        }
        self.remove_upload(upload_id).await
    }

    async fn remove_upload(&self, upload_id: &str) -> Result<()> {
        match self.delete(&ArtifactPath::internal(upload_id)).await {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn one_chunk(bytes: Bytes) -> impl Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::iter([Ok(bytes)])
}
