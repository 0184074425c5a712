//! Model-based test of the embedded log (vector `disk_v2/tests/model` style): arbitrary sequences
//! of appends, reads, commits, retention and reopens run against the log and against a model
//! (a `Vec` of records per partition); after every step the log's observable behaviour must match.
//!
//! Segments are tiny so that rolls, multi-segment reads and retention happen in most cases.

// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use oddity_log::embedded::{EmbeddedLog, EmbeddedLogConfig, FsyncPolicy};
use oddity_log::{Log, LogError, LogReader};
use proptest::prelude::*;

const MAX_RECORD_BYTES: usize = 48;

#[derive(Debug, Clone)]
enum Action {
    Append {
        partition: u32,
        records: Vec<Vec<u8>>,
    },
    /// Opens a reader at `pick % (len + 2)` (so sometimes one past the end) and reads up to `max`.
    Read {
        partition: u32,
        pick: usize,
        max: usize,
    },
    /// Reads up to `max` with the partition's long-lived reader.
    Tail {
        partition: u32,
        max: usize,
    },
    /// Commits `pick % (len + 2)`.
    Commit {
        partition: u32,
        pick: usize,
    },
    Retain {
        partition: u32,
    },
    Reopen,
}

fn arb_record() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..=MAX_RECORD_BYTES)
}

fn arb_action(partitions: u32) -> impl Strategy<Value = Action> {
    let p = 0..partitions;
    prop_oneof![
        6 => (p.clone(), prop::collection::vec(arb_record(), 0..8))
            .prop_map(|(partition, records)| Action::Append { partition, records }),
        3 => (p.clone(), any::<usize>(), 1..20usize).prop_map(|(partition, pick, max)| Action::Read { partition, pick, max }),
        3 => (p.clone(), 1..20usize).prop_map(|(partition, max)| Action::Tail { partition, max }),
        2 => (p.clone(), any::<usize>()).prop_map(|(partition, pick)| Action::Commit { partition, pick }),
        1 => p.prop_map(|partition| Action::Retain { partition }),
        1 => Just(Action::Reopen),
    ]
}

fn arb_fsync() -> impl Strategy<Value = FsyncPolicy> {
    prop_oneof![
        Just(FsyncPolicy::Always),
        Just(FsyncPolicy::Interval(Duration::from_millis(1))),
        Just(FsyncPolicy::Never),
    ]
}

fn arb_case() -> impl Strategy<Value = (u32, u64, FsyncPolicy, Vec<Action>)> {
    (1..=3u32, 16..400u64, arb_fsync()).prop_flat_map(|(partitions, segment_bytes, fsync)| {
        (
            Just(partitions),
            Just(segment_bytes),
            Just(fsync),
            prop::collection::vec(arb_action(partitions), 0..48),
        )
    })
}

/// The model of one partition.
#[derive(Debug, Default)]
struct ModelPartition {
    records: Vec<Vec<u8>>,
    /// Highest commit ever (retention may have deleted everything below it, across reopens).
    committed_ever: u64,
    /// Highest commit since the last open (what `committed_offset` reports).
    committed: u64,
}

struct Harness {
    config: EmbeddedLogConfig,
    log: Option<EmbeddedLog>,
    model: Vec<ModelPartition>,
    tails: Vec<Box<dyn LogReader>>,
}

impl Harness {
    async fn new(dir: &Path, partitions: u32, segment_bytes: u64, fsync: FsyncPolicy) -> Self {
        let mut config = EmbeddedLogConfig::new(dir, partitions);
        config.segment_bytes = segment_bytes;
        config.fsync = fsync;
        config.max_record_bytes = MAX_RECORD_BYTES;
        config.queue_depth = 4;
        let model = (0..partitions).map(|_| ModelPartition::default()).collect();
        let mut harness = Self {
            config,
            log: None,
            model,
            tails: Vec::new(),
        };
        harness.reopen().await;
        harness
    }

    fn log(&self) -> &EmbeddedLog {
        self.log.as_ref().expect("the log should be open")
    }

    async fn reopen(&mut self) {
        let positions: Vec<u64> = self.tails.iter().map(|t| t.position()).collect();
        self.tails.clear();
        drop(self.log.take());
        self.log = Some(EmbeddedLog::open(self.config.clone()).unwrap());
        for (i, model) in self.model.iter_mut().enumerate() {
            model.committed = 0;
            let start = self.log.as_ref().unwrap().start_offset(i as u32).unwrap();
            let from = positions.get(i).copied().unwrap_or(0).max(start);
            self.tails.push(
                self.log
                    .as_ref()
                    .unwrap()
                    .reader(i as u32, from)
                    .await
                    .unwrap(),
            );
        }
    }

    async fn apply(&mut self, action: &Action) {
        match action {
            Action::Append { partition, records } => {
                let model = &mut self.model[*partition as usize];
                let first = self
                    .log
                    .as_ref()
                    .unwrap()
                    .append(*partition, records.clone())
                    .await
                    .unwrap();
                assert_eq!(
                    first,
                    model.records.len() as u64,
                    "first offset of an append"
                );
                model.records.extend(records.iter().cloned());
            }
            Action::Read {
                partition,
                pick,
                max,
            } => {
                let model = &self.model[*partition as usize];
                let len = model.records.len() as u64;
                let from = (*pick as u64) % (len + 2);
                match self.log().reader(*partition, from).await {
                    Ok(mut reader) => {
                        assert!(from <= len);
                        let mut out = Vec::new();
                        let n = match reader.read(&mut out, *max, Duration::ZERO).await {
                            Ok(n) => n,
                            // Retention runs concurrently on the writer thread after a commit and
                            // may delete the segments ahead of a reader below the commit.
                            Err(LogError::OffsetOutOfRange { start, .. })
                                if from < start && start <= model.committed_ever =>
                            {
                                return;
                            }
                            Err(err) => panic!("read from {from}: {err}"),
                        };
                        assert_eq!(
                            n as u64,
                            (len - from).min(*max as u64),
                            "records read from {from}"
                        );
                        for (i, record) in out.iter().enumerate() {
                            assert_eq!(record.offset, from + i as u64);
                            assert_eq!(record.payload, model.records[record.offset as usize]);
                        }
                        assert_eq!(reader.position(), from + n as u64);
                    }
                    Err(LogError::OffsetOutOfRange { start, end, .. }) => {
                        assert_eq!(end, len);
                        assert!(
                            from > len || (from < start && start <= model.committed_ever),
                            "from {from} start {start}"
                        );
                    }
                    Err(err) => panic!("reader at {from}: {err}"),
                }
            }
            Action::Tail { partition, max } => {
                let p = *partition as usize;
                let len = self.model[p].records.len() as u64;
                let tail = &mut self.tails[p];
                let from = tail.position();
                let mut out = Vec::new();
                match tail.read(&mut out, *max, Duration::ZERO).await {
                    Ok(n) => {
                        assert_eq!(
                            n as u64,
                            (len - from).min(*max as u64),
                            "tail read from {from}"
                        );
                        for (i, record) in out.iter().enumerate() {
                            assert_eq!(record.offset, from + i as u64);
                            assert_eq!(
                                record.payload,
                                self.model[p].records[record.offset as usize]
                            );
                        }
                    }
                    Err(LogError::OffsetOutOfRange { start, .. }) => {
                        assert!(from < start && start <= self.model[p].committed_ever);
                        self.tails[p] = self.log().reader(*partition, start).await.unwrap();
                    }
                    Err(err) => panic!("tail read at {from}: {err}"),
                }
            }
            Action::Commit { partition, pick } => {
                let model = &mut self.model[*partition as usize];
                let len = model.records.len() as u64;
                let offset = (*pick as u64) % (len + 2);
                let result = self.log.as_ref().unwrap().commit(*partition, offset);
                if offset > len {
                    assert!(matches!(result, Err(LogError::OffsetOutOfRange { .. })));
                } else {
                    result.unwrap();
                    model.committed = model.committed.max(offset);
                    model.committed_ever = model.committed_ever.max(offset);
                }
            }
            Action::Retain { partition } => {
                let start = self.log().apply_retention(*partition).await.unwrap();
                let model = &self.model[*partition as usize];
                assert!(start <= model.committed_ever, "retention kept {start}");
                assert_eq!(start, self.log().start_offset(*partition).unwrap());
            }
            Action::Reopen => self.reopen().await,
        }
        self.check_invariants();
    }

    fn check_invariants(&self) {
        let log = self.log();
        for (i, model) in self.model.iter().enumerate() {
            let p = i as u32;
            assert_eq!(
                log.end_offset(p).unwrap(),
                model.records.len() as u64,
                "end offset of {p}"
            );
            assert_eq!(
                log.committed_offset(p).unwrap(),
                model.committed,
                "committed offset of {p}"
            );
            let start = log.start_offset(p).unwrap();
            assert!(
                start <= model.committed_ever,
                "start {start} of {p} beyond every commit"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn model_check((partitions, segment_bytes, fsync, actions) in arb_case()) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let mut harness = Harness::new(dir.path(), partitions, segment_bytes, fsync).await;
            for action in &actions {
                harness.apply(action).await;
            }
            // Everything survives a clean reopen.
            harness.reopen().await;
            harness.check_invariants();
        });
    }
}
