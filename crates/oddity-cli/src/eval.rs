//! `oddity eval`: score detectors on labelled data (NAB time series, tabular outlier sets).

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use oddity_detect::stats::StatsConfig;
use oddity_eval::nab::{self, NabDetector, NabOptions};
use oddity_eval::tabular::{self, TabularOptions};

/// What to evaluate.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Run a streaming detector over the NAB corpus, write its scores and print the NAB scores
    /// (standard, reward_low_FP_rate, reward_low_FN_rate) at the best corpus-wide threshold and
    /// at the product's fixed alerting threshold, next to NAB's windowed-Gaussian baseline.
    Nab {
        /// The data directory (`<category>/<file>.csv` with columns timestamp,value).
        #[arg(long)]
        data: PathBuf,
        /// The windows file (NAB's `labels/combined_windows.json`).
        #[arg(long)]
        windows: PathBuf,
        /// Where to write `<category>/<file>.csv` with timestamp,value,anomaly_score.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A detector configuration file (TOML or JSON, e.g. `kind = "zscore"` and its
        /// parameters); the default streaming detector when absent.
        #[arg(long, conflicts_with = "detector")]
        config: Option<PathBuf>,
        /// A detector by name with its defaults: streaming, zscore, ewma, mad, seasonal,
        /// change_point, windowed_gaussian, or all.
        #[arg(long)]
        detector: Option<String>,
        /// The alerting threshold fixed in advance.
        #[arg(long, default_value_t = nab::DEFAULT_FIXED_THRESHOLD)]
        fixed_threshold: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fit and score outlier detectors on labelled CSV files (header row, label column last,
    /// 1 = outlier) and print ROC-AUC, average precision, fit and score time per detector.
    Tabular {
        /// Labelled CSV files.
        #[arg(long, required = true, num_args = 1..)]
        data: Vec<PathBuf>,
        /// Detectors to run (default: all): isolation_forest, lof, zscore, one_class_svm,
        /// half_space_trees, ensemble; repeated or comma-separated.
        #[arg(long, value_delimiter = ',')]
        detector: Vec<String>,
        /// Seeds for seeded detectors (scores are averaged over them); repeated or
        /// comma-separated.
        #[arg(long, value_delimiter = ',')]
        seed: Vec<u64>,
        /// Time every fit and score this many times and report the fastest (scores do not
        /// change): the first fits of a process pay for touching its memory, several times the
        /// steady cost on small data.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
        repeat: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an evaluation.
pub fn run(command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Nab {
            data,
            windows,
            out,
            config,
            detector,
            fixed_threshold,
            json,
        } => {
            let detectors = match (config, detector.as_deref()) {
                (Some(path), _) => vec![NabDetector::Stats(read_detector_config(&path)?)],
                (None, Some("all")) => NabDetector::all(),
                (None, Some(name)) => vec![name.parse().map_err(|e| anyhow::anyhow!("{e}"))?],
                (None, None) => vec![NabDetector::Stats(StatsConfig::default())],
            };
            let several = detectors.len() > 1;
            let mut report: Option<nab::NabReport> = None;
            for d in detectors {
                let mut opts = NabOptions::new(&data, &windows);
                opts.out_dir = out
                    .as_ref()
                    .map(|o| if several { o.join(d.name()) } else { o.clone() });
                opts.reference = !several;
                opts.fixed_threshold = fixed_threshold;
                opts.detector = d;
                let mut bar = Progress::new();
                let r = nab::run(&opts, |p| bar.show(p.detector, p.done, p.total))?;
                bar.finish();
                match &mut report {
                    Some(all) => all.detectors.extend(r.detectors),
                    None => report = Some(r),
                }
            }
            let report = report.context("no detector was run")?;
            print_report(&report, json)?;
        }
        EvalCommand::Tabular {
            data,
            detector,
            seed,
            repeat,
            json,
        } => {
            let opts = TabularOptions {
                data,
                detectors: detector,
                seeds: seed,
                repeat: repeat as usize,
            };
            print_report(&tabular::run(&opts)?, json)?;
        }
    }
    Ok(())
}

/// Writes a report to standard output, as a table for people or as JSON. A reader that closed
/// the pipe early (`| head`) is not an error: `print!` would panic there.
fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(report)? + "\n"
    } else {
        report.to_string()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing the report to standard output"))
        }
        _ => Ok(()),
    }
}

/// Reads a detector configuration from TOML or JSON.
fn read_detector_config(path: &PathBuf) -> anyhow::Result<StatsConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: StatsConfig = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid detector configuration", path.display()))?
    } else {
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid detector configuration", path.display()))?
    };
    let problems = config.validate();
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("; "));
    }
    Ok(config)
}

/// A one-line progress bar on stderr (only when it is a terminal).
struct Progress {
    tty: bool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, what: &str, done: usize, total: usize) {
        if !self.tty || total == 0 {
            return;
        }
        let width = 30;
        let filled = done * width / total;
        eprint!(
            "\r{what:<18} [{}{}] {done}/{total} files",
            "=".repeat(filled),
            " ".repeat(width - filled)
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&mut self) {
        if self.tty {
            eprintln!();
        }
    }
}
