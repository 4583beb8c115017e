//! Writing a file into a local store so that it is never seen half-written, even after a power
//! loss: the bytes go to a temporary file beside the destination, which is synced to disk,
//! then renamed over the destination, and the folder's entry is synced too. The temporary
//! name ends in `#` and digits, which no artifact path may contain and which the store's
//! listings leave out as an upload in progress.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// Bytes gathered before they are written, so a write is one blocking call per part.
const WRITE_SIZE: usize = 8 * 1024 * 1024;

/// Removes the temporary file unless the write completed (a failed or abandoned upload).
struct Staged {
    path: PathBuf,
    done: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Upload(format!("{what}: {e}"))
}

async fn blocking<T: Send + 'static>(what: &'static str, f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| failed(what, e))?.map_err(|e| failed(what, e))
}

/// The file, once the write in flight (if any) has finished with it.
async fn take_file(idle: &mut Option<File>, writing: &mut Option<JoinHandle<std::io::Result<File>>>) -> Result<File> {
    match writing.take() {
        Some(task) => {
            let what = "writing the upload failed";
            task.await.map_err(|e| failed(what, e))?.map_err(|e| failed(what, e))
        }
        None => idle.take().ok_or_else(|| Error::Upload("the upload's file went missing".into())),
    }
}

/// Starts the disk writing the part just written (`offset`, `len`) and waits until the part
/// before it is on its way: write-back overlaps the upload instead of all waiting for the final
/// sync, and the dirty pages of one upload stay bounded to about two parts. Best effort: the
/// final `fsync` is what makes the file durable, so a failure here changes nothing.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64, previous: Option<(u64, u64)>) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: sync_file_range only reads its integer arguments; `fd` is the open file borrowed
    // for the duration of the call.
    unsafe {
        libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
    if let Some((before, before_len)) = previous {
        let (Ok(before), Ok(before_len)) = (i64::try_from(before), i64::try_from(before_len)) else { return };
        let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: as above.
        unsafe {
            libc::sync_file_range(fd, before, before_len, wait);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64, _previous: Option<(u64, u64)>) {}

/// Streams `body` into `target` (temporary file, fsync, rename, fsync of the folder); answers
/// the number of bytes written. `what` names the upload in errors.
pub(crate) async fn write_file<S, E>(target: PathBuf, body: S, what: &str) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let folder = target.parent().map(PathBuf::from).ok_or_else(|| Error::InvalidPath("An upload needs a file name".into()))?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staged_path = folder.join(format!("{name}#{}", uuid::Uuid::new_v4().as_u128() % 10u128.pow(20)));
    let (open_folder, open_path) = (folder.clone(), staged_path.clone());
    let file = blocking("creating the upload's file failed", move || {
        std::fs::create_dir_all(&open_folder)?;
        File::options().write(true).create_new(true).open(&open_path)
    })
    .await?;
    let mut staged = Staged { path: staged_path, done: false };

    // Writing a part runs while the next one arrives: one write in flight at a time.
    let mut body = std::pin::pin!(body);
    let mut idle = Some(file);
    let mut writing: Option<JoinHandle<std::io::Result<File>>> = None;
    let mut pending: Vec<Bytes> = Vec::new();
    let mut pending_len = 0usize;
    let mut written = 0u64;
    // Bytes handed to writes so far, and the last part's place: its write-back is started when
    // it is written and awaited when the next one is, so the final sync has little left to do.
    let mut flushed = 0u64;
    let mut last_part: Option<(u64, u64)> = None;
    loop {
        let next = body.next().await;
        let end = next.is_none();
        if let Some(chunk) = next {
            let chunk = chunk.map_err(|e| Error::Upload(format!("the upload of '{what}' broke off: {e}")))?;
            pending_len += chunk.len();
            written += chunk.len() as u64;
            pending.push(chunk);
        }
        if pending_len >= WRITE_SIZE || (end && !pending.is_empty()) {
            let mut file = take_file(&mut idle, &mut writing).await?;
            let parts = std::mem::take(&mut pending);
            pending_len = 0;
            let (offset, previous) = (flushed, last_part);
            let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
            last_part = Some((offset, len));
            flushed += len;
            writing = Some(tokio::task::spawn_blocking(move || {
                for part in &parts {
                    file.write_all(part)?;
                }
                start_writeback(&file, offset, len, previous);
                Ok(file)
            }));
        }
        if end {
            break;
        }
    }
    let file = take_file(&mut idle, &mut writing).await?;
    let (from, to) = (staged.path.clone(), target);
    blocking("syncing the upload to disk failed", move || {
        file.sync_all()?;
        drop(file);
        std::fs::rename(&from, &to)?;
        File::open(&folder)?.sync_all()
    })
    .await?;
    staged.done = true;
    Ok(written)
}
