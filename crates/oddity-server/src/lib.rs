//! The composition root: turns a [`Config`] into running components and stops them in order.
//!
//! Only this crate (and the binary) know which backends are in use; everything else sees the
//! `Log` and `Store` traits.
//!
//! # Lifecycle of `serve`
//! 1. Open the embedded log (recovering a torn tail) and the SQLite store (migrating it).
//! 2. Start one worker thread per partition, a retention task, and the HTTP listener.
//! 3. On the shutdown signal: stop accepting requests and let in-flight ones finish (ingest
//!    stops), tell workers to drain what the log holds and commit, wait for them up to
//!    `server.shutdown_timeout` (then abort them: what is left stays in the log and is replayed
//!    at the next start), close the log. Returns `Ok` when everything stopped cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use oddity_api::AppState;
use oddity_config::{Config, FsyncMode};
use oddity_detect::rules::RuleContext;
use oddity_log::Log;
use oddity_log::embedded::{EmbeddedLog, EmbeddedLogConfig, FsyncPolicy};
use oddity_model::time::now_ms;
use oddity_pipeline::{PipelineStatus, Shutdown, WorkerOptions, WorkerPool};
use oddity_store::sqlite::{SqliteOptions, SqliteStore};
use oddity_store::{ModelStore, Store};

/// Opens the embedded log under `config.server.data_dir/log`.
pub fn open_log(config: &Config) -> anyhow::Result<EmbeddedLog> {
    let dir = config.server.data_dir.join("log");
    let mut log_config = EmbeddedLogConfig::new(&dir, config.log.effective_partitions());
    log_config.segment_bytes = config.log.segment_bytes.0;
    log_config.fsync = match config.log.fsync {
        FsyncMode::Always => FsyncPolicy::Always,
        FsyncMode::Interval => FsyncPolicy::Interval(config.log.fsync_interval),
        FsyncMode::Never => FsyncPolicy::Never,
    };
    EmbeddedLog::open(log_config)
        .with_context(|| format!("cannot open the log in {}", dir.display()))
}

/// Opens the embedded store `config.server.data_dir/oddity.db`.
pub fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    let path = config.server.data_dir.join("oddity.db");
    SqliteStore::open(&path, SqliteOptions::default())
        .with_context(|| format!("cannot open the store {}", path.display()))
}

/// Runs the whole pipeline until `shutdown` resolves. `on_listening` is told the bound address
/// (useful with port 0).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let started = Instant::now();
    let cfg = config.clone();
    let (log, store) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((open_log(&cfg)?, open_store(&cfg)?))
    })
    .await
    .context("startup task failed")??;
    let log = Arc::new(log);
    let log_dyn: Arc<dyn Log> = log.clone();
    // One SQLite store serves both the event side and the per-series models.
    let store = Arc::new(store);
    let models: Arc<dyn ModelStore> = store.clone();
    let store: Arc<dyn Store> = store;
    tracing::info!(
        data_dir = %config.server.data_dir.display(),
        partitions = log.partitions(),
        detectors = config.detectors.len(),
        opened_in = ?started.elapsed(),
        "log and store open"
    );

    let status = Arc::new(PipelineStatus::new(log.partitions()));
    let workers_shutdown = Shutdown::default();
    let options = WorkerOptions {
        batch_events: config.pipeline.batch_events,
        ctx: RuleContext {
            lateness_ms: config.pipeline.lateness.as_millis() as i64,
        },
        checkpoint_every: config.pipeline.checkpoint_interval,
        ..WorkerOptions::default()
    };
    let specs: Arc<[oddity_config::DetectorSpec]> = config.detectors.clone().into();
    let workers = WorkerPool {
        log: log_dyn.clone(),
        store: store.clone(),
        specs: specs.clone(),
        options,
        status: status.clone(),
        shutdown: workers_shutdown.clone(),
        handle: tokio::runtime::Handle::current(),
    }
    .spawn()
    .context("cannot start worker threads")?;

    let stop_background = CancellationToken::new();
    let retention = tokio::spawn(retention_loop(
        store.clone(),
        config.clone(),
        stop_background.clone(),
    ));

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener
        .local_addr()
        .context("listener has no local address")?;
    let state = AppState {
        log: log_dyn.clone(),
        store: store.clone(),
        limits: Arc::new(config.ingest.clone()),
        started,
        status: status.clone(),
        models,
        series_metrics: Arc::new(oddity_api::series_metrics::SeriesMetrics::new()),
        detectors: specs,
    };
    let app = oddity_api::app(state);
    on_listening(addr);
    tracing::info!(%addr, "listening");

    let http_stop = CancellationToken::new();
    let http = tokio::spawn({
        let token = http_stop.clone();
        async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
        }
    });
    shutdown.await;
    tracing::info!("shutting down: stopping intake");
    http_stop.cancel();
    let deadline = config.server.shutdown_timeout;
    match tokio::time::timeout(deadline, http).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "http server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "http task failed"),
        Err(_) => tracing::warn!(?deadline, "in-flight requests did not finish in time"),
    }

    let lag: u64 = (0..log_dyn.partitions())
        .map(|p| {
            let done = status
                .partition(p)
                .map_or(0, |s| s.position.load(std::sync::atomic::Ordering::Relaxed));
            log_dyn.end_offset(p).unwrap_or(0).saturating_sub(done)
        })
        .sum();
    tracing::info!(lag, "draining workers");
    workers_shutdown.drain.cancel();
    let joined = tokio::task::spawn_blocking(move || {
        workers.into_iter().map(|w| w.join()).collect::<Vec<_>>()
    });
    let abort = workers_shutdown.abort.clone();
    let results = match tokio::time::timeout(deadline, joined).await {
        Ok(r) => r.context("worker join task failed")?,
        Err(_) => {
            tracing::warn!(
                ?deadline,
                "workers did not drain in time; stopping them (the rest is replayed at next start)"
            );
            abort.cancel();
            Vec::new()
        }
    };
    stop_background.cancel();
    let _ = retention.await;
    log.close().await;
    let mut failed = 0;
    for r in results {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                tracing::error!(error = %e, "worker stopped with an error");
            }
            Err(_) => {
                failed += 1;
                tracing::error!("worker thread panicked");
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} worker(s) failed");
    tracing::info!(
        events = status.events(),
        anomalies = status.anomalies(),
        "stopped cleanly"
    );
    Ok(())
}

/// Deletes data older than `store.retention`, every `store.retention_interval`.
async fn retention_loop(store: Arc<dyn Store>, config: Config, stop: CancellationToken) {
    let retention = config.store.retention;
    if retention.is_zero() {
        return;
    }
    let mut tick =
        tokio::time::interval(config.store.retention_interval.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let cutoff = now_ms() - retention.as_millis() as i64;
        match store.purge(cutoff).await {
            Ok(r) if r.events + r.anomalies > 0 => tracing::info!(
                events = r.events,
                anomalies = r.anomalies,
                "retention deleted old data"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
    }
}
