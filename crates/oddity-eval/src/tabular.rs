//! Tabular evaluation.
