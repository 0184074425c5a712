//! Behaviour of the embedded log through the `Log` trait: errors, concurrency, retention,
//! shutdown.

// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use oddity_log::embedded::{EmbeddedLog, EmbeddedLogConfig, FsyncPolicy};
use oddity_log::{Log, LogError, Record};

fn config(dir: &std::path::Path, partitions: u32) -> EmbeddedLogConfig {
    EmbeddedLogConfig::new(dir, partitions)
}

fn payloads(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

async fn read_all(log: &EmbeddedLog, partition: u32, from: u64) -> Vec<Record> {
    let mut reader = log.reader(partition, from).await.unwrap();
    let mut all = Vec::new();
    let mut out = Vec::new();
    while reader.read(&mut out, 7, Duration::ZERO).await.unwrap() > 0 {
        all.append(&mut out);
    }
    all
}

#[tokio::test]
async fn append_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(config(dir.path(), 2)).unwrap();
    assert_eq!(log.partitions(), 2);
    assert_eq!(log.append(1, payloads("a", 3)).await.unwrap(), 0);
    assert_eq!(log.append(1, payloads("b", 2)).await.unwrap(), 3);
    assert_eq!(
        log.append(1, vec![]).await.unwrap(),
        5,
        "an empty batch returns the end offset"
    );
    assert_eq!(log.end_offset(1).unwrap(), 5);
    assert_eq!(log.end_offset(0).unwrap(), 0);
    let records = read_all(&log, 1, 2).await;
    let got: Vec<(u64, Vec<u8>)> = records.into_iter().map(|r| (r.offset, r.payload)).collect();
    assert_eq!(
        got,
        vec![
            (2, b"a-2".to_vec()),
            (3, b"b-0".to_vec()),
            (4, b"b-1".to_vec())
        ]
    );
    assert!(
        read_all(&log, 1, 5).await.is_empty(),
        "a reader may start at the end offset"
    );
}

#[tokio::test]
async fn partition_count_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedLog::open(config(dir.path(), 3)).unwrap());
    let err = EmbeddedLog::open(config(dir.path(), 4)).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::PartitionMismatch {
                found: 3,
                configured: 4,
                ..
            }
        ),
        "{err}"
    );
    EmbeddedLog::open(config(dir.path(), 3)).unwrap();
}

#[tokio::test]
async fn unknown_partition_is_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(config(dir.path(), 2)).unwrap();
    let is_missing = |err: LogError| {
        matches!(
            err,
            LogError::NoSuchPartition {
                partition: 2,
                partitions: 2
            }
        )
    };
    assert!(is_missing(
        log.append(2, payloads("x", 1)).await.unwrap_err()
    ));
    assert!(is_missing(log.reader(2, 0).await.unwrap_err()));
    assert!(is_missing(log.end_offset(2).unwrap_err()));
    assert!(is_missing(log.commit(2, 0).unwrap_err()));
    assert!(is_missing(log.committed_offset(2).unwrap_err()));
}

#[tokio::test]
async fn reading_outside_the_log_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(config(dir.path(), 1)).unwrap();
    log.append(0, payloads("x", 4)).await.unwrap();
    let err = log.reader(0, 5).await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::OffsetOutOfRange {
                partition: 0,
                offset: 5,
                start: 0,
                end: 4
            }
        ),
        "{err}"
    );
    assert!(matches!(
        log.commit(0, 5).unwrap_err(),
        LogError::OffsetOutOfRange { offset: 5, .. }
    ));
}

#[tokio::test]
async fn oversized_and_empty_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 1);
    config.max_record_bytes = 10;
    let log = EmbeddedLog::open(config).unwrap();
    let err = log
        .append(0, vec![vec![1; 10], vec![1; 11]])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::RecordTooLarge { len: 11, limit: 10 }),
        "{err}"
    );
    let err = log.append(0, vec![vec![1], vec![]]).await.unwrap_err();
    assert!(matches!(err, LogError::EmptyRecord { index: 1 }), "{err}");
    assert_eq!(
        log.end_offset(0).unwrap(),
        0,
        "a refused batch writes nothing"
    );
    assert_eq!(log.append(0, vec![vec![1; 10]]).await.unwrap(), 0);
}

#[tokio::test]
async fn reader_waits_for_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(config(dir.path(), 1)).unwrap());
    let mut reader = log.reader(0, 0).await.unwrap();
    let mut out = Vec::new();
    assert_eq!(
        reader
            .read(&mut out, 10, Duration::from_millis(20))
            .await
            .unwrap(),
        0
    );
    let writer = Arc::clone(&log);
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(0, payloads("late", 2)).await.unwrap()
    });
    let n = reader.read(&mut out, 10, Duration::MAX).await.unwrap();
    assert!(n >= 1);
    assert_eq!(out[0].payload, b"late-0");
    append.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_get_dense_disjoint_offsets() {
    const TASKS: usize = 8;
    const BATCHES: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 1);
    config.segment_bytes = 4096;
    config.queue_depth = 4;
    let log = Arc::new(EmbeddedLog::open(config).unwrap());
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for batch in 0..BATCHES {
                let size = 1 + (task + batch) % 5;
                let records: Vec<Vec<u8>> = (0..size)
                    .map(|i| format!("{task}/{batch}/{i}").into_bytes())
                    .collect();
                let first = log.append(0, records.clone()).await.unwrap();
                offsets.push((first, records));
            }
            offsets
        }));
    }
    let mut expected = std::collections::BTreeMap::new();
    for task in tasks {
        for (first, records) in task.await.unwrap() {
            for (i, record) in records.into_iter().enumerate() {
                assert!(
                    expected.insert(first + i as u64, record).is_none(),
                    "offset given twice"
                );
            }
        }
    }
    let total = expected.len() as u64;
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "offsets are dense"
    );
    assert_eq!(log.end_offset(0).unwrap(), total);
    let read = read_all(&log, 0, 0).await;
    assert_eq!(read.len() as u64, total);
    let mut seen = HashSet::new();
    for (i, record) in read.iter().enumerate() {
        assert_eq!(record.offset, i as u64);
        assert_eq!(&record.payload, &expected[&record.offset]);
        assert!(seen.insert(record.payload.clone()));
    }
    // Each task's batches are in its own order.
    for task in 0..TASKS {
        let prefix = format!("{task}/");
        let order: Vec<usize> = read
            .iter()
            .filter_map(|r| String::from_utf8(r.payload.clone()).ok())
            .filter(|p| p.starts_with(&prefix))
            .map(|p| p.split('/').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "task {task} out of order"
        );
    }
}

#[tokio::test]
async fn retention_deletes_segments_below_the_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 1);
    config.segment_bytes = 100; // 5 records of 12 bytes per segment
    let log = EmbeddedLog::open(config.clone()).unwrap();
    for _ in 0..5 {
        log.append(0, payloads("rec", 6)).await.unwrap(); // "rec-N": 5 bytes + 8 of header
    }
    let segments = |dir: &std::path::Path| std::fs::read_dir(dir.join("p0")).unwrap().count();
    let before = segments(dir.path());
    assert!(before >= 4, "{before} segments");
    assert_eq!(log.start_offset(0).unwrap(), 0);
    log.commit(0, 17).unwrap();
    assert_eq!(log.committed_offset(0).unwrap(), 17);
    let start = log.apply_retention(0).await.unwrap();
    assert!(start > 0 && start <= 17, "start {start}");
    assert_eq!(log.start_offset(0).unwrap(), start);
    assert!(segments(dir.path()) < before);
    let err = log.reader(0, start - 1).await.unwrap_err();
    assert!(
        matches!(err, LogError::OffsetOutOfRange { start: s, .. } if s == start),
        "{err}"
    );
    let records = read_all(&log, 0, start).await;
    assert_eq!(records.first().unwrap().offset, start);
    assert_eq!(records.last().unwrap().offset, 29);
    // A lower commit is ignored; the active segment is never deleted.
    log.commit(0, 3).unwrap();
    assert_eq!(log.committed_offset(0).unwrap(), 17);
    log.commit(0, 30).unwrap();
    let start = log.apply_retention(0).await.unwrap();
    assert!(start <= 30);
    assert!(segments(dir.path()) >= 1);
    log.append(0, payloads("after", 1)).await.unwrap();
    // Reopening keeps the retained range.
    drop(log);
    let log = EmbeddedLog::open(config).unwrap();
    assert_eq!(log.start_offset(0).unwrap(), start);
    assert_eq!(log.end_offset(0).unwrap(), 31);
    assert_eq!(log.committed_offset(0).unwrap(), 0);
}

#[tokio::test]
async fn close_flushes_and_refuses_further_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 2);
    config.fsync = FsyncPolicy::Interval(Duration::from_millis(5));
    let log = EmbeddedLog::open(config.clone()).unwrap();
    log.append(0, payloads("x", 3)).await.unwrap();
    let mut reader = log.reader(0, 0).await.unwrap();
    log.close().await;
    log.close().await;
    assert!(matches!(
        log.append(0, payloads("y", 1)).await.unwrap_err(),
        LogError::Closed
    ));
    let mut out = Vec::new();
    assert!(matches!(
        reader
            .read(&mut out, 10, Duration::from_secs(5))
            .await
            .unwrap_err(),
        LogError::Closed
    ));
    assert!(matches!(
        log.reader(0, 0).await.unwrap_err(),
        LogError::Closed
    ));
    drop(log);
    let log = EmbeddedLog::open(config).unwrap();
    assert_eq!(log.end_offset(0).unwrap(), 3);
}

#[tokio::test]
async fn every_fsync_policy_persists_across_reopen() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(1)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), 1);
        config.fsync = fsync;
        config.segment_bytes = 64;
        let log = EmbeddedLog::open(config.clone()).unwrap();
        log.append(0, payloads("p", 20)).await.unwrap();
        drop(log);
        let log = EmbeddedLog::open(config).unwrap();
        let records = read_all(&log, 0, 0).await;
        assert_eq!(records.len(), 20, "{fsync:?}");
        assert_eq!(records[19].payload, b"p-19");
    }
}

#[tokio::test]
async fn reader_seeks_with_the_sparse_index_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 1);
    config.segment_bytes = 1 << 20;
    let log = EmbeddedLog::open(config.clone()).unwrap();
    let big: Vec<Vec<u8>> = (0..2_000u32)
        .map(|i| format!("{i:0>1000}").into_bytes())
        .collect();
    for chunk in big.chunks(300) {
        log.append(0, chunk.to_vec()).await.unwrap();
    }
    check_seeks(&log, &big).await;
    drop(log);
    let log = EmbeddedLog::open(config).unwrap();
    check_seeks(&log, &big).await;
}

async fn check_seeks(log: &EmbeddedLog, big: &[Vec<u8>]) {
    for from in [0u64, 1, 63, 64, 65, 1000, 1047, 1999, 2000] {
        let mut reader = log.reader(0, from).await.unwrap();
        let mut out = Vec::new();
        let n = reader.read(&mut out, 3, Duration::ZERO).await.unwrap();
        assert_eq!(n, (2000 - from as usize).min(3));
        for (i, record) in out.iter().enumerate() {
            assert_eq!(record.offset, from + i as u64);
            assert_eq!(record.payload, big[record.offset as usize]);
        }
        assert_eq!(reader.position(), from + n as u64);
    }
}
