//! Embedded log.
