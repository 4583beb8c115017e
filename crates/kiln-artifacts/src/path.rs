//! Artifact paths, checked in one place: a path is relative, made of plain segments, and can
//! only name something under the store's root.

use crate::{Error, Result};

/// Longest artifact path accepted, in bytes.
const MAX_PATH_LEN: usize = 4096;

/// The scheme of URIs into this server's own artifact store: `mlflow-artifacts:/<path>`.
pub const PROXY_SCHEME: &str = "mlflow-artifacts:";

/// The top-level folder where multipart uploads keep their parts until they complete; no
/// client path can name it.
pub(crate) const UPLOADS_FOLDER: &str = ".kiln-uploads";

/// A relative path inside the artifact store, known to stay under its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// Checks a path as the HTTP layer decoded it. Refused: absolute paths, backslashes, NUL and
    /// control characters, `?` and `#`, empty segments (`a//b`), `.` and `..` segments, and
    /// segments that further rounds of percent-decoding would turn into any of those (`%2e%2e`,
    /// `%252f`), so no layer below can be tricked into climbing out. An empty path is the root.
    pub fn parse(raw: &str) -> Result<ArtifactPath> {
        let invalid = |why: &str| Error::InvalidPath(format!("Invalid artifact path '{}': {why}", shorten(raw)));
        if raw.len() > MAX_PATH_LEN {
            return Err(invalid("it is too long"));
        }
        if raw.starts_with('/') {
            return Err(invalid("it must be relative, not start with '/'"));
        }
        if raw.contains('\\') {
            return Err(invalid("backslashes are not allowed; separate folders with '/'"));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid("control characters are not allowed"));
        }
        if raw.contains(['?', '#']) {
            return Err(invalid("'?' and '#' are not allowed in file names"));
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Ok(ArtifactPath(String::new()));
        }
        if trimmed.split('/').next() == Some(UPLOADS_FOLDER) {
            return Err(invalid("the folder '.kiln-uploads' is reserved for uploads in progress"));
        }
        for segment in trimmed.split('/') {
            if segment.is_empty() {
                return Err(invalid("empty folder names ('//') are not allowed"));
            }
            if matches!(segment, "." | "..") {
                return Err(invalid("'.' and '..' are not allowed"));
            }
            if let Some(decoded) = fully_decoded(segment) {
                let hidden = matches!(decoded.as_str(), "." | "..")
                    || decoded.contains(['/', '\\', '?', '#'])
                    || decoded.chars().any(char::is_control);
                if hidden {
                    return Err(invalid("percent-escapes that decode to '/', '\\', '.', '..', '?', '#' or control characters are not allowed"));
                }
            }
        }
        Ok(ArtifactPath(trimmed.to_string()))
    }

    /// The path a `mlflow-artifacts:` URI names, checked like any artifact path; None for a URI
    /// of any other scheme.
    pub fn from_proxy_uri(uri: &str) -> Option<Result<ArtifactPath>> {
        uri.strip_prefix(PROXY_SCHEME).map(|rest| ArtifactPath::parse(rest.trim_start_matches('/')))
    }

    /// A path inside the store's own uploads folder, which client paths cannot reach.
    pub(crate) fn internal(relative: &str) -> ArtifactPath {
        ArtifactPath(format!("{UPLOADS_FOLDER}/{relative}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This path with `child` (itself checked) below it.
    pub fn join(&self, child: &ArtifactPath) -> ArtifactPath {
        match (self.is_root(), child.is_root()) {
            (true, _) => child.clone(),
            (_, true) => self.clone(),
            _ => ArtifactPath(format!("{}/{}", self.0, child.0)),
        }
    }
}

/// The segment percent-decoded until nothing changes, if it holds any escapes.
fn fully_decoded(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return None;
    }
    let mut current = segment.to_string();
    for _ in 0..8 {
        let next = String::from_utf8_lossy(&kiln_core::text::percent_decode(current.as_bytes())).into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    Some(current)
}

fn shorten(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths() {
        for ok in ["a", "a/b.txt", "1/abc/artifacts/model/MLmodel", "dir/", "with space/ü.json", "a..b", "..a", "%41"] {
            assert!(ArtifactPath::parse(ok).is_ok(), "{ok}");
        }
        assert!(ArtifactPath::parse("").unwrap().is_root());
        assert_eq!(ArtifactPath::parse("dir/").unwrap().as_str(), "dir");
    }

    #[test]
    fn refuses_escapes() {
        for bad in [
            "../x", "a/../../x", "..", ".", "./a", "a/./b", "/etc/passwd", "//proc/self/root", "a\\..\\b", "..\\x",
            "a//b", "a\0b", "%2e%2e/x", "a/%2E%2e", "%2e", "x/\n", "a/%2e%2e/%2e%2e/etc", "%252e%252e%252f", "a%2fb",
            "..%3f", "a?b", "a#b", "%25252e%25252e",
        ] {
            assert!(ArtifactPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn join_keeps_paths_relative() {
        let base = ArtifactPath::parse("1/run/artifacts").unwrap();
        let child = ArtifactPath::parse("model/MLmodel").unwrap();
        assert_eq!(base.join(&child).as_str(), "1/run/artifacts/model/MLmodel");
        assert_eq!(base.join(&ArtifactPath::parse("").unwrap()), base);
    }
}
