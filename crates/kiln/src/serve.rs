//! `kiln serve`: ONNX models behind the Open Inference Protocol and MLflow's `/invocations`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;
use kiln_server::serving::{ServingApiOptions, ServingState};
use kiln_artifacts::ArtifactStore;
use kiln_serving::{
    InferenceLog, InferenceLogOptions, LogDestination, ModelConfig, ModelSource, Resolver, Role, Serving, ServingOptions,
    TrackingClient,
};
use tracing::info;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model to serve, as NAME=SOURCE; repeat for several. SOURCE is a registry URI
    /// (models:/fraud@champion, models:/fraud/3, models:/fraud/Production, models:/<model_id>),
    /// a run's artifacts (runs:/<run_id>/model), or a local folder holding MLmodel and the ONNX
    /// file. Aliases and stages are followed: when they move, the new version is loaded, warmed
    /// and swapped in without failing a request.
    #[arg(long = "model", value_name = "NAME=SOURCE", env = "KILN_SERVE_MODELS", value_delimiter = ',')]
    models: Vec<String>,
    /// A challenger beside a model, as NAME:PERCENT=SOURCE: it answers PERCENT of NAME's requests
    /// instead of the primary (fraud:10=models:/fraud@challenger)
    #[arg(long = "challenger", value_name = "NAME:PERCENT=SOURCE", env = "KILN_SERVE_CHALLENGERS", value_delimiter = ',')]
    challengers: Vec<String>,
    /// A shadow beside a model, as NAME:PERCENT=SOURCE: it gets a copy of PERCENT of NAME's
    /// requests; its answers are logged and counted, never returned (fraud:100=models:/fraud/7)
    #[arg(long = "shadow", value_name = "NAME:PERCENT=SOURCE", env = "KILN_SERVE_SHADOWS", value_delimiter = ',')]
    shadows: Vec<String>,
    /// The tracking server that resolves models:/ and runs:/ sources (kiln server or mlflow server)
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    tracking_uri: Option<String>,
    /// Address to listen on [use 0.0.0.0 to listen on every interface]
    #[arg(long, env = "KILN_SERVE_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port for HTTP: the Open Inference Protocol's REST API, /invocations and /metrics
    #[arg(long, short, env = "KILN_SERVE_PORT", default_value_t = 8080)]
    port: u16,
    /// Port for the Open Inference Protocol's gRPC service (inference.GRPCInferenceService)
    #[arg(long, env = "KILN_SERVE_GRPC_PORT", default_value_t = 8081)]
    grpc_port: u16,
    /// ONNX Runtime sessions per model, each running one batch at a time [default: the number of cores]
    #[arg(long, env = "KILN_SERVE_SESSIONS")]
    sessions: Option<usize>,
    /// Threads each session uses within one operator
    #[arg(long, env = "KILN_SERVE_INTRA_THREADS", default_value_t = 1)]
    intra_threads: usize,
    /// Most rows merged from concurrent requests into one model run; 1 turns batching off
    #[arg(long, env = "KILN_SERVE_MAX_BATCH_SIZE", default_value_t = 64)]
    max_batch_size: usize,
    /// Microseconds a request may wait for others to join its batch. 0 merges only the requests
    /// already waiting while every session is busy, which adds no latency
    #[arg(long, env = "KILN_SERVE_MAX_BATCH_DELAY_US", default_value_t = 0)]
    max_batch_delay_us: u64,
    /// Requests that may wait per model before new ones are refused with 503
    #[arg(long, env = "KILN_SERVE_MAX_QUEUE", default_value_t = 4096)]
    max_queue: usize,
    /// Longest a request may take, waiting included, in milliseconds
    #[arg(long, env = "KILN_SERVE_TIMEOUT_MS", default_value_t = 30_000)]
    timeout_ms: u64,
    /// Largest request body in bytes
    #[arg(long, env = "KILN_SERVE_MAX_REQUEST_BODY", default_value_t = 64 * 1024 * 1024)]
    max_request_body: usize,
    /// Seconds between checks of the aliases and stages being followed
    #[arg(long, env = "KILN_SERVE_POLL_SECONDS", default_value_t = 2.0)]
    poll_seconds: f64,
    /// Where downloaded models are kept while served [default: a new folder under the system's temporary folder]
    #[arg(long, env = "KILN_SERVE_CACHE")]
    cache: Option<PathBuf>,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C
    #[arg(long, env = "KILN_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace: u64,
    /// Log the answered requests of every model given on the command line (inputs, outputs,
    /// version, timing, ids) to Parquet files, a folder per model and hour, written off the
    /// request path; the config file's log_inferences sets it per model
    #[arg(long, env = "KILN_SERVE_LOG_INFERENCES")]
    log_inferences: bool,
    /// Where inference log files go: a local folder, s3://, gs:// or az:// [default: the
    /// tracking server's artifact store, under inference-logs/]
    #[arg(long, env = "KILN_SERVE_INFERENCE_LOG_URI", value_name = "URI")]
    inference_log_uri: Option<String>,
    /// Seconds a logged request may wait before its file is written (files also close at
    /// 100,000 rows, at the hour, and at shutdown)
    #[arg(long, env = "KILN_SERVE_INFERENCE_LOG_FLUSH_SECONDS", default_value_t = 60.0)]
    inference_log_flush_seconds: f64,
    /// Logged requests that may wait to be written; when it is full, requests are still
    /// answered but not logged, and counted (kiln_inference_log_dropped_total)
    #[arg(long, env = "KILN_SERVE_INFERENCE_LOG_QUEUE", default_value_t = 10_000)]
    inference_log_queue: usize,
    /// A TOML file of models with their own settings, beside the --model ones:
    /// [[serve.model]] tables with name, source, and any of sessions, intra_threads,
    /// max_batch_size, max_batch_delay_us, max_queue, timeout_ms, log_inferences (the flags
    /// give the rest), and challenger / shadow = { source = "...", percent = 10 }
    #[arg(long, env = "KILN_SERVE_CONFIG")]
    config: Option<PathBuf>,
}

/// The `[serve]` table of the configuration file.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    #[serde(default)]
    serve: ServeTable,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ServeTable {
    #[serde(default)]
    model: Vec<FileModel>,
}

/// One `[[serve.model]]`: a model and the settings it does not take from the flags.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileModel {
    name: String,
    source: String,
    sessions: Option<usize>,
    intra_threads: Option<usize>,
    max_batch_size: Option<usize>,
    max_batch_delay_us: Option<u64>,
    max_queue: Option<usize>,
    timeout_ms: Option<u64>,
    log_inferences: Option<bool>,
    challenger: Option<FileVariant>,
    shadow: Option<FileVariant>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileVariant {
    source: String,
    percent: f64,
}

impl FileModel {
    fn config(&self, defaults: &ModelConfig) -> ModelConfig {
        ModelConfig {
            sessions: self.sessions.unwrap_or(defaults.sessions).max(1),
            intra_threads: self.intra_threads.unwrap_or(defaults.intra_threads).max(1),
            max_batch_size: self.max_batch_size.unwrap_or(defaults.max_batch_size).max(1),
            max_batch_delay: self.max_batch_delay_us.map_or(defaults.max_batch_delay, Duration::from_micros),
            max_queue: self.max_queue.unwrap_or(defaults.max_queue).max(1),
            timeout: self.timeout_ms.map_or(defaults.timeout, |ms| Duration::from_millis(ms.max(1))),
            log_inferences: self.log_inferences.unwrap_or(false),
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<FileModel>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    let file: ServeFile = toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    Ok(file.serve.model)
}

/// A model to load: its endpoint name, the part it plays, its share, source and settings.
struct Planned {
    name: String,
    role: Role,
    percent: f64,
    source: ModelSource,
    config: ModelConfig,
}

/// Every model the flags and the file name, primaries first; a name given twice is an error.
fn plan(args: &ServeArgs, file: Vec<FileModel>, defaults: &ModelConfig) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    let primary = |name: String, source, config| Planned { name, role: Role::Primary, percent: 100.0, source, config };
    for text in &args.models {
        let (name, source) = parse_model(text)?;
        out.push(primary(name, source, ModelConfig { log_inferences: args.log_inferences, ..defaults.clone() }));
    }
    let mut file_variants = Vec::new();
    for m in file {
        let config = m.config(defaults);
        for (role, v) in [(Role::Challenger, &m.challenger), (Role::Shadow, &m.shadow)] {
            if let Some(v) = v {
                if !(0.0..=100.0).contains(&v.percent) {
                    bail!("the {} of '{}' in the config file has percent {}, not between 0 and 100", role.as_str(), m.name, v.percent);
                }
                file_variants.push(Planned { name: m.name.clone(), role, percent: v.percent, source: ModelSource::parse(&v.source), config: config.clone() });
            }
        }
        out.push(primary(m.name, ModelSource::parse(&m.source), config));
    }
    for (i, p) in out.iter().enumerate() {
        if out[..i].iter().any(|q| q.name == p.name) {
            bail!("the model '{}' is named twice (by --model or the config file)", p.name);
        }
    }
    for (flag, role, list) in [("challenger", Role::Challenger, &args.challengers), ("shadow", Role::Shadow, &args.shadows)] {
        for text in list {
            let (name, percent, source) = parse_variant(flag, text)?;
            let Some(config) = out.iter().find(|p| p.name == name).map(|p| p.config.clone()) else {
                bail!("--{flag} {text} names the model '{name}', which no --model serves");
            };
            out.push(Planned { name, role, percent, source, config });
        }
    }
    out.extend(file_variants);
    Ok(out)
}

/// The inference log, when a model logs or a destination is named (models loaded later through
/// the repository API may then log too).
fn inference_log(args: &ServeArgs, tracking: Option<&TrackingClient>, wanted: bool) -> Result<Option<Arc<InferenceLog>>> {
    if !wanted && args.inference_log_uri.is_none() {
        return Ok(None);
    }
    if !(args.inference_log_flush_seconds.is_finite() && args.inference_log_flush_seconds >= 0.01) {
        bail!("--inference-log-flush-seconds must be at least 0.01");
    }
    let destination = match (&args.inference_log_uri, tracking) {
        (Some(uri), _) => LogDestination::Store {
            store: ArtifactStore::open(uri).with_context(|| format!("cannot open the inference log's destination {uri}"))?,
            prefix: String::new(),
        },
        (None, Some(client)) => LogDestination::Tracking { client: client.clone(), prefix: "inference-logs".into() },
        (None, None) => bail!(
            "inference logging needs somewhere to write: --inference-log-uri (a folder, s3://, gs:// or az://) or \
             --tracking-uri (its artifact store)"
        ),
    };
    let options = InferenceLogOptions {
        queue: args.inference_log_queue.max(1),
        flush_every: Duration::from_secs_f64(args.inference_log_flush_seconds),
        ..InferenceLogOptions::default()
    };
    Ok(Some(InferenceLog::start(destination, options)))
}

/// NAME:PERCENT=SOURCE.
fn parse_variant(flag: &str, text: &str) -> Result<(String, f64, ModelSource)> {
    let (target, source) = parse_model(text).with_context(|| format!("--{flag} takes NAME:PERCENT=SOURCE"))?;
    let Some((name, percent)) = target.split_once(':') else {
        bail!("--{flag} takes NAME:PERCENT=SOURCE (fraud:10=models:/fraud@{flag}), not '{text}'");
    };
    let percent: f64 = percent.trim_end_matches('%').parse().with_context(|| format!("'{percent}' in --{flag} {text} is not a percentage"))?;
    if !(0.0..=100.0).contains(&percent) {
        bail!("--{flag} {text}: the percentage must be between 0 and 100");
    }
    Ok((name.to_string(), percent, source))
}

/// NAME=SOURCE.
pub(crate) fn parse_model(text: &str) -> Result<(String, ModelSource)> {
    let Some((name, source)) = text.split_once('=') else {
        bail!("--model takes NAME=SOURCE (fraud=models:/fraud@champion), not '{text}'");
    };
    if name.is_empty() || source.is_empty() {
        bail!("--model takes NAME=SOURCE with both parts, not '{text}'");
    }
    Ok((name.to_string(), ModelSource::parse(source)))
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    if args.poll_seconds.is_nan() || args.poll_seconds < 0.1 {
        bail!("--poll-seconds must be at least 0.1");
    }
    let tracking = args.tracking_uri.as_deref().filter(|u| !u.is_empty()).map(TrackingClient::new).transpose()?;
    let defaults = ModelConfig {
        sessions: args.sessions.unwrap_or_else(|| ModelConfig::default().sessions).max(1),
        intra_threads: args.intra_threads.max(1),
        max_batch_size: args.max_batch_size.max(1),
        max_batch_delay: Duration::from_micros(args.max_batch_delay_us),
        max_queue: args.max_queue.max(1),
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        log_inferences: false,
    };
    let file = args.config.as_deref().map(read_file).transpose()?.unwrap_or_default();
    let planned = plan(&args, file, &defaults)?;
    let log = inference_log(&args, tracking.as_ref(), planned.iter().any(|p| p.config.log_inferences))?;
    let cache = args.cache.clone().unwrap_or_else(kiln_serving::default_cache);
    let owns_cache = args.cache.is_none();
    let serving = Serving::new(ServingOptions {
        resolver: tracking.map(Resolver::Remote),
        cache: cache.clone(),
        poll: Duration::from_secs_f64(args.poll_seconds),
        defaults: defaults.clone(),
        log,
    });
    if planned.is_empty() {
        tracing::warn!("no model given: load models through POST /v2/repository/models/<name>/load");
    } else {
        kiln_serving::onnx_runtime().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for p in planned {
        let loading = Instant::now();
        serving
            .load_variant(&p.name, p.role, p.percent, p.source.clone(), p.config)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot serve the {} of '{}' from {}", p.role.as_str(), p.name, p.source))?;
        info!(model = %p.name, role = p.role.as_str(), ms = loading.elapsed().as_millis() as u64, "model ready");
    }
    let state = ServingState { serving: serving.clone(), ready: Arc::new(AtomicBool::new(true)) };
    let app = kiln_server::serving::app(state, &ServingApiOptions { max_body_bytes: args.max_request_body });
    let grpc = kiln_server::serving::grpc::router(serving.clone(), args.max_request_body);
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("cannot listen on {address}"))?;
    let grpc_address = format!("{}:{}", args.host, args.grpc_port);
    let grpc_listener = tokio::net::TcpListener::bind(&grpc_address).await.with_context(|| format!("cannot listen on {grpc_address}"))?;
    info!(
        "kiln serve listening on http://{} and grpc://{} with {} model(s) after {} ms",
        listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
        grpc_listener.local_addr().map(|a| a.to_string()).unwrap_or(grpc_address),
        serving.endpoints().len(),
        started.elapsed().as_millis()
    );
    // Either server stopping (a signal, or a failure) stops the other.
    let grace = Duration::from_secs(args.shutdown_grace);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let http = async {
        let r = kiln_server::serve(listener, app, until_stopped(stopped.clone()), grace).await;
        let _ = stop.send(true);
        r
    };
    let grpc = async {
        let r = kiln_server::serve(grpc_listener, grpc, until_stopped(stopped.clone()), grace).await;
        let _ = stop.send(true);
        r
    };
    let signal = async {
        tokio::select! {
            _ = crate::server::shutdown_signal() => {}
            _ = until_stopped(stopped.clone()) => {}
        }
        let _ = stop.send(true);
    };
    let (result, grpc_result, ()) = tokio::join!(http, grpc, signal);
    let result = result.and(grpc_result);
    serving.close_log().await;
    if owns_cache {
        kiln_serving::clear_cache(&cache);
    }
    result.context("the server failed")?;
    info!("kiln serve stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_name_equals_source() {
        let (name, source) = parse_model("fraud=models:/fraud@champion").unwrap();
        assert_eq!(name, "fraud");
        assert_eq!(source, ModelSource::Uri("models:/fraud@champion".into()));
        assert_eq!(parse_model("m=/tmp/m").unwrap().1, ModelSource::Path("/tmp/m".into()));
        assert!(parse_model("fraud").is_err());
        assert!(parse_model("=x").is_err());
    }

    fn args(models: &[&str], challengers: &[&str]) -> ServeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let mut argv = vec!["kiln".to_string()];
        for m in models {
            argv.extend(["--model".to_string(), m.to_string()]);
        }
        for c in challengers {
            argv.extend(["--challenger".to_string(), c.to_string()]);
        }
        Cli::parse_from(argv).serve
    }

    #[test]
    fn the_file_gives_models_their_own_settings() {
        let file: ServeFile = toml::from_str(
            "[[serve.model]]\nname = \"fraud\"\nsource = \"models:/fraud@champion\"\nmax_batch_size = 8\n\
             max_batch_delay_us = 500\nlog_inferences = true\nshadow = { source = \"models:/fraud/7\", percent = 25 }\n",
        )
        .unwrap();
        let defaults = ModelConfig::default();
        let planned = plan(&args(&["iris=/tmp/iris"], &["iris:10=/tmp/iris2"]), file.serve.model, &defaults).unwrap();
        let seen: Vec<_> = planned.iter().map(|p| (p.name.as_str(), p.role, p.percent)).collect();
        assert_eq!(
            seen,
            vec![("iris", Role::Primary, 100.0), ("fraud", Role::Primary, 100.0), ("iris", Role::Challenger, 10.0), ("fraud", Role::Shadow, 25.0)]
        );
        assert_eq!(planned[1].config.max_batch_size, 8);
        assert_eq!(planned[1].config.max_batch_delay, Duration::from_micros(500));
        assert_eq!(planned[1].config.max_queue, defaults.max_queue);
        assert_eq!(planned[3].config.max_batch_size, 8);
        assert_eq!(planned[0].config.max_batch_size, defaults.max_batch_size);
        assert!(planned[1].config.log_inferences && planned[3].config.log_inferences && !planned[0].config.log_inferences);
    }

    #[test]
    fn the_file_and_flags_are_checked() {
        let twice: ServeFile = toml::from_str("[[serve.model]]\nname = \"iris\"\nsource = \"/tmp/x\"\n").unwrap();
        assert!(plan(&args(&["iris=/tmp/iris"], &[]), twice.serve.model, &ModelConfig::default()).is_err());
        assert!(toml::from_str::<ServeFile>("[[serve.model]]\nname = \"a\"\nsource = \"/x\"\nport = 1\n").is_err());
        assert!(plan(&args(&[], &["nobody:10=/tmp/x"]), Vec::new(), &ModelConfig::default()).is_err());
    }

    #[test]
    fn variants_are_name_percent_equals_source() {
        let (name, percent, source) = parse_variant("challenger", "fraud:10=models:/fraud/4").unwrap();
        assert_eq!((name.as_str(), percent), ("fraud", 10.0));
        assert_eq!(source, ModelSource::Uri("models:/fraud/4".into()));
        assert_eq!(parse_variant("shadow", "fraud:2.5%=/tmp/m").unwrap().1, 2.5);
        assert!(parse_variant("shadow", "fraud=/tmp/m").is_err());
        assert!(parse_variant("shadow", "fraud:150=/tmp/m").is_err());
        assert!(parse_variant("shadow", "fraud:x=/tmp/m").is_err());
    }
}
