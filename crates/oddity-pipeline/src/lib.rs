//! Workers: one per log partition. Each consumes its partition in order, runs the configured
//! detectors, and commits the batch's events, anomalies, changed detector state and new position
//! to the store in one transaction, then tells the log how far it got.
//!
//! # Layout
//! - [`engine`]: detection over a batch — filters, one detector instance per (detector, entity),
//!   cooldowns, severities, descriptions, state snapshots. Synchronous and deterministic.
//! - [`worker`]: the loop around it — read, detect, commit, recover.
//! - [`status`]: counters the API reads (processed, anomalies, last commit, restarts).
//!
//! # Exactly once
//! A worker starts from the position stored with the results, restores the detector state
//! stored in the same transactions, and commits with a fence on that position. A crash (or any
//! commit failure) therefore replays from the last commit with the state of that commit: nothing
//! acknowledged is lost, nothing is stored twice, and stateful rules see each event once.
//!
//! # Threads
//! Detection is CPU work, so each worker runs on its own OS thread and blocks on the async log
//! and store through a runtime handle; the async runtime's threads stay free for HTTP.

pub mod engine;
mod error;
pub mod status;
pub mod worker;

pub use engine::Engine;
pub use error::PipelineError;
pub use status::PipelineStatus;
pub use worker::{Shutdown, WorkerOptions, WorkerPool};
