//! `oddity eval tabular` through the real binary: the report, JSON for machines, a reader that
//! stops early, and bad input.

// Test helpers outside #[test] functions: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// 200 rows in a tight cluster and 4 far outliers (label 1), two features.
fn write_csv(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("a,b,label\n");
    for i in 0..200 {
        let x = f64::from(i % 20) * 0.05;
        let y = f64::from(i / 20) * 0.05;
        text.push_str(&format!("{x},{y},0\n"));
    }
    for (x, y) in [(9.0, 9.0), (-8.0, 7.5), (10.0, -9.0), (-9.5, -8.0)] {
        text.push_str(&format!("{x},{y},1\n"));
    }
    let path = dir.join("blobs.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn oddity() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oddity"))
}

/// Runs `oddity eval tabular ARGS --data CSV`, expecting success; its standard output.
fn eval_tabular(args: &[&str], csv: &Path) -> Vec<u8> {
    let out = oddity()
        .args(["eval", "tabular"])
        .args(args)
        .arg("--data")
        .arg(csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn tabular_report_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path());
    let table = String::from_utf8(eval_tabular(&["--detector", "lof,zscore"], &csv)).unwrap();
    assert!(table.contains("blobs"), "{table}");
    assert!(table.contains("lof") && table.contains("zscore"), "{table}");

    let json = eval_tabular(&["--detector", "lof", "--json"], &csv);
    let report: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let lof = &report["results"][0];
    assert_eq!(lof["detector"], "lof");
    assert_eq!(lof["rows"], 204);
    assert_eq!(lof["outliers"], 4);
    // The four far points are the four highest LOF scores.
    assert_eq!(lof["roc_auc"], 1.0, "{lof}");
}

/// `--repeat N` keeps the fastest of N timings; the scores, hence the metrics, are the same.
#[test]
fn tabular_repeat_changes_times_only() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path());
    let report = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&eval_tabular(args, &csv)).unwrap()
    };
    let once = report(&["--detector", "lof,isolation_forest", "--json"]);
    let thrice = report(&[
        "--detector",
        "lof,isolation_forest",
        "--json",
        "--repeat",
        "3",
    ]);
    for i in 0..2 {
        let (a, b) = (&once["results"][i], &thrice["results"][i]);
        assert_eq!(a["detector"], b["detector"]);
        assert_eq!(a["roc_auc"], b["roc_auc"], "{a} vs {b}");
        assert_eq!(a["average_precision"], b["average_precision"]);
        assert!(b["fit_secs"].as_f64().unwrap() >= 0.0, "{b}");
    }
    let out = oddity()
        .args(["eval", "tabular", "--repeat", "0", "--data"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--repeat"), "{stderr}");
}

/// `oddity eval … | head -c 10`: the reader goes away before the report is written; that is
/// not an error (no panic, exit status 0).
#[test]
fn tabular_reader_closing_early_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path());
    let mut child = oddity()
        .args(["eval", "tabular", "--json", "--data"])
        .arg(&csv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn tabular_bad_input_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,label\n1.0,0\n2.0,maybe\n").unwrap();
    let missing = dir.path().join("missing.csv");
    for (path, want) in [(&bad, "label must be 0 or 1"), (&missing, "missing.csv")] {
        let out = oddity()
            .args(["eval", "tabular", "--data"])
            .arg(path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
