//! Settings, layered: defaults, then the TOML file, then KILN_* environment variables, then flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 5000;
const DEFAULT_BACKEND_STORE_URI: &str = "sqlite:///./kiln-data/kiln.db";
const DEFAULT_ARTIFACTS_DESTINATION: &str = "./kiln-data/artifacts";
const DEFAULT_MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
const DEFAULT_DB_MAX_CONNECTIONS: u32 = 8;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1; use 0.0.0.0 to listen on every interface]
    #[arg(long, env = "KILN_HOST")]
    host: Option<String>,
    /// Port to listen on [default: 5000]
    #[arg(long, short, env = "KILN_PORT")]
    port: Option<u16>,
    /// Where metadata lives: sqlite:///relative.db, sqlite:////absolute.db or
    /// postgresql://user:password@host:5432/database [default: sqlite:///./kiln-data/kiln.db]
    #[arg(long, env = "KILN_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,
    /// Where artifacts are stored (a local folder) [default: ./kiln-data/artifacts]
    #[arg(long, env = "KILN_ARTIFACTS_DESTINATION")]
    artifacts_destination: Option<String>,
    /// Largest API request body in bytes [default: 16777216]
    #[arg(long, env = "KILN_MAX_REQUEST_BODY")]
    max_request_body: Option<usize>,
    /// Most database connections the server holds [default: 8]
    #[arg(long, env = "KILN_DB_MAX_CONNECTIONS")]
    db_max_connections: Option<u32>,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C [default: 30]
    #[arg(long, env = "KILN_SHUTDOWN_GRACE")]
    shutdown_grace: Option<u64>,
    /// Also serve models: the Open Inference Protocol's REST routes, /invocations and /metrics
    /// beside the tracking API (kiln serve has the same, plus gRPC). Models are loaded at run time
    /// through POST /v2/repository/models/<name>/load, or at start with --serve-model
    #[arg(long, env = "KILN_SERVE")]
    serve: bool,
    /// A model to serve from this server's own registry, as NAME=SOURCE (models:/fraud@champion,
    /// runs:/<run_id>/model or a folder); repeat for several; implies --serve. Loaded once the
    /// server is up; /v2/health/ready answers 200 when all are
    #[arg(long = "serve-model", value_name = "NAME=SOURCE", env = "KILN_SERVER_MODELS", value_delimiter = ',')]
    serve_models: Vec<String>,
    /// Log the served models' answered requests (inputs, outputs, version, timing, ids) to
    /// Parquet files in this server's artifact store, under inference-logs/<model>/date=.../hour=.../
    #[arg(long, env = "KILN_SERVE_LOG_INFERENCES")]
    serve_log_inferences: bool,
    /// A TOML file whose [server] table sets any of the settings above (same names, with
    /// underscores: host, port, backend_store_uri, ...)
    #[arg(long, env = "KILN_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DbArgs {
    /// The database to upgrade (see `kiln server --help`) [default: sqlite:///./kiln-data/kiln.db]
    #[arg(long, env = "KILN_BACKEND_STORE_URI")]
    backend_store_uri: Option<String>,
    /// A TOML file whose [server] table may set backend_store_uri
    #[arg(long, env = "KILN_CONFIG")]
    config: Option<PathBuf>,
}

/// The `[server]` table of the configuration file.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileServer {
    host: Option<String>,
    port: Option<u16>,
    backend_store_uri: Option<String>,
    artifacts_destination: Option<String>,
    max_request_body: Option<usize>,
    db_max_connections: Option<u32>,
    shutdown_grace: Option<u64>,
    serve: Option<bool>,
    serve_models: Option<Vec<String>>,
    serve_log_inferences: Option<bool>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: FileServer,
}

fn read_file(path: Option<&PathBuf>) -> Result<FileServer> {
    let Some(path) = path else { return Ok(FileServer::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    let file: File = toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    Ok(file.server)
}

/// Settings for `kiln server`, resolved.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub backend_store_uri: String,
    pub artifacts_destination: String,
    pub max_request_body: usize,
    pub db_max_connections: u32,
    pub shutdown_grace_secs: u64,
    /// Models to serve beside the tracking API (NAME=SOURCE); serving is on when `serve` is.
    pub serve: bool,
    pub serve_models: Vec<String>,
    /// Whether served models log their answered requests to the artifact store.
    pub serve_log_inferences: bool,
}

impl ServerArgs {
    pub fn resolve(self) -> Result<ServerConfig> {
        let file = read_file(self.config.as_ref())?;
        Ok(ServerConfig {
            host: self.host.or(file.host).unwrap_or_else(|| DEFAULT_HOST.into()),
            port: self.port.or(file.port).unwrap_or(DEFAULT_PORT),
            backend_store_uri: self
                .backend_store_uri
                .or(file.backend_store_uri)
                .unwrap_or_else(|| DEFAULT_BACKEND_STORE_URI.into()),
            artifacts_destination: self
                .artifacts_destination
                .or(file.artifacts_destination)
                .unwrap_or_else(|| DEFAULT_ARTIFACTS_DESTINATION.into()),
            max_request_body: self.max_request_body.or(file.max_request_body).unwrap_or(DEFAULT_MAX_REQUEST_BODY),
            db_max_connections: self.db_max_connections.or(file.db_max_connections).unwrap_or(DEFAULT_DB_MAX_CONNECTIONS),
            shutdown_grace_secs: self.shutdown_grace.or(file.shutdown_grace).unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            serve_models: if self.serve_models.is_empty() { file.serve_models.unwrap_or_default() } else { self.serve_models },
            serve_log_inferences: self.serve_log_inferences || file.serve_log_inferences.unwrap_or(false),
            serve: false,
        }
        .with_serving(self.serve || file.serve.unwrap_or(false)))
    }
}

impl ServerConfig {
    /// Serving is on when asked, or when models are named.
    fn with_serving(mut self, asked: bool) -> Self {
        self.serve = asked || !self.serve_models.is_empty();
        self
    }
}

impl DbArgs {
    pub fn resolve(self) -> Result<String> {
        let file = read_file(self.config.as_ref())?;
        Ok(self.backend_store_uri.or(file.backend_store_uri).unwrap_or_else(|| DEFAULT_BACKEND_STORE_URI.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(file: Option<PathBuf>) -> ServerArgs {
        ServerArgs {
            host: None,
            port: Some(6000),
            backend_store_uri: None,
            artifacts_destination: None,
            max_request_body: None,
            db_max_connections: None,
            shutdown_grace: None,
            serve: false,
            serve_models: Vec::new(),
            serve_log_inferences: false,
            config: file,
        }
    }

    #[test]
    fn layers_flags_over_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("kiln-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kiln.toml");
        std::fs::write(&path, "[server]\nhost = \"0.0.0.0\"\nport = 7000\n").unwrap();
        let c = args(Some(path.clone())).resolve().unwrap();
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.port, 6000);
        assert_eq!(c.backend_store_uri, DEFAULT_BACKEND_STORE_URI);
        assert!(!c.serve);
        std::fs::write(&path, "[server]\nserve_models = [\"m=models:/m@champion\"]\n").unwrap();
        let c = args(Some(path)).resolve().unwrap();
        assert!(c.serve);
        assert_eq!(c.serve_models, vec!["m=models:/m@champion".to_string()]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_unknown_settings() {
        let dir = std::env::temp_dir().join(format!("kiln-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kiln.toml");
        std::fs::write(&path, "[server]\nprot = 7000\n").unwrap();
        assert!(args(Some(path)).resolve().is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
