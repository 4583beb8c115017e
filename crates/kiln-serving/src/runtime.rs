//! Finding and loading ONNX Runtime's shared library (`libonnxruntime.so`) once per process.
//!
//! Kiln does not link ONNX Runtime at build time. It looks, in order, at `ORT_DYLIB_PATH`, the
//! system's library folders, and the `onnxruntime` Python package (`pip install onnxruntime`
//! ships the library in `onnxruntime/capi/`), and says what it tried when it finds none.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The library this process loaded, and where from.
#[derive(Debug)]
pub struct OnnxRuntime {
    pub path: PathBuf,
    environment: ort::environment::Environment,
}

impl OnnxRuntime {
    /// What sessions are made in.
    pub fn environment(&self) -> &ort::environment::Environment {
        &self.environment
    }
}

static RUNTIME: OnceLock<std::result::Result<OnnxRuntime, String>> = OnceLock::new();

/// Loads ONNX Runtime on first use; later calls return the same one (or the same failure).
pub fn onnx_runtime() -> Result<&'static OnnxRuntime> {
    RUNTIME.get_or_init(load).as_ref().map_err(|why| Error::Model(why.clone()))
}

fn load() -> std::result::Result<OnnxRuntime, String> {
    let mut tried = Vec::new();
    for candidate in candidates(&mut tried) {
        match ort::init_from(&candidate) {
            Ok(builder) => {
                let environment = builder
                    .with_name("kiln")
                    .with_telemetry(false)
                    .build()
                    .map_err(|e| format!("ONNX Runtime from {} failed to start: {e}", candidate.display()))?;
                tracing::info!(library = %candidate.display(), "loaded ONNX Runtime");
                return Ok(OnnxRuntime { path: candidate, environment });
            }
            Err(e) => tried.push(format!("{}: {e}", candidate.display())),
        }
    }
    Err(format!(
        "ONNX Runtime's library (libonnxruntime.so) was not found. Install it with `pip install onnxruntime` \
         (Kiln finds it in the Python package), or set ORT_DYLIB_PATH to the library file. Tried: {}",
        if tried.is_empty() { "nothing".to_string() } else { tried.join("; ") }
    ))
}

/// Library files to try, best first; `tried` collects the places that had none.
fn candidates(tried: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => {
            out.push(PathBuf::from(path));
            return out;
        }
        _ => tried.push("ORT_DYLIB_PATH (not set)".into()),
    }
    let mut folders: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    folders.extend(["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64"].map(PathBuf::from));
    for folder in &folders {
        match library_in(folder) {
            Some(file) => out.push(file),
            None => tried.push(format!("{} (none)", folder.display())),
        }
    }
    for python in pythons() {
        match python_package_folder(&python) {
            Some(folder) => match library_in(&folder.join("capi")) {
                Some(file) => out.push(file),
                None => tried.push(format!("{} (no library in the package)", folder.join("capi").display())),
            },
            None => tried.push(format!("{} (no onnxruntime package)", python.display())),
        }
    }
    out
}

/// `libonnxruntime.so`, or a versioned `libonnxruntime.so.1.x.y` (the Python wheel has only that).
fn library_in(folder: &Path) -> Option<PathBuf> {
    let plain = folder.join("libonnxruntime.so");
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so.")))
        .collect();
    versioned.sort();
    versioned.pop()
}

/// The Python interpreters to ask: the active virtualenv's, then `python3` on the PATH.
fn pythons() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        out.push(PathBuf::from(venv).join("bin/python"));
    }
    out.push(PathBuf::from("python3"));
    out
}

fn python_package_folder(python: &Path) -> Option<PathBuf> {
    let output = Command::new(python)
        .args(["-c", "import importlib.util as u; s = u.find_spec('onnxruntime'); print(s.submodule_search_locations[0] if s else '')"])
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let folder = text.trim();
    (output.status.success() && !folder.is_empty()).then(|| PathBuf::from(folder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_library_files_are_found() {
        let dir = std::env::temp_dir().join(format!("kiln-ort-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(library_in(&dir), None);
        std::fs::write(dir.join("libonnxruntime.so.1.32.0"), b"").unwrap();
        assert_eq!(library_in(&dir), Some(dir.join("libonnxruntime.so.1.32.0")));
        std::fs::write(dir.join("libonnxruntime.so"), b"").unwrap();
        assert_eq!(library_in(&dir), Some(dir.join("libonnxruntime.so")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
