//! The worker loop: read a batch, detect, commit atomically, repeat; on any failure, start over
//! from what the store says.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use oddity_config::DetectorSpec;
use oddity_detect::rules::RuleContext;
use oddity_log::{Log, Record};
use oddity_model::{EventId, codec, time::now_ms};
use oddity_store::{CommitBatch, Store, StoreError};

use crate::{Engine, PipelineError, PipelineStatus};

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Most events per batch (one store transaction each).
    pub batch_events: usize,
    /// Settings shared by rule instances.
    pub ctx: RuleContext,
    /// How long a read waits for new records before checking for shutdown.
    pub read_wait: Duration,
    /// How often idle detector instances are swept out of memory.
    pub sweep_every: Duration,
    /// How often detector state is checkpointed to the store (with the results of a batch).
    pub checkpoint_every: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch_events: 50_000,
            ctx: RuleContext::default(),
            read_wait: Duration::from_millis(100),
            sweep_every: Duration::from_secs(60),
            checkpoint_every: Duration::from_secs(5),
        }
    }
}

/// Shutdown signals of the workers.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Finish what the log holds, commit, and stop (ingest has stopped before).
    pub drain: CancellationToken,
    /// Stop after the batch in hand (the rest stays in the log and is replayed on restart).
    pub abort: CancellationToken,
}

/// Everything the workers need, shared by all of them.
#[derive(Debug, Clone)]
pub struct WorkerPool {
    pub log: Arc<dyn Log>,
    pub store: Arc<dyn Store>,
    pub specs: Arc<[DetectorSpec]>,
    pub options: WorkerOptions,
    pub status: Arc<PipelineStatus>,
    pub shutdown: Shutdown,
    /// The runtime the workers block on for log and store calls.
    pub handle: Handle,
}

impl WorkerPool {
    /// Starts one worker thread per log partition. Each returns when drained or aborted, or with
    /// the error that makes going on pointless (another worker owns its partition).
    pub fn spawn(self) -> std::io::Result<Vec<JoinHandle<Result<(), PipelineError>>>> {
        (0..self.log.partitions())
            .map(|partition| {
                let pool = self.clone();
                std::thread::Builder::new()
                    .name(format!("oddity-worker-{partition}"))
                    .spawn(move || supervise(&pool, partition))
            })
            .collect()
    }
}

/// Runs a partition, restarting it from the store after failures, with backoff.
fn supervise(shared: &WorkerPool, partition: u32) -> Result<(), PipelineError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match run(shared, partition) {
            Ok(()) => return Ok(()),
            Err(e @ PipelineError::Store(StoreError::PositionConflict { .. })) => {
                tracing::error!(partition, error = %e, "another worker committed this partition; stopping");
                return Err(e);
            }
            Err(e) => {
                tracing::error!(partition, error = %e, retry_in = ?backoff, "worker failed; restarting from the last commit");
                if let Some(s) = shared.status.partition(partition) {
                    s.restarts.fetch_add(1, Ordering::Relaxed);
                }
                let abort = shared.shutdown.abort.clone();
                let slept = shared.handle.block_on(async {
                    tokio::select! {
                        _ = abort.cancelled() => false,
                        _ = tokio::time::sleep(backoff) => true,
                    }
                });
                if !slept {
                    return Ok(());
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One life of a worker: restore from the store, replay to the last commit, then consume until
/// shutdown or failure.
fn run(shared: &WorkerPool, partition: u32) -> Result<(), PipelineError> {
    let WorkerPool {
        log,
        store,
        handle,
        options,
        shutdown,
        ..
    } = shared;
    let status = shared.status.partition(partition);
    let mut position = handle
        .block_on(store.positions())?
        .get(&partition)
        .copied()
        .unwrap_or(0);
    let saved = handle.block_on(store.load_state(partition))?;
    let mut checkpoint_offset = saved.offset.min(position);
    let end = log.end_offset(partition)?;
    if end < position {
        return Err(PipelineError::LogBehindStore {
            partition,
            log_end: end,
            stored: position,
        });
    }
    let mut engine = Engine::new(shared.specs.clone(), options.ctx, partition);
    let mut models = HashMap::new();
    for (detector, key, version) in Engine::models_needed(&saved.entries) {
        if let Some(m) = handle.block_on(store.detector_model(&detector, &key, Some(version)))? {
            models.insert((detector, key), m.model);
        }
    }
    for e in engine.restore(saved.entries, &models) {
        tracing::warn!(partition, error = %e, "saved detector state dropped: the instance starts afresh");
    }
    log.commit(partition, checkpoint_offset)?;
    if let Some(s) = status {
        s.position.store(position, Ordering::Relaxed);
    }
    let mut reader = handle.block_on(log.reader(partition, checkpoint_offset))?;
    let mut records: Vec<Record> = Vec::with_capacity(options.batch_events);
    // Replay what was committed after the checkpoint, to rebuild the state; its results are
    // already stored, so they are dropped.
    let replay_from = checkpoint_offset;
    while reader.position() < position {
        if shutdown.abort.is_cancelled() {
            return Ok(());
        }
        let want = options
            .batch_events
            .min((position - reader.position()) as usize);
        handle.block_on(reader.read(&mut records, want, options.read_wait))?;
        engine.process(&decode(partition, &records), now_ms());
        // Models fitted again by the replay were stored with the batches that first fitted them.
        engine.take_models();
    }
    tracing::info!(
        partition,
        position,
        replayed = position - replay_from,
        instances = engine.instances(),
        "worker started"
    );
    let mut last_sweep = Instant::now();
    let mut last_checkpoint = Instant::now();
    loop {
        if shutdown.abort.is_cancelled() {
            return Ok(());
        }
        let draining =
            shutdown.drain.is_cancelled() && reader.position() >= log.end_offset(partition)?;
        let n = if draining {
            0
        } else {
            handle.block_on(reader.read(&mut records, options.batch_events, options.read_wait))?
        };
        if last_sweep.elapsed() >= options.sweep_every {
            engine.sweep();
            last_sweep = Instant::now();
        }
        let checkpoint = draining || last_checkpoint.elapsed() >= options.checkpoint_every;
        if n == 0 && !(checkpoint && (engine.has_changes() || checkpoint_offset < position)) {
            if draining {
                tracing::info!(partition, position, "worker drained");
                return Ok(());
            }
            if checkpoint {
                last_checkpoint = Instant::now();
            }
            continue;
        }
        let events = if n == 0 {
            Vec::new()
        } else {
            decode(partition, &records)
        };
        let anomalies = engine.process(&events, now_ms());
        let models = engine.take_models();
        let to_offset = if n == 0 {
            position
        } else {
            records.last().map_or(position, |r| r.offset + 1)
        };
        let (state, state_offset) = if checkpoint {
            (engine.checkpoint(), Some(to_offset))
        } else {
            (Vec::new(), None)
        };
        let (n_events, n_anomalies) = (events.len() as u64, anomalies.len() as u64);
        let arrivals: Vec<i64> = events.iter().map(|e| e.ingested_at).collect();
        let batch = CommitBatch {
            partition,
            from_offset: position,
            to_offset,
            events,
            anomalies,
            state,
            state_offset,
            models,
        };
        handle.block_on(store.commit(batch))?;
        let committed_at = now_ms();
        shared
            .status
            .ack_to_queryable
            .record_all(arrivals.into_iter().map(|t| committed_at - t));
        position = to_offset;
        if checkpoint {
            checkpoint_offset = to_offset;
            last_checkpoint = Instant::now();
            log.commit(partition, checkpoint_offset)?;
        }
        if let Some(s) = status {
            s.position.store(position, Ordering::Relaxed);
            s.events.fetch_add(n_events, Ordering::Relaxed);
            s.anomalies.fetch_add(n_anomalies, Ordering::Relaxed);
            s.last_commit_ms.store(committed_at, Ordering::Relaxed);
            s.instances
                .store(engine.instances() as u64, Ordering::Relaxed);
        }
    }
}

/// Decodes a batch. A record that is not an event (written by a newer version, or damaged past
/// its checksum) is logged and skipped: it must not stop the partition forever.
fn decode(partition: u32, records: &[Record]) -> Vec<oddity_model::Event> {
    records
        .iter()
        .filter_map(
            |r| match codec::decode(&r.payload, EventId::new(partition, r.offset)) {
                Ok(e) => Some(e),
                Err(source) => {
                    let e = PipelineError::Decode {
                        partition,
                        offset: r.offset,
                        source,
                    };
                    tracing::error!(error = %e, "skipping undecodable log record");
                    None
                }
            },
        )
        .collect()
}
