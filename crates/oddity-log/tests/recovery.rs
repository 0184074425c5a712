//! Recovery on open: a torn tail of a partition's last segment is truncated and appends continue
//! after the good prefix; damage anywhere else is `Corrupt`.

// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oddity_log::embedded::{EmbeddedLog, EmbeddedLogConfig};
use oddity_log::{Log, LogError};

const RECORDS: u64 = 10;

fn config(dir: &Path, segment_bytes: u64) -> EmbeddedLogConfig {
    let mut config = EmbeddedLogConfig::new(dir, 1);
    config.segment_bytes = segment_bytes;
    config
}

fn record(i: u64) -> Vec<u8> {
    format!("record-{i:03}").into_bytes() // 10 bytes: frames of 18 bytes
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("p0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

fn append_to(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

async fn write_log(dir: &Path, segment_bytes: u64) {
    let log = EmbeddedLog::open(config(dir, segment_bytes)).unwrap();
    for i in 0..RECORDS {
        log.append(0, vec![record(i)]).await.unwrap();
    }
}

async fn read_payloads(log: &EmbeddedLog) -> Vec<Vec<u8>> {
    let mut reader = log.reader(0, log.start_offset(0).unwrap()).await.unwrap();
    let (mut all, mut out) = (Vec::new(), Vec::new());
    while reader.read(&mut out, 100, Duration::ZERO).await.unwrap() > 0 {
        all.extend(out.drain(..).map(|r| r.payload));
    }
    all
}

struct DamageCase {
    name: &'static str,
    /// Damages the last segment file.
    damage: fn(&Path),
    /// Records left after recovery.
    kept: u64,
}

fn cases() -> Vec<DamageCase> {
    vec![
        DamageCase {
            name: "no damage",
            damage: |_| {},
            kept: RECORDS,
        },
        DamageCase {
            name: "torn length",
            damage: |p| append_to(p, &[5, 0, 0]),
            kept: RECORDS,
        },
        DamageCase {
            name: "torn crc",
            damage: |p| append_to(p, &[5, 0, 0, 0, 1, 2]),
            kept: RECORDS,
        },
        DamageCase {
            name: "torn payload",
            damage: |p| append_to(p, &frame(b"a longer payload that was cut")[..20]),
            kept: RECORDS,
        },
        DamageCase {
            name: "crc mismatch in an extra frame",
            damage: |p| {
                let mut bad = frame(b"garbage!");
                bad[4] ^= 1;
                append_to(p, &bad);
            },
            kept: RECORDS,
        },
        DamageCase {
            name: "crc mismatch in the last record",
            damage: |p| {
                let mut bytes = fs::read(p).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 0xff;
                fs::write(p, bytes).unwrap();
            },
            kept: RECORDS - 1,
        },
        DamageCase {
            name: "zero-filled tail",
            damage: |p| append_to(p, &[0; 4096]),
            kept: RECORDS,
        },
        DamageCase {
            name: "huge length",
            damage: |p| append_to(p, &[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1, 2, 3]),
            kept: RECORDS,
        },
        DamageCase {
            name: "empty segment after the last",
            damage: |p| {
                let next = p.with_file_name(format!("{RECORDS:020}.seg"));
                fs::File::create(next).unwrap();
            },
            kept: RECORDS,
        },
    ]
}

#[tokio::test]
async fn torn_tails_are_truncated_and_appends_continue() {
    // One segment, then segments of 2 records (frames of 18 bytes).
    for segment_bytes in [1 << 20, 40] {
        for case in cases() {
            let name = format!("{} (segment_bytes {segment_bytes})", case.name);
            let dir = tempfile::tempdir().unwrap();
            write_log(dir.path(), segment_bytes).await;
            let last = segments(dir.path()).pop().unwrap();
            (case.damage)(&last);

            let log = EmbeddedLog::open(config(dir.path(), segment_bytes)).unwrap();
            assert_eq!(log.end_offset(0).unwrap(), case.kept, "{name}");
            let expected: Vec<Vec<u8>> = (0..case.kept).map(record).collect();
            assert_eq!(read_payloads(&log).await, expected, "{name}");
            assert_eq!(
                log.append(0, vec![b"next".to_vec()]).await.unwrap(),
                case.kept,
                "{name}"
            );
            drop(log);

            let log = EmbeddedLog::open(config(dir.path(), segment_bytes)).unwrap();
            assert_eq!(
                log.end_offset(0).unwrap(),
                case.kept + 1,
                "{name}: reopen after append"
            );
            let payloads = read_payloads(&log).await;
            assert_eq!(payloads.last().unwrap(), b"next", "{name}");
            assert_eq!(payloads.len() as u64, case.kept + 1, "{name}");
        }
    }
}

#[tokio::test]
async fn an_empty_only_segment_is_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1 << 20).await;
    let only = segments(dir.path()).pop().unwrap();
    fs::write(&only, [0u8; 3]).unwrap();
    let log = EmbeddedLog::open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(log.end_offset(0).unwrap(), 0);
    assert_eq!(
        fs::metadata(&only).unwrap().len(),
        0,
        "the torn bytes are truncated"
    );
    assert_eq!(log.append(0, vec![record(0)]).await.unwrap(), 0);
}

#[tokio::test]
async fn damage_in_a_sealed_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40).await;
    let first = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    bytes[10] ^= 0xff; // inside the first record's payload
    fs::write(&first, bytes).unwrap();
    let err = EmbeddedLog::open(config(dir.path(), 40)).unwrap_err();
    match &err {
        LogError::Corrupt {
            path,
            position,
            reason,
        } => {
            assert_eq!(path, &first);
            assert_eq!(*position, 0);
            assert!(reason.contains("crc mismatch"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains(&first.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40).await;
    let all = segments(dir.path());
    assert!(all.len() >= 3);
    fs::remove_file(&all[1]).unwrap();
    let err = EmbeddedLog::open(config(dir.path(), 40)).unwrap_err();
    assert!(
        matches!(&err, LogError::Corrupt { path, .. } if path == &all[2]),
        "{err}"
    );
}
