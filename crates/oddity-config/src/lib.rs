//! oddity's configuration: one TOML file, merged over the embedded defaults, validated in full.
//!
//! # Loading
//! [`Config::load`] takes the text of a user file (or none), merges it over
//! `config/default.toml` (embedded in the binary), then validates in two phases: each section and
//! each detector is deserialised on its own so that one mistake does not hide the next, then the
//! values are checked together. Every problem is reported at once, in [`ConfigErrors`], each with
//! where it is and the offending value.
//!
//! CLI flags and environment variables override runtime knobs only (listen address, data
//! directory); they are applied by the binary onto the loaded [`Config`].

mod bytes;
mod detectors;
mod error;
mod sections;

use std::path::Path;

pub use bytes::ByteSize;
pub use detectors::{DetectorParams, DetectorSpec, KeyBy, SeverityRule};
pub use error::ConfigErrors;
pub use sections::{FsyncMode, IngestConfig, LogConfig, PipelineConfig, ServerConfig, StoreConfig};

/// The embedded default configuration file.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub ingest: IngestConfig,
    pub log: LogConfig,
    pub pipeline: PipelineConfig,
    pub store: StoreConfig,
    /// Enabled detectors, in file order.
    pub detectors: Vec<DetectorSpec>,
}

impl Config {
    /// The defaults alone.
    pub fn default_config() -> Result<Config, ConfigErrors> {
        Config::load(None)
    }

    /// Merges `user_toml` (if any) over the defaults and validates the result.
    pub fn load(user_toml: Option<&str>) -> Result<Config, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let mut merged: toml::Table = match DEFAULT_TOML.parse() {
            Ok(t) => t,
            Err(e) => {
                errors.push(
                    "default.toml",
                    format!("embedded defaults do not parse: {e}"),
                );
                return Err(errors);
            }
        };
        if let Some(text) = user_toml {
            match text.parse::<toml::Table>() {
                Ok(user) => merge(&mut merged, user),
                Err(e) => {
                    errors.push("file", e.to_string().trim().replace('\n', " "));
                    return Err(errors);
                }
            }
        }
        Config::from_table(merged, &mut errors)
            .filter(|_| errors.is_empty())
            .ok_or(errors)
    }

    /// Loads and validates a file from disk.
    pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::load(Some(&text)),
            Err(e) => {
                let mut errors = ConfigErrors::default();
                errors.push("file", format!("cannot read {}: {e}", path.display()));
                Err(errors)
            }
        }
    }

    fn from_table(mut table: toml::Table, errors: &mut ConfigErrors) -> Option<Config> {
        match table.remove("version") {
            Some(toml::Value::Integer(1)) => {}
            Some(other) => errors.push(
                "version",
                format!("unsupported config version {other}: this build reads version 1"),
            ),
            None => errors.push("version", "missing `version = 1`".into()),
        }
        let server = section::<ServerConfig>(&mut table, "server", errors);
        let ingest = section::<IngestConfig>(&mut table, "ingest", errors);
        let log = section::<LogConfig>(&mut table, "log", errors);
        let pipeline = section::<PipelineConfig>(&mut table, "pipeline", errors);
        let store = section::<StoreConfig>(&mut table, "store", errors);
        let detectors = detectors::parse_all(table.remove("detectors"), errors);
        for key in table.keys() {
            errors.push(
                key,
                "unknown section (expected server, ingest, log, pipeline, store, detectors)".into(),
            );
        }
        for (where_, problem) in [
            server.as_ref().map(ServerConfig::validate),
            ingest.as_ref().map(IngestConfig::validate),
            log.as_ref().map(LogConfig::validate),
            pipeline.as_ref().map(PipelineConfig::validate),
            store.as_ref().map(StoreConfig::validate),
        ]
        .into_iter()
        .flatten()
        .flatten()
        {
            errors.push(where_, problem);
        }
        Some(Config {
            server: server?,
            ingest: ingest?,
            log: log?,
            pipeline: pipeline?,
            store: store?,
            detectors,
        })
    }
}

fn section<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    name: &str,
    errors: &mut ConfigErrors,
) -> Option<T> {
    let value = table
        .remove(name)
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    match value.try_into() {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(name, error::clean(&e.to_string()));
            None
        }
    }
}

/// Merges `over` into `base`: tables key by key, everything else (arrays included) replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_ship_the_seed_rules() {
        let c = Config::default_config().unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8000");
        let ids: Vec<&str> = c.detectors.iter().map(|d| d.id.as_str()).collect();
        for id in [
            "high_frequency_login",
            "repeated_login_failures",
            "high_value_purchase",
            "rapid_successive_purchases",
            "high_api_failure_rate",
            "unusual_time_activity",
            "unusual_location_login",
            "audit_event_burst",
            "audit_new_event_type",
            "audit_many_assets",
            "value_anomaly",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert_eq!(c.ingest.max_body_bytes.0, 16 << 20);
    }

    #[test]
    fn user_file_merges_over_defaults() {
        let c = Config::load(Some(
            "[server]\nlisten = \"0.0.0.0:9000\"\n[log]\nfsync = \"never\"\n",
        ))
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.server.data_dir.to_str(), Some("oddity-data"));
        assert_eq!(c.log.fsync, FsyncMode::Never);
        assert_eq!(c.detectors.len(), 11);
        let only = Config::load(Some(
            "[[detectors]]\nid = \"big\"\nkind = \"threshold\"\nop = \">\"\nvalue = 5\nseverity = \"low\"\ndescription = \"{observed}\"\n",
        ))
        .unwrap();
        assert_eq!(only.detectors.len(), 1);
    }

    #[test]
    fn reports_every_error_at_once() {
        let text = r#"
version = 1
[server]
listen = "nowhere"
[ingest]
max_body_bytes = "12 parsecs"
[pipeline]
batch_events = 0
[bogus]
x = 1
[[detectors]]
id = "a"
kind = "rate"
window = "0s"
severity = "high"
description = "x"
[[detectors]]
id = "a"
kind = "threshold"
op = "=>"
value = 1
severity = "meh"
description = "x"
[[detectors]]
id = "c"
kind = "teleport"
severity = "low"
description = "x"
[[detectors]]
id = "d"
kind = "novelty"
field = "location"
wormup = 5
severity = "low"
description = "unclosed {"
"#;
        let errors = Config::load(Some(text)).unwrap_err();
        let shown = errors.to_string();
        for needle in [
            "server",
            "nowhere",
            "12 parsecs",
            "batch_events",
            "bogus",
            "window must be longer than 0s",
            "set more_than or at_least",
            "duplicate detector id `a`",
            "=>",
            "meh",
            "teleport",
            "wormup",
            "unclosed",
        ] {
            assert!(shown.contains(needle), "missing {needle:?} in:\n{shown}");
        }
        assert!(errors.len() >= 10, "{shown}");
    }

    #[test]
    fn rejects_bad_files() {
        assert!(Config::load(Some("not toml [")).is_err());
        assert!(
            Config::load(Some("version = 2"))
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
        assert!(Config::load_file(Path::new("/nonexistent/oddity.toml")).is_err());
    }
}
