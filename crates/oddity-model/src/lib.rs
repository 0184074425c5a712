//! Domain types shared by every oddity crate.
//!
//! # Layout
//! - [`Event`]: the one internal record every source is normalised into (`entity`, `type`, `ts`,
//!   optional `value`, optional numeric `fields`, free JSON `attrs`).
//! - [`EventId`]: where an event sits in the log (partition and offset), packed into one integer so
//!   that stores and APIs can use it as a primary key.
//! - [`Anomaly`], [`Severity`], [`Explanation`]: what detectors produce.
//! - [`codec`]: the compact binary encoding of an event inside the log.
//!
//! This crate depends on serde only: no runtime, no I/O. Everything else depends on it.

pub mod anomaly;
pub mod codec;
pub mod event;
pub mod time;

pub use anomaly::{Anomaly, Expected, Explanation, Severity, UnknownSeverity};
pub use codec::CodecError;
pub use event::{Event, EventId, MAX_PARTITIONS};
