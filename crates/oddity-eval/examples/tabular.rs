//! Runs the tabular evaluator on labelled CSV files (for iteration; the product's entry point is
//! `oddity eval tabular`).
//!
//! ```text
//! cargo run --release -p oddity-eval --example tabular -- \
//!     --data FILE.csv [--data MORE.csv …] [--detector NAME[,NAME…]] [--seeds 0,1,2] [--repeat N] [--json]
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use oddity_eval::tabular::{TabularOptions, registry, run};

/// The `oddity` binary's allocator, so that the timings are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> String {
    let names: Vec<&str> = registry().iter().map(|e| e.name).collect();
    format!(
        "usage: tabular --data FILE.csv [--data FILE.csv …] [--detector NAME[,NAME…]] \
         [--seeds N[,N…]] [--repeat N] [--json]\ndetectors: {}",
        names.join(", ")
    )
}

fn parse_args() -> Result<(TabularOptions, bool), String> {
    let mut opts = TabularOptions::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => opts.data.push(PathBuf::from(value()?)),
            "--detector" => opts
                .detectors
                .extend(value()?.split(',').map(|s| s.trim().to_owned())),
            "--seeds" | "--seed" => {
                for s in value()?.split(',') {
                    let seed = s.trim().parse().map_err(|_| format!("bad seed {s:?}"))?;
                    opts.seeds.push(seed);
                }
            }
            "--repeat" => {
                let v = value()?;
                opts.repeat = v.parse().map_err(|_| format!("bad repeat count {v:?}"))?;
            }
            "--json" => json = true,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if opts.data.is_empty() {
        return Err(usage());
    }
    Ok((opts, json))
}

fn main() -> ExitCode {
    let (opts, json) = match parse_args() {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let text = match run(&opts) {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        Ok(report) => report.to_string(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A reader that closes the pipe early (`| head`) is not an error.
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing the report to standard output: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
