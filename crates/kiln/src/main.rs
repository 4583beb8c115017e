//! `kiln`: the command line. Each subcommand is glue over the same services the server uses.

mod config;
mod serve;
mod server;

use clap::{Parser, Subcommand};

/// Kiln runs the machine-learning lifecycle in one binary: experiment tracking and the model
/// registry with MLflow's REST API, and model serving with the Open Inference Protocol.
#[derive(Parser)]
#[command(name = "kiln", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tracking server: MLflow's REST API on SQLite (default) or PostgreSQL.
    ///
    /// Point MLFLOW_TRACKING_URI at it and the mlflow client works unchanged. Settings come from
    /// flags, then KILN_* environment variables, then the [server] table of a TOML file given
    /// with --config, then the defaults shown.
    Server(config::ServerArgs),
    /// Serve ONNX models: the Open Inference Protocol (REST, with binary tensors, as Triton and
    /// KServe speak it) and MLflow's /invocations, with dynamic batching and Prometheus metrics.
    ///
    /// Models come from a tracking server's registry (models:/name@alias, followed as the alias
    /// moves), a run (runs:/...), or a local folder with MLmodel and an ONNX file. ONNX Runtime
    /// is found through ORT_DYLIB_PATH, the system's library folders, or the onnxruntime Python
    /// package (pip install onnxruntime).
    Serve(serve::ServeArgs),
    /// Manage the metadata database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Bring the database schema up to this version of kiln (kiln server also does this at start).
    Upgrade(config::DbArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args.resolve()?).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Db { command: DbCommand::Upgrade(args) } => server::upgrade(args.resolve()?).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
