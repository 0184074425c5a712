//! `oddity bench`: an end-to-end load run. It starts the full pipeline in this process on a fresh
//! data directory (or targets `--url`), posts seed-002 signals as NDJSON batches from several
//! connections, and measures what a user cares about:
//!
//! - **ingest**: acknowledged events per second (durable in the log);
//! - **sustained**: events per second through to storage (every event stored, detectors run),
//!   from the first request to the moment the last event is committed;
//! - **ack → queryable**: p50/p99 from acknowledgement to the commit that makes the event and its
//!   anomalies queryable, as recorded by the workers.
//!
//! The load generator runs on the same machine and takes its share of the CPU, so the figures are
//! a lower bound of what the server alone would do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use oddity_config::Config;

use oddity_testing::Emitter;

/// Options of a load run.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Events to send.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Target rate in events/s (0 = as fast as the server acknowledges).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Probability that a signal is anomalous.
    #[arg(long, default_value_t = 0.01)]
    anomaly_rate: f64,
    /// Distinct users the signals come from.
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// Signals per second of event time (timestamps advance by 1/this per signal).
    #[arg(long, default_value_t = 1000)]
    event_time_rate: u64,
    /// Benchmark a running server instead of starting one in this process.
    #[arg(long)]
    url: Option<String>,
    /// Data directory of the in-process server (default: a temporary directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration file of the in-process server.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints the result.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: BenchArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.connections == 0 {
        bail!("--batch and --connections must be at least 1");
    }
    let mut temp = None;
    let mut server = None;
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut config = match &args.config {
                Some(p) => Config::load_file(p).map_err(|e| anyhow::anyhow!("{e}"))?,
                None => Config::default_config().map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            config.server.listen = "127.0.0.1:0"
                .parse()
                .context("loopback address should parse")?;
            config.server.data_dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => {
                    let dir =
                        tempfile::tempdir().context("cannot create a temporary data directory")?;
                    let path = dir.path().to_owned();
                    temp = Some(dir);
                    path
                }
            };
            let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let handle = tokio::spawn(oddity_server::serve(
                config,
                async move {
                    let _ = stop_rx.await;
                },
                move |addr| {
                    let _ = addr_tx.send(addr);
                },
            ));
            let addr = addr_rx
                .await
                .context("the in-process server failed to start")?;
            server = Some((stop_tx, handle));
            format!("http://{addr}")
        }
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let before = health(&http, &base).await?;
    let processed_before = before["events_since_start"].as_u64().unwrap_or(0);

    // Batches are generated on a thread of their own, ahead of the senders.
    let (tx, rx) = mpsc::channel::<String>(args.connections * 4);
    let (events, batch, anomaly_rate) = (args.events, args.batch, args.anomaly_rate);
    let (users, event_time_rate) = (args.users, args.event_time_rate);
    let generator = std::thread::spawn(move || {
        // Event time starts at noon UTC of the current day: the default rules include a 3 AM
        // rule, which would otherwise fire for every user whenever the bench runs at night.
        let now = oddity_model::time::now_ms();
        let start_ts = now - now.rem_euclid(86_400_000) + 12 * 3_600_000;
        let mut emitter =
            Emitter::new(42, start_ts, event_time_rate, anomaly_rate).with_users(users);
        let mut left = events;
        while left > 0 {
            let n = (batch as u64).min(left) as usize;
            let mut body = String::with_capacity(n * 320);
            emitter.fill(&mut body, n);
            if tx.blocking_send(body).is_err() {
                return;
            }
            left -= n as u64;
        }
    });
    let rx = Arc::new(Mutex::new(rx));
    let acked = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..args.connections {
        let (rx, http, acked, throttled, url) = (
            rx.clone(),
            http.clone(),
            acked.clone(),
            throttled.clone(),
            format!("{base}/v1/events"),
        );
        let rate = args.rate;
        senders.push(tokio::spawn(async move {
            loop {
                let Some(body) = rx.lock().await.recv().await else {
                    return Ok::<_, anyhow::Error>(());
                };
                if rate > 0 {
                    // Pace the whole run: wait until this batch is due.
                    let due =
                        Duration::from_secs_f64(acked.load(Ordering::Relaxed) as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                loop {
                    let resp = http
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await
                        .context("request failed")?;
                    match resp.status().as_u16() {
                        202 => {
                            let v: Value = resp.json().await?;
                            acked.fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                            break;
                        }
                        429 | 503 => {
                            throttled.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        s => bail!(
                            "server answered {s}: {}",
                            resp.text().await.unwrap_or_default()
                        ),
                    }
                }
            }
        }));
    }
    let progress = tokio::spawn({
        let acked = acked.clone();
        let total = args.events;
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let n = acked.load(Ordering::Relaxed);
                eprintln!(
                    "  {n}/{total} acknowledged ({:.0} events/s)",
                    n as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    });
    for s in senders {
        s.await.context("sender task failed")??;
    }
    let ingest_elapsed = started.elapsed();
    let _ = generator.join();
    let acked = acked.load(Ordering::Relaxed);
    // Wait until everything acknowledged is committed.
    // (Polls the cheap health endpoint: statistics queries would load the store being measured.)
    loop {
        let h = health(&http, &base).await?;
        let processed = h["events_since_start"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(processed_before);
        if h["lag"] == 0 && processed >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total_elapsed = started.elapsed();
    let final_stats = stats(&http, &base).await?;
    progress.abort();
    let latency = &final_stats["pipeline"]["ack_to_queryable_ms"];
    let result = json!({
        "events": acked,
        "batch": args.batch,
        "connections": args.connections,
        "target_rate": args.rate,
        "ingest_seconds": ingest_elapsed.as_secs_f64(),
        "ingest_events_per_second": acked as f64 / ingest_elapsed.as_secs_f64(),
        "end_to_end_seconds": total_elapsed.as_secs_f64(),
        "sustained_events_per_second": acked as f64 / total_elapsed.as_secs_f64(),
        "ack_to_queryable_ms": { "p50": latency["p50"], "p99": latency["p99"], "max": latency["max"] },
        "anomalies": final_stats["pipeline"]["anomalies_since_start"],
        "throttled_requests": throttled.load(Ordering::Relaxed),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    if let Some((stop, handle)) = server {
        let _ = stop.send(());
        handle.await.context("server task failed")??;
    }
    drop(temp);
    if args.json {
        println!("{result:#}");
    } else {
        println!("events                 {}", result["events"]);
        println!(
            "batch x connections    {} x {}",
            args.batch, args.connections
        );
        println!(
            "ingest (acknowledged)  {:.0} events/s",
            result["ingest_events_per_second"].as_f64().unwrap_or(0.0)
        );
        println!(
            "sustained, to storage  {:.0} events/s",
            result["sustained_events_per_second"]
                .as_f64()
                .unwrap_or(0.0)
        );
        println!(
            "ack -> queryable       p50 {} ms, p99 {} ms, max {} ms",
            fmt_ms(&latency["p50"]),
            fmt_ms(&latency["p99"]),
            fmt_ms(&latency["max"])
        );
        println!("anomalies              {}", result["anomalies"]);
        println!("throttled requests     {}", result["throttled_requests"]);
    }
    Ok(())
}

fn fmt_ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |ms| format!("{ms:.0}"))
}

async fn stats(http: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    get(http, &format!("{base}/v1/stats?hours=1")).await
}

async fn health(http: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    get(http, &format!("{base}/v1/health")).await
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !resp.status().is_success() {
        bail!("GET {url} answered {}", resp.status());
    }
    Ok(resp.json().await?)
}
