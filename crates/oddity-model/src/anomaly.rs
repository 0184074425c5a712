//! What detectors produce.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventId};

/// How urgent an anomaly is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// All severities, least urgent first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in JSON, TOML and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of low, medium, high, critical.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown severity `{0}`: expected one of low, medium, high, critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(UnknownSeverity(other.to_owned())),
        }
    }
}

/// The expected value or band an observation was compared with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Lowest normal value, if bounded below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// Highest normal value, if bounded above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// Why a detector fired: observed against expected, over which window, on which feature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// What was observed: a value, a count, or for novelty the new value itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<serde_json::Value>,
    /// What was expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    /// The window the observation covers, in humantime form (`60s`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The field or feature that drove the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Detector-specific detail (known values, streak length, sum of a window…).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// One anomaly: which event, which detector, how bad, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The triggering event's id. With `detector` it identifies the anomaly: a store keeps at most
    /// one anomaly per (event, detector), which is what makes replay after a crash idempotent.
    pub event_id: EventId,
    /// The triggering event's entity.
    pub entity: String,
    /// The triggering event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The triggering event's timestamp (ms).
    pub ts: i64,
    /// Id of the detector instance from the configuration (`high_value_purchase`).
    pub detector: String,
    /// Kind of that detector (`threshold`, `rate`, `zscore`…).
    pub kind: String,
    pub severity: Severity,
    /// 0..1, comparable across detectors.
    pub score: f64,
    /// One human sentence.
    pub description: String,
    pub explanation: Explanation,
    /// The triggering event, as it was.
    pub event: Event,
    /// Wall-clock time of detection (ms).
    pub detected_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Low < Severity::Critical);
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("urgent".parse::<Severity>().is_err());
    }
}
