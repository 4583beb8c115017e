//! The store itself: streaming puts and gets, listings, deletes.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::path::{Path, PathPart};
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::path::{ArtifactPath, UPLOADS_FOLDER};
use crate::{Error, Result};

/// Bytes buffered per part of a streamed upload; a part is written while the next arrives.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Bytes read per range of a download (the store's own stream reads 8 KB at a time).
const READ_SIZE: u64 = 4 * 1024 * 1024;
/// Ranges of a download read at once: the next is read while the one before it is sent.
const READ_AHEAD: usize = 2;

/// One entry of a listing, named relative to the listed folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    /// Size in bytes; folders have none.
    pub file_size: Option<u64>,
}

/// Where artifacts live. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// The folder of a local store, whose writes are synced to disk before they count.
    local_root: Option<std::path::PathBuf>,
    description: String,
}

impl ArtifactStore {
    /// Opens the store a location names: a local folder (a plain path or a `file://` URI,
    /// created if needed), `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`.
    /// Cloud stores take their credentials and settings from the environment as their own tools
    /// do: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` (an
    /// S3-compatible store), `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT`; `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_USE_EMULATOR`, and the others each documents.
    pub fn open(location: &str) -> Result<ArtifactStore> {
        let invalid = |why: String| Error::InvalidLocation { location: location.to_string(), why };
        let (scheme, rest) = match location.split_once("://") {
            None => ("file", location),
            Some(split) => split,
        };
        if scheme == "file" {
            return Self::open_local(rest).map_err(|e| match e {
                Error::InvalidLocation { why, .. } => invalid(why),
                other => other,
            });
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("it names no bucket or container".into()));
        }
        let prefix = prefix.trim_matches('/');
        let url = format!("{scheme}://{bucket}");
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => Arc::new(AmazonS3Builder::from_env().with_url(&url).build()?),
            "gs" => Arc::new(GoogleCloudStorageBuilder::from_env().with_url(&url).build()?),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(MicrosoftAzureBuilder::from_env().with_url(&url).build()?),
            other => {
                return Err(invalid(format!(
                    "the scheme '{other}' is not supported: use a local folder, s3://, gs:// or az://"
                )));
            }
        };
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { store } else { Arc::new(PrefixStore::new(store, Path::from(prefix))) };
        Ok(ArtifactStore { store, local_root: None, description: location.to_string() })
    }

    fn open_local(folder: &str) -> Result<ArtifactStore> {
        let invalid = |why: String| Error::InvalidLocation { location: folder.to_string(), why };
        std::fs::create_dir_all(folder).map_err(|e| invalid(format!("cannot create it: {e}")))?;
        let root = std::fs::canonicalize(folder).map_err(|e| invalid(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        let description = format!("local folder {}", root.display());
        Ok(ArtifactStore { store: Arc::new(store), local_root: Some(root), description })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Writes a file from a stream of chunks without holding it in memory; the file appears
    /// whole under its name only when the stream has ended, or not at all. On a local store it
    /// is written to a temporary file, synced, renamed into place and its folder synced before
    /// this returns; a cloud store's upload is durable once it completes.
    pub async fn put<S, E>(&self, path: &ArtifactPath, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if path.is_root() {
            return Err(Error::InvalidPath("An upload needs a file name".into()));
        }
        let location = location(path);
        self.check_can_write(path, &location).await?;
        if let Some(root) = &self.local_root {
            let mut target = root.clone();
            target.extend(location.parts().map(|part| part.as_ref().to_string()));
            return crate::local::write_file(target, body, path.as_str()).await;
        }
        let broke_off = |e: E| Error::Upload(format!("the upload of '{}' broke off: {e}", path.as_str()));
        let mut body = std::pin::pin!(body);
        // Up to one part is gathered first: a file that fits is written with a single put.
        let mut first: Vec<Bytes> = Vec::new();
        let mut written = 0u64;
        loop {
            match body.next().await {
                None => {
                    self.store.put(&location, first.into_iter().collect::<PutPayload>()).await?;
                    return Ok(written);
                }
                Some(Err(e)) => return Err(broke_off(e)),
                Some(Ok(chunk)) => {
                    written += chunk.len() as u64;
                    first.push(chunk);
                    if written >= PART_SIZE as u64 {
                        break;
                    }
                }
            }
        }
        let upload = self.store.put_multipart(&location).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in first {
            writer.put(chunk);
        }
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(broke_off(e));
                }
            };
            written += chunk.len() as u64;
            if let Err(e) = writer.wait_for_capacity(2).await {
                return Err(e.into());
            }
            writer.put(chunk);
        }
        writer.finish().await?;
        Ok(written)
    }

    /// Refuses a destination a file cannot be written to (below a file, or a folder).
    pub(crate) async fn check_writable(&self, path: &ArtifactPath) -> Result<()> {
        self.check_can_write(path, &location(path)).await
    }

    /// The size of a stored file.
    pub(crate) async fn size_of(&self, path: &ArtifactPath) -> Result<u64> {
        Ok(self.store.head(&location(path)).await.map_err(|e| not_found_as(e, path))?.size)
    }

    /// A file cannot sit below a file, nor replace a folder. On a local store every ancestor is
    /// looked at in one blocking call; a cloud store is asked for each.
    async fn check_can_write(&self, path: &ArtifactPath, location: &Path) -> Result<()> {
        let below_file =
            || Error::InvalidPath(format!("'{}' is below a file; a file cannot hold other files", path.as_str()));
        let is_folder = || Error::InvalidPath(format!("'{}' is a folder; a file cannot replace it", path.as_str()));
        let parts: Vec<PathPart> = location.parts().collect();
        if let Some(root) = &self.local_root {
            let mut target = root.clone();
            target.extend(parts.iter().map(|part| part.as_ref().to_string()));
            let depth = parts.len();
            let (file_above, folder_here) = tokio::task::spawn_blocking(move || {
                let mut ancestor = target.clone();
                let mut file_above = false;
                for _ in 1..depth {
                    ancestor.pop();
                    file_above |= std::fs::metadata(&ancestor).is_ok_and(|m| m.is_file());
                }
                (file_above, std::fs::metadata(&target).is_ok_and(|m| m.is_dir()))
            })
            .await
            .map_err(|e| Error::Upload(format!("checking the destination failed: {e}")))?;
            return match (file_above, folder_here) {
                (true, _) => Err(below_file()),
                (_, true) => Err(is_folder()),
                _ => Ok(()),
            };
        }
        for depth in 1..parts.len() {
            let ancestor = Path::from_iter(parts[..depth].iter().cloned());
            if self.store.head(&ancestor).await.is_ok() {
                return Err(below_file());
            }
        }
        let listing = self.store.list_with_delimiter(Some(location)).await?;
        if !listing.objects.is_empty() || !listing.common_prefixes.is_empty() {
            return Err(is_folder());
        }
        Ok(())
    }

    /// The file's size and a stream of its bytes, read in large ranges. Every range must come
    /// from the same version of the file: one replaced mid-download ends the stream with an
    /// error rather than mixing two files.
    pub async fn get(&self, path: &ArtifactPath) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        if path.is_root() {
            return Err(Error::NotFound(String::new()));
        }
        let location = location(path);
        let meta = self.store.head(&location).await.map_err(|e| not_found_as(e, path))?;
        let (size, version) = (meta.size, meta.e_tag);
        let store = self.store.clone();
        let ranges = (0..size).step_by(READ_SIZE as usize).map(move |offset| offset..(offset + READ_SIZE).min(size));
        let stream = futures_util::stream::iter(ranges)
            .map(move |range| {
                let (store, location, version) = (store.clone(), location.clone(), version.clone());
                async move {
                    let options = GetOptions { range: Some(range.into()), if_match: version, ..GetOptions::default() };
                    Ok::<Bytes, Error>(store.get_opts(&location, options).await?.bytes().await?)
                }
            })
            .buffered(READ_AHEAD);
        Ok((size, stream.boxed()))
    }

    /// The files and folders directly inside `dir`, sorted by name. A missing folder is empty.
    pub async fn list(&self, dir: &ArtifactPath) -> Result<Vec<FileInfo>> {
        let prefix = (!dir.is_root()).then(|| location(dir));
        let listing = self.store.list_with_delimiter(prefix.as_ref()).await?;
        let mut files: Vec<FileInfo> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(|name| FileInfo { path: decode(name), is_dir: true, file_size: None }))
            .chain(listing.objects.iter().filter_map(|o| {
                o.location.filename().map(|name| FileInfo { path: decode(name), is_dir: false, file_size: Some(o.size) })
            }))
            .filter(|f| !(dir.is_root() && f.path == UPLOADS_FOLDER))
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Deletes a file, or a folder with everything in it.
    pub async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let target = location(path);
        let inside: Vec<Path> = self.store.list(Some(&target)).map_ok(|meta| meta.location).try_collect().await?;
        if inside.is_empty() {
            return self.store.delete(&target).await.map_err(|e| not_found_as(e, path));
        }
        for location in inside {
            self.store.delete(&location).await?;
        }
        Ok(())
    }
}

/// The store location of a checked path. A segment is stored under its own name where the
/// store allows it (letters of any script, spaces) and escaped where it holds a character some
/// stores refuse (`%`, `#`, `*`, ...), decided per segment so a folder has one name throughout.
fn location(path: &ArtifactPath) -> Path {
    Path::from_iter(
        path.as_str()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|segment| PathPart::parse(segment).unwrap_or_else(|_| PathPart::from(segment))),
    )
}

/// A stored file name back to the name the client gave (path parts escape a few characters).
fn decode(name: &str) -> String {
    String::from_utf8_lossy(&kiln_core::text::percent_decode(name.as_bytes())).into_owned()
}

fn not_found_as(e: object_store::Error, path: &ArtifactPath) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound(path.as_str().to_string()),
        other => Error::Store(other),
    }
}
