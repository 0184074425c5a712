//! Per-entity rules.
