//! `kiln serve`: ONNX models behind the Open Inference Protocol and MLflow's `/invocations`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use kiln_server::serving::{ServingApiOptions, ServingState};
use kiln_serving::{ModelConfig, ModelSource, Role, Serving, ServingOptions, TrackingClient};
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
    let models = args.models.iter().map(|m| parse_model(m)).collect::<Result<Vec<_>>>()?;
    let mut variants = Vec::new();
    for (flag, role, list) in [("challenger", Role::Challenger, &args.challengers), ("shadow", Role::Shadow, &args.shadows)] {
        for text in list {
            let (name, percent, source) = parse_variant(flag, text)?;
            if !models.iter().any(|(m, _)| *m == name) {
                bail!("--{flag} {text} names the model '{name}', which no --model serves");
            }
            variants.push((name, role, percent, source));
        }
    }
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
    };
    let cache = args.cache.clone().unwrap_or_else(kiln_serving::default_cache);
    let owns_cache = args.cache.is_none();
    let serving = Serving::new(ServingOptions {
        tracking,
        cache: cache.clone(),
        poll: Duration::from_secs_f64(args.poll_seconds),
        defaults: defaults.clone(),
    });
    if models.is_empty() {
        tracing::warn!("no --model given: load models through POST /v2/repository/models/<name>/load");
    } else {
        kiln_serving::onnx_runtime().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for (name, source) in models {
        let loading = Instant::now();
        serving
            .load(&name, source.clone(), defaults.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot serve the model '{name}' from {source}"))?;
        info!(model = %name, ms = loading.elapsed().as_millis() as u64, "model ready");
    }
    for (name, role, percent, source) in variants {
        serving
            .load_variant(&name, role, percent, source.clone(), defaults.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot serve the {} of '{name}' from {source}", role.as_str()))?;
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
