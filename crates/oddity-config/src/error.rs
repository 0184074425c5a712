//! Configuration errors, all of them at once.

use std::fmt;

/// Every problem found in a configuration, each with where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors {
    problems: Vec<(String, String)>,
}

impl ConfigErrors {
    /// Records a problem at `location` (`server`, `detectors[2] (id "x")`).
    pub fn push(&mut self, location: impl Into<String>, problem: String) {
        self.problems.push((location.into(), problem));
    }

    /// No problem found.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// The problems as (location, message).
    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.problems.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in the configuration:",
            self.problems.len()
        )?;
        for (location, problem) in &self.problems {
            writeln!(f, "  - {location}: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Flattens a multi-line TOML/serde message into one line.
pub(crate) fn clean(message: &str) -> String {
    message
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
