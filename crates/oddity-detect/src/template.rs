//! Description templates.
