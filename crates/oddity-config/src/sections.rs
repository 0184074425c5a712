//! The plain sections of the configuration. Defaults live in `config/default.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::ByteSize;

/// `[server]`: where the API listens and where data lives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTP API.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Directory of the log and the store.
    pub data_dir: PathBuf,
    /// Longest a graceful shutdown may take.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!("`{s}` is not an address like 127.0.0.1:8000"))
    })
}

impl ServerConfig {
    pub(crate) fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e = vec![];
        if self.data_dir.as_os_str().is_empty() {
            e.push(("server.data_dir", "must not be empty".into()));
        }
        e
    }
}

/// `[ingest]`: limits on what clients may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body.
    pub max_body_bytes: ByteSize,
    /// Most events per request.
    pub max_batch_events: usize,
    /// Longest entity in bytes.
    pub max_entity_bytes: usize,
    /// Longest type in bytes.
    pub max_type_bytes: usize,
    /// Largest attrs object, as JSON bytes.
    pub max_attrs_bytes: ByteSize,
    /// Most entries in `fields`.
    pub max_fields: usize,
    /// Unprocessed events beyond which ingest answers 429.
    pub max_lag_events: u64,
}

impl IngestConfig {
    pub(crate) fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e = vec![];
        for (name, v) in [
            ("ingest.max_batch_events", self.max_batch_events as u64),
            ("ingest.max_entity_bytes", self.max_entity_bytes as u64),
            ("ingest.max_type_bytes", self.max_type_bytes as u64),
            ("ingest.max_body_bytes", self.max_body_bytes.0),
            ("ingest.max_lag_events", self.max_lag_events),
        ] {
            if v == 0 {
                e.push((name, "must be at least 1 (got 0)".into()));
            }
        }
        if self.max_body_bytes.0 > 1 << 30 {
            e.push((
                "ingest.max_body_bytes",
                format!("{} is above the 1GiB ceiling", self.max_body_bytes),
            ));
        }
        e
    }
}

/// When appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncMode {
    Always,
    Interval,
    Never,
}

/// `[log]`: the embedded log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Partition count; 0 means one per core.
    pub partitions: u32,
    pub fsync: FsyncMode,
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
    pub segment_bytes: ByteSize,
}

impl LogConfig {
    /// The partition count to use: the configured one, or one per available core.
    pub fn effective_partitions(&self) -> u32 {
        if self.partitions > 0 {
            return self.partitions;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }

    pub(crate) fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e = vec![];
        if self.partitions > 1024 {
            e.push((
                "log.partitions",
                format!("at most 1024 partitions (got {})", self.partitions),
            ));
        }
        if self.fsync == FsyncMode::Interval && self.fsync_interval.is_zero() {
            e.push((
                "log.fsync_interval",
                "must be longer than 0s when fsync = \"interval\"".into(),
            ));
        }
        if self.segment_bytes.0 < 1 << 20 {
            e.push((
                "log.segment_bytes",
                format!("must be at least 1MiB (got {})", self.segment_bytes),
            ));
        }
        e
    }
}

/// `[pipeline]`: workers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Most events per worker batch.
    pub batch_events: usize,
    /// Allowed out-of-order lateness for windowed rules.
    #[serde(with = "humantime_serde")]
    pub lateness: Duration,
    /// Period of detector-state checkpoints.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
}

impl PipelineConfig {
    pub(crate) fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e = vec![];
        if self.batch_events == 0 {
            e.push(("pipeline.batch_events", "must be at least 1 (got 0)".into()));
        }
        if self.checkpoint_interval.is_zero() {
            e.push((
                "pipeline.checkpoint_interval",
                "must be longer than 0s".into(),
            ));
        }
        e
    }
}

/// `[store]`: retention.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Age beyond which data is deleted; zero keeps everything.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Period of the retention pass.
    #[serde(with = "humantime_serde")]
    pub retention_interval: Duration,
}

impl StoreConfig {
    pub(crate) fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e = vec![];
        if !self.retention.is_zero() && self.retention_interval.is_zero() {
            e.push((
                "store.retention_interval",
                "must be longer than 0s when retention is on".into(),
            ));
        }
        e
    }
}
