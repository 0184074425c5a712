//! `[[detectors]]`: the common envelope every detector has, plus its kind's parameters.
//!
//! An entry is one TOML table. The envelope keys (`id`, `types`, `where`, `severity`,
//! `description`, `cooldown`, `enabled`) are taken out first; the rest, `kind` included, is
//! deserialised into [`DetectorParams`], a closed tagged enum whose variants reject unknown keys.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use oddity_detect::condition::Condition;
use oddity_detect::field::FieldPath;
use oddity_detect::ml::{HalfSpaceTreesConfig, ModelDetectorConfig, ModelKind};
use oddity_detect::rules::{
    ConsecutiveConfig, CountConfig, NoveltyConfig, RateConfig, RuleContext, ThresholdConfig,
    TimeOfDayConfig,
};
use oddity_detect::stats::{
    AggregateConfig, ChangePointConfig, EwmaConfig, MadConfig, SeasonalConfig, StatsConfig,
    StreamingConfig, ZscoreConfig,
};
use oddity_detect::template::Template;
use oddity_detect::{Detector, DetectorKind};
use oddity_model::Severity;

use crate::ConfigErrors;
use crate::error::clean;

/// The parameters of one detector, by kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorParams {
    Threshold(ThresholdConfig),
    Rate(RateConfig),
    Consecutive(ConsecutiveConfig),
    Novelty(NoveltyConfig),
    TimeOfDay(TimeOfDayConfig),
    Count(CountConfig),
    Zscore(ZscoreConfig),
    Ewma(EwmaConfig),
    Mad(MadConfig),
    Seasonal(SeasonalConfig),
    ChangePoint(ChangePointConfig),
    Streaming(StreamingConfig),
    /// Half-space trees: a streaming forest over an event's named `fields` (or its `value`),
    /// learning online.
    HalfSpaceTrees(HalfSpaceTreesConfig),
    /// Batch models over named features, fitted on a window after warm-up and refitted on a
    /// schedule; each fit is stored as a model version.
    IsolationForest(ModelDetectorConfig),
    Lof(ModelDetectorConfig),
    OneClassSvm(ModelDetectorConfig),
    Ensemble(ModelDetectorConfig),
}

impl DetectorParams {
    /// The kind.
    pub fn kind(&self) -> DetectorKind {
        match self {
            DetectorParams::Threshold(_) => DetectorKind::Threshold,
            DetectorParams::Rate(_) => DetectorKind::Rate,
            DetectorParams::Consecutive(_) => DetectorKind::Consecutive,
            DetectorParams::Novelty(_) => DetectorKind::Novelty,
            DetectorParams::TimeOfDay(_) => DetectorKind::TimeOfDay,
            DetectorParams::Count(_) => DetectorKind::Count,
            DetectorParams::HalfSpaceTrees(_) => DetectorKind::HalfSpaceTrees,
            other => match other.model() {
                Some((kind, _)) => kind.detector_kind(),
                None => other.stats().map_or(DetectorKind::Streaming, |s| s.kind()),
            },
        }
    }

    /// The batch-model kind and parameters, for the model kinds.
    pub fn model(&self) -> Option<(ModelKind, &ModelDetectorConfig)> {
        Some(match self {
            DetectorParams::IsolationForest(c) => (ModelKind::IsolationForest, c),
            DetectorParams::Lof(c) => (ModelKind::Lof, c),
            DetectorParams::OneClassSvm(c) => (ModelKind::OneClassSvm, c),
            DetectorParams::Ensemble(c) => (ModelKind::Ensemble, c),
            _ => return None,
        })
    }

    /// The statistical configuration, for the per-series kinds.
    pub fn stats(&self) -> Option<StatsConfig> {
        Some(match self {
            DetectorParams::Zscore(c) => StatsConfig::Zscore(c.clone()),
            DetectorParams::Ewma(c) => StatsConfig::Ewma(c.clone()),
            DetectorParams::Mad(c) => StatsConfig::Mad(c.clone()),
            DetectorParams::Seasonal(c) => StatsConfig::Seasonal(c.clone()),
            DetectorParams::ChangePoint(c) => StatsConfig::ChangePoint(c.clone()),
            DetectorParams::Streaming(c) => StatsConfig::Streaming(c.clone()),
            _ => return None,
        })
    }

    /// Whether the detector watches a series (entity and type) of numbers rather than an
    /// entity's events.
    pub fn is_series(&self) -> bool {
        matches!(
            self,
            DetectorParams::Zscore(_)
                | DetectorParams::Ewma(_)
                | DetectorParams::Mad(_)
                | DetectorParams::Seasonal(_)
                | DetectorParams::ChangePoint(_)
                | DetectorParams::Streaming(_)
        )
    }

    /// Whether instances keep no state between events (one instance can serve every key).
    pub fn is_stateless(&self) -> bool {
        matches!(
            self,
            DetectorParams::Threshold(_) | DetectorParams::TimeOfDay(_) | DetectorParams::Count(_)
        )
    }

    /// Every problem with the parameters.
    pub fn validate(&self) -> Vec<String> {
        match self {
            DetectorParams::Threshold(c) => c.validate(),
            DetectorParams::Rate(c) => c.validate(),
            DetectorParams::Consecutive(c) => c.validate(),
            DetectorParams::Novelty(c) => c.validate(),
            DetectorParams::TimeOfDay(c) => c.validate(),
            DetectorParams::Count(c) => c.validate(),
            DetectorParams::HalfSpaceTrees(c) => {
                let mut problems = c.validate();
                if problems.is_empty()
                    && let Err(e) = c.build_detector()
                {
                    problems.push(e.to_string());
                }
                problems
            }
            other => match other.model() {
                Some((kind, c)) => c.validate(kind),
                None => other.stats().map(|s| s.validate()).unwrap_or_default(),
            },
        }
    }

    /// A new detector instance (one per key).
    pub fn build(&self, ctx: RuleContext) -> Box<dyn Detector> {
        match self {
            DetectorParams::Threshold(c) => c.build(),
            DetectorParams::Rate(c) => c.build(ctx),
            DetectorParams::Consecutive(c) => c.build(),
            DetectorParams::Novelty(c) => c.build(),
            DetectorParams::TimeOfDay(c) => c.build(),
            DetectorParams::Count(c) => c.build(),
            DetectorParams::Zscore(c) => c.build(),
            DetectorParams::Ewma(c) => c.build(),
            DetectorParams::Mad(c) => c.build(),
            DetectorParams::Seasonal(c) => c.build(),
            DetectorParams::ChangePoint(c) => c.build(),
            DetectorParams::Streaming(c) => c.build(),
            DetectorParams::HalfSpaceTrees(c) => Box::new(
                c.build_detector()
                    .expect("half-space trees parameters should have been checked by validate()"),
            ),
            DetectorParams::IsolationForest(c)
            | DetectorParams::Lof(c)
            | DetectorParams::OneClassSvm(c)
            | DetectorParams::Ensemble(c) => {
                let (kind, _) = self.model().expect("a model kind has a model");
                Box::new(c.build_unchecked(kind))
            }
        }
    }

    /// How instances are keyed when the configuration does not say: rules follow an entity,
    /// statistical detectors and half-space trees a series (entity and type), batch models an
    /// event type (a model holds a window of rows and a fitted forest or neighbour index: one
    /// per entity would not scale).
    pub fn default_key(&self) -> KeyBy {
        if self.model().is_some() {
            KeyBy::Type
        } else if self.is_series() || matches!(self, DetectorParams::HalfSpaceTrees(_)) {
            KeyBy::EntityType
        } else {
            KeyBy::Entity
        }
    }
}

/// How an anomaly's severity is chosen: `"high"`, or `{ medium = 0.5, high = 0.8, critical = 0.95 }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeverityRule {
    /// Always this severity.
    Fixed(Severity),
    /// By score: the highest level whose minimum score is reached (`low` below `medium`).
    ByScore {
        medium: f64,
        high: f64,
        critical: f64,
    },
}

impl<'de> Deserialize<'de> for SeverityRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Table {
                medium: f64,
                high: f64,
                critical: f64,
            },
            Other(toml::Value),
        }
        match Raw::deserialize(d)? {
            Raw::Name(name) => name
                .parse()
                .map(SeverityRule::Fixed)
                .map_err(serde::de::Error::custom),
            Raw::Table {
                medium,
                high,
                critical,
            } => Ok(SeverityRule::ByScore {
                medium,
                high,
                critical,
            }),
            Raw::Other(v) => Err(serde::de::Error::custom(format!(
                "severity {v} is neither a name (low, medium, high, critical) nor a table {{ medium = 0.5, high = 0.8, critical = 0.95 }}"
            ))),
        }
    }
}

impl SeverityRule {
    /// The severity of an anomaly with this score.
    pub fn severity(&self, score: f64) -> Severity {
        match *self {
            SeverityRule::Fixed(s) => s,
            SeverityRule::ByScore {
                medium,
                high,
                critical,
            } => {
                if score >= critical {
                    Severity::Critical
                } else if score >= high {
                    Severity::High
                } else if score >= medium {
                    Severity::Medium
                } else {
                    Severity::Low
                }
            }
        }
    }
}

/// One configured detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorSpec {
    /// Unique id, reported with every anomaly.
    pub id: String,
    /// Event types it sees; empty means all.
    pub types: BTreeSet<String>,
    /// Conditions an event must meet.
    pub conditions: Vec<Condition>,
    pub severity: SeverityRule,
    pub description: Template,
    /// Quiet period per key after firing.
    pub cooldown: Option<Duration>,
    /// The number a per-series detector watches (`value_field`: the event's `value` by default,
    /// or `fields.cpu`, `response_time_ms`…). Events without it are skipped.
    pub value: FieldPath,
    /// How instances are keyed: by entity (rules), by entity and type (series detectors), by
    /// type or globally (batch models).
    pub key: KeyBy,
    /// Per-series kinds: watch per-interval counts (sums, means, maxima) instead of each value.
    pub aggregate: Option<AggregateConfig>,
    pub params: DetectorParams,
}

/// What one detector instance follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyBy {
    /// One instance per entity.
    Entity,
    /// One instance per (entity, type): a series.
    EntityType,
    /// One instance per event type (in each partition: every worker fits its own model on the
    /// events of its partition, a uniform sample of the entities).
    Type,
    /// One instance for every event the detector sees (in each partition, as `type`).
    Global,
}

impl KeyBy {
    /// The name used in configuration files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyBy::Entity => "entity",
            KeyBy::EntityType => "entity_type",
            KeyBy::Type => "type",
            KeyBy::Global => "global",
        }
    }
}

impl DetectorSpec {
    /// A new detector instance (one per key), behind its aggregation when it has one.
    pub fn build(&self, ctx: RuleContext) -> Box<dyn Detector> {
        let detector = self.params.build(ctx);
        match &self.aggregate {
            Some(aggregate) => aggregate.wrap(detector),
            None => detector,
        }
    }

    /// Whether an event needs the `value_field` number to be seen (per-series kinds, unless
    /// they count events per interval).
    pub fn needs_value(&self) -> bool {
        self.params.is_series() && !self.aggregate.is_some_and(|a| a.counts_events())
    }

    /// Whether the detector looks at events of this type.
    pub fn accepts_type(&self, event_type: &str) -> bool {
        self.types.is_empty() || self.types.contains(event_type)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    id: String,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default, rename = "where")]
    conditions: Vec<Condition>,
    severity: SeverityRule,
    description: Template,
    #[serde(default, with = "humantime_serde")]
    cooldown: Option<Duration>,
    #[serde(default = "enabled_default")]
    enabled: bool,
    #[serde(default)]
    value_field: Option<FieldPath>,
    #[serde(default)]
    key: Option<KeyBy>,
    #[serde(default)]
    aggregate: Option<AggregateConfig>,
}

const fn enabled_default() -> bool {
    true
}

const ENVELOPE_KEYS: [&str; 10] = [
    "id",
    "types",
    "where",
    "severity",
    "description",
    "cooldown",
    "enabled",
    "value_field",
    "key",
    "aggregate",
];

/// Parses every `[[detectors]]` entry, recording each problem; returns the enabled, valid ones.
pub(crate) fn parse_all(
    value: Option<toml::Value>,
    errors: &mut ConfigErrors,
) -> Vec<DetectorSpec> {
    let entries = match value {
        None => return vec![],
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            errors.push(
                "detectors",
                "must be an array of tables ([[detectors]])".into(),
            );
            return vec![];
        }
    };
    let mut seen = BTreeSet::new();
    let mut specs = vec![];
    for (i, entry) in entries.into_iter().enumerate() {
        let toml::Value::Table(mut table) = entry else {
            errors.push(format!("detectors[{i}]"), "must be a table".into());
            continue;
        };
        let id = table.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        let at = match &id {
            Some(id) => format!("detectors[{i}] (id \"{id}\")"),
            None => format!("detectors[{i}]"),
        };
        let mut envelope_table = toml::Table::new();
        for key in ENVELOPE_KEYS {
            if let Some(v) = table.remove(key) {
                envelope_table.insert(key.to_owned(), v);
            }
        }
        let envelope = toml::Value::Table(envelope_table).try_into::<Envelope>();
        let params = match table.get("kind") {
            None => Err("missing `kind` (threshold, rate, consecutive, novelty, time_of_day, count, zscore, ewma, mad, seasonal, change_point, streaming, half_space_trees, isolation_forest, lof, one_class_svm or ensemble)".to_owned()),
            Some(_) => toml::Value::Table(table).try_into::<DetectorParams>().map_err(|e| clean(&e.to_string())),
        };
        if let Some(id) = &id {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                errors.push(
                    &at,
                    format!("id `{id}` must be non-empty and use only letters, digits, _ - ."),
                );
            }
            if !seen.insert(id.clone()) {
                errors.push(&at, format!("duplicate detector id `{id}`"));
            }
        }
        let params = match params {
            Ok(p) => {
                for problem in p.validate() {
                    errors.push(&at, problem);
                }
                Some(p)
            }
            Err(e) => {
                errors.push(&at, e);
                None
            }
        };
        let envelope = match envelope {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(&at, clean(&e.to_string()));
                None
            }
        };
        let (Some(envelope), Some(params)) = (envelope, params) else {
            continue;
        };
        if let SeverityRule::ByScore {
            medium,
            high,
            critical,
        } = envelope.severity
            && !(0.0 <= medium && medium <= high && high <= critical && critical <= 1.0)
        {
            errors.push(&at, format!("severity thresholds must satisfy 0 <= medium <= high <= critical <= 1 (got {medium}, {high}, {critical})"));
        }
        if envelope.cooldown.is_some_and(|c| c.is_zero()) {
            errors.push(&at, "cooldown must be longer than 0s (or absent)".into());
        }
        if let Some(aggregate) = &envelope.aggregate {
            if params.is_series() {
                for problem in aggregate.validate() {
                    errors.push(&at, problem);
                }
            } else {
                errors.push(
                    &at,
                    format!(
                        "`aggregate` applies to per-series kinds only, not to {}",
                        params.kind()
                    ),
                );
            }
        }
        if envelope.value_field.is_some() && !params.is_series() {
            errors.push(
                &at,
                format!(
                    "`value_field` applies to per-series kinds only, not to {}",
                    params.kind()
                ),
            );
        }
        let key = envelope.key.unwrap_or(params.default_key());
        if envelope.enabled {
            specs.push(DetectorSpec {
                id: envelope.id,
                types: envelope.types.into_iter().collect(),
                conditions: envelope.conditions,
                severity: envelope.severity,
                description: envelope.description,
                cooldown: envelope.cooldown,
                value: envelope.value_field.unwrap_or(FieldPath::Value),
                key,
                aggregate: envelope.aggregate,
                params,
            });
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_by_score() {
        let r = SeverityRule::ByScore {
            medium: 0.5,
            high: 0.8,
            critical: 0.95,
        };
        assert_eq!(r.severity(0.1), Severity::Low);
        assert_eq!(r.severity(0.5), Severity::Medium);
        assert_eq!(r.severity(0.9), Severity::High);
        assert_eq!(r.severity(1.0), Severity::Critical);
        assert_eq!(
            SeverityRule::Fixed(Severity::High).severity(0.0),
            Severity::High
        );
    }

    #[test]
    fn parses_an_entry_with_every_envelope_key() {
        let text = r#"
[[detectors]]
id = "x"
kind = "rate"
types = ["login"]
where = ["success == false"]
window = "5m"
at_least = 3
severity = { medium = 0.5, high = 0.8, critical = 0.95 }
description = "{count}"
cooldown = "1h"
[[detectors]]
id = "off"
kind = "count"
field = "a"
more_than = 1
severity = "low"
description = "x"
enabled = false
"#;
        let table: toml::Table = text.parse().unwrap();
        let mut errors = ConfigErrors::default();
        let specs = parse_all(table.get("detectors").cloned(), &mut errors);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert!(s.accepts_type("login") && !s.accepts_type("click"));
        assert_eq!(s.cooldown, Some(Duration::from_secs(3600)));
        assert_eq!(s.params.kind(), DetectorKind::Rate);
        assert_eq!(s.conditions.len(), 1);
    }

    /// The commented batch-model example of `config/default.toml`, uncommented.
    fn default_toml_model_example() -> String {
        let text = include_str!("../../../config/default.toml");
        let start = text
            .find("# [[detectors]]\n# id = \"host_outlier\"")
            .expect("the example is in default.toml");
        text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.strip_prefix("# ").unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn batch_model_kinds_parse_validate_and_key_by_type() {
        let example = default_toml_model_example();
        let table: toml::Table = example.parse().unwrap();
        let mut errors = ConfigErrors::default();
        let specs = parse_all(table.get("detectors").cloned(), &mut errors);
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(specs[0].params.kind(), DetectorKind::Ensemble);
        assert_eq!(specs[0].key, KeyBy::Type);
        let (_, c) = specs[0].params.model().unwrap();
        assert_eq!(c.features.len(), 2);
        assert_eq!(c.refit_every, Duration::from_secs(3600));
        assert_eq!(c.isolation_forest.as_ref().unwrap().seed, 42);

        for kind in ["isolation_forest", "lof", "one_class_svm"] {
            let text = format!(
                "[[detectors]]\nid = \"m\"\nkind = \"{kind}\"\nfeatures = [\"amount\"]\n\
                 key = \"global\"\nseverity = \"low\"\ndescription = \"x\"\n"
            );
            let mut errors = ConfigErrors::default();
            let specs = parse_all(
                text.parse::<toml::Table>()
                    .unwrap()
                    .get("detectors")
                    .cloned(),
                &mut errors,
            );
            assert!(errors.is_empty(), "{kind}: {errors}");
            assert_eq!(specs[0].params.kind().as_str(), kind);
            assert_eq!(specs[0].key, KeyBy::Global);
        }

        let bad = r#"
[[detectors]]
id = "bad"
kind = "isolation_forest"
features = []
weights = { lof = 1.0 }
isolation_forest = { n_estimators = 0 }
severity = "low"
description = "x"
[[detectors]]
id = "typo"
kind = "lof"
features = ["value"]
n_neighbours = 3
severity = "low"
description = "x"
"#;
        let mut errors = ConfigErrors::default();
        parse_all(
            bad.parse::<toml::Table>()
                .unwrap()
                .get("detectors")
                .cloned(),
            &mut errors,
        );
        let aggregates = r#"
[[detectors]]
id = "volume"
kind = "streaming"
aggregate = { every = "1m" }
severity = "low"
description = "x"
[[detectors]]
id = "rule"
kind = "count"
field = "a"
more_than = 1
aggregate = { every = "1m", of = "sum" }
severity = "low"
description = "x"
[[detectors]]
id = "zero"
kind = "mad"
aggregate = { every = "0s", of = "mean", max_gap = 0 }
severity = "low"
description = "x"
"#;
        let mut agg_errors = ConfigErrors::default();
        let specs = parse_all(
            aggregates
                .parse::<toml::Table>()
                .unwrap()
                .get("detectors")
                .cloned(),
            &mut agg_errors,
        );
        assert!(specs[0].aggregate.is_some_and(|a| a.counts_events()));
        assert!(!specs[0].needs_value());
        let agg_text = agg_errors.to_string();
        for want in [
            "`aggregate` applies to per-series kinds only, not to count",
            "aggregate.every must be at least 1ms",
            "aggregate.max_gap must be at least 1",
        ] {
            assert!(agg_text.contains(want), "missing {want:?} in {agg_text}");
        }
        let text = errors.to_string();
        for want in [
            "features: name at least one number",
            "weights apply to kind = \"ensemble\" only",
            "n_neighbours",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
    }
}
