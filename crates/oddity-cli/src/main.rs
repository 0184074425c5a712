//! `oddity`: the one binary. See `oddity --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use oddity_config::Config;

mod bench;
mod eval;

/// mimalloc instead of the system allocator: the hot path (parse, encode, detect, bind) makes
/// many small short-lived allocations across threads, where glibc's malloc showed ~15 % of CPU
/// in profiles of `oddity bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Real-time anomaly detection for event streams and time series.
#[derive(Debug, Parser)]
#[command(name = "oddity", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on this machine: HTTP ingest, the embedded log, workers, detectors, the
    /// embedded store and the query API.
    Serve(ServeArgs),
    /// Validate a configuration file and report every problem at once.
    CheckConfig {
        /// The file to check (merged over the defaults, as `serve` would).
        file: Option<PathBuf>,
    },
    /// Score detectors on labelled data: `nab` (time series) or `tabular` (outlier datasets).
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Load-test the pipeline end to end and report sustained events/s and ack-to-queryable
    /// latency.
    Bench(bench::BenchArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Configuration file, merged over the defaults (see config/default.toml).
    #[arg(long, env = "ODDITY_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8000, or server.listen of the config].
    #[arg(long, env = "ODDITY_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Directory of the log and the store [default: ./oddity-data, or server.data_dir].
    #[arg(long, env = "ODDITY_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::CheckConfig { file } => check_config(file),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(command) => eval::run(command).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ODDITY_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(file: Option<&PathBuf>) -> anyhow::Result<Config> {
    let loaded = match file {
        Some(path) => Config::load_file(path),
        None => Config::default_config(),
    };
    loaded.map_err(|errors| anyhow::anyhow!("{errors}"))
}

fn check_config(file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match load_config(file.as_ref()) {
        Ok(config) => {
            println!(
                "configuration is valid: {} detector(s), listen {}, data dir {}",
                config.detectors.len(),
                config.server.listen,
                config.server.data_dir.display()
            );
            for d in &config.detectors {
                println!("  - {} ({})", d.id, d.params.kind());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprint!("{e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.server.data_dir = dir;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(oddity_server::serve(config, shutdown_signal(), |addr| {
        println!("oddity listening on http://{addr}");
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    wait_for_signal().await;
    tracing::info!("signal received; shutting down gracefully (send it again to exit at once)");
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
