//! Detectors: everything that decides whether an observation is anomalous.
//!
//! This crate is synchronous and knows nothing of runtimes, logs or stores: a detector is a plain
//! state machine fed one observation at a time, which is what makes it testable with tables and
//! usable from the pipeline, the evaluator and the per-series model API alike.
//!
//! # Layout
//! - [`compact`]: the compact, exact encoding of `f64` sequences in saved state (`g1:`, `d1:`,
//!   `tg1:` strings; the plain JSON arrays of older checkpoints still load).
//! - [`detector`]: the [`Detector`] trait, its [`Input`] and [`Verdict`], and [`DetectorKind`].
//! - [`field`]: field paths (`amount`, `fields.cpu`, `value`) and their lookup in an event.
//! - [`condition`]: the `where` conditions of rules (`status_code >= 400`).
//! - [`template`]: description templates (`User {entity} made {count} purchases`).
//! - [`rules`]: per-entity rules: threshold, rate, consecutive, novelty, time_of_day, count.
//! - [`series_model`]: per-series fitted models (seed 001's `/fit` and `/predict`).
//! - [`stats`]: streaming statistics per series (z-score, EWMA, MAD, seasonal, change-point).
//! - [`ml`]: models on feature vectors (Isolation Forest, LOF, One-Class SVM, streaming forest,
//!   ensemble).
//!
//! # Design decisions
//! - One detector instance per key (entity or series): the caller owns the map from key to
//!   instance, so eviction, snapshots and restore are written once, in the pipeline, not in every
//!   detector.
//! - A normal verdict allocates nothing; explanations are built only when a detector fires.
//! - State is saved as JSON ([`DetectorState`]): it survives field additions and can be read
//!   with `sqlite3` when a user asks "why did this fire".

pub mod compact;
pub mod condition;
pub mod detector;
pub mod field;
pub mod ml;
pub mod rules;
pub mod series_model;
pub mod stats;
pub mod template;

pub use detector::{
    DetectError, Detector, DetectorKind, DetectorState, FittedModel, Input, Verdict,
};
