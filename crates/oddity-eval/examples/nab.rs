//! Runs the NAB evaluation from the command line, for iterating on detectors.
//!
//! ```text
//! cargo run --release -p oddity-eval --example nab -- \
//!     --data ../shared/data/nab/data --windows ../shared/data/nab/labels/combined_windows.json \
//!     --out /tmp/nab-out \
//!     [--detector streaming|zscore|ewma|mad|seasonal|change_point|windowed_gaussian|all] \
//!     [--config '{"kind":"zscore","window":200}'] [--fixed 0.5] [--json] [--files]
//! ```
//! `--detector all` scores every detector (writing each under `<out>/<detector>/`).

use std::path::PathBuf;
use std::process::ExitCode;

use oddity_eval::nab::{self, NabDetector, NabOptions, NabReport};

fn main() -> ExitCode {
    match main_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut data, mut windows, mut out, mut detector) = (None, None, None, "streaming".to_owned());
    let (mut fixed, mut json, mut files) = (nab::DEFAULT_FIXED_THRESHOLD, false, false);
    let mut config: Option<String> = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--windows" => windows = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--detector" => detector = value()?,
            "--config" => config = Some(value()?),
            "--fixed" => fixed = value()?.parse()?,
            "--json" => json = true,
            "--files" => files = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let data = data.ok_or("--data is required")?;
    let windows = windows.ok_or("--windows is required")?;
    let detectors: Vec<NabDetector> = match config {
        Some(json) => vec![NabDetector::Stats(serde_json::from_str(&json)?)],
        None if detector == "all" => NabDetector::all(),
        None => vec![detector.parse()?],
    };
    let several = detectors.len() > 1;
    let mut report: Option<NabReport> = None;
    for d in detectors {
        let mut opts = NabOptions::new(&data, &windows);
        opts.out_dir = match (&out, several) {
            (Some(o), true) => Some(o.join(d.name())),
            (o, false) => o.clone(),
            (None, true) => None,
        };
        opts.reference = !several;
        opts.fixed_threshold = fixed;
        opts.detector = d;
        let r = nab::run(&opts, |p| {
            if p.done == p.total {
                eprintln!("{}: {} files", p.detector, p.total);
            }
        })?;
        match &mut report {
            Some(all) => all.detectors.extend(r.detectors),
            None => report = Some(r),
        }
    }
    let report = report.ok_or("no detector")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        if files {
            for d in &report.detectors {
                println!(
                    "\n{} per file (standard, threshold {}):",
                    d.detector, d.optimized[0].outcome.threshold
                );
                for f in &d.files {
                    println!(
                        "  {:<60} windows {}/{} FP {:>4} raw {:>7.3}",
                        f.file, f.windows_hit, f.windows, f.fp_rows, f.raw
                    );
                }
            }
        }
    }
    Ok(())
}
