//! Detection over a batch of events: the part of a worker that is pure computation.
//!
//! For each event and each configured detector (in configuration order) the engine checks the
//! type filter and `where` conditions, finds or creates the detector instance of the event's
//! entity, observes, and turns a firing verdict into an [`Anomaly`] unless the instance is in its
//! cooldown. Stateless kinds (threshold, time_of_day, count) share one instance for every entity
//! and only keep per-entity cooldowns. Instances whose state holds nothing (an emptied window)
//! are dropped, so memory follows active entities, not all entities ever seen.
//!
//! # Checkpoints
//! State is not saved with every batch: [`Engine::checkpoint`] returns the changes since the last
//! checkpoint (each instance touched since then, once, however often it was touched; a deletion
//! for each one dropped), which the worker commits every `pipeline.checkpoint_interval` together
//! with the position they reflect. After a crash, the worker restores that state and replays the
//! log from its position to the position of the last committed results, discarding what the
//! replay re-detects (it was committed already). Detection is deterministic, so the replay
//! rebuilds the state exactly. Saved state per (detector, entity) is
//! `{"state": <detector snapshot>, "cooldown_until": ms}`, plus `"model_version": N` for
//! detectors that fit models.
//!
//! # Models
//! Batch-model detectors (Isolation Forest, LOF, One-Class SVM, ensemble) fit a model now and
//! then. [`Engine::take_models`] returns the versions fitted since the last call; the worker
//! commits them with the batch that caused them. Their state does not contain the model (it is
//! large and changes rarely) but names its version: [`Engine::models_needed`] lists what a saved
//! state needs, and [`Engine::restore`] installs the models the worker loaded. A replay fits the
//! same versions again; they are already stored and the worker drops them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use oddity_config::{DetectorSpec, KeyBy};
use oddity_detect::field::{Attrs, FieldPath};
use oddity_detect::rules::RuleContext;
use oddity_detect::{Detector, DetectorState, Input, Verdict};
use oddity_model::{Anomaly, Event};
use oddity_store::{DetectorModel, DetectorModelInfo, StateChange, StateEntry};

use crate::PipelineError;

/// The state of one detector for one entity.
#[derive(Debug)]
struct Instance {
    /// The entity's detector; `None` for stateless kinds, whose instance only remembers a
    /// cooldown.
    detector: Option<Box<dyn Detector>>,
    /// Event time until which firing is suppressed.
    cooldown_until: Option<i64>,
    /// Checkpoint epoch in which the instance was last marked dirty (to list it once).
    dirty_in: u64,
}

impl Instance {
    /// Whether the instance holds nothing that matters as of event time `now_ts`.
    fn is_idle(&self, now_ts: i64) -> bool {
        let cooling = self.cooldown_until.is_some_and(|until| until > now_ts);
        !cooling && self.detector.as_ref().is_none_or(|d| d.is_idle(now_ts))
    }
}

/// One configured detector's instances by key.
#[derive(Debug)]
struct Slot {
    /// For stateless kinds, the one detector every entity shares.
    shared: Option<Box<dyn Detector>>,
    /// A per-series detector: it observes the number its `value` setting names.
    series: bool,
    /// Events without that number are skipped (all but per-interval counts).
    needs_value: bool,
    /// A detector that fits models ([`Detector::take_fitted`]).
    models: bool,
    instances: HashMap<String, Instance>,
}

/// What a batch produced besides its events.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub anomalies: Vec<Anomaly>,
    pub state: Vec<StateChange>,
}

/// Detection state of one partition.
#[derive(Debug)]
pub struct Engine {
    specs: Arc<[DetectorSpec]>,
    ctx: RuleContext,
    /// The log partition whose events this engine sees (part of per-type and global keys).
    partition: u32,
    slots: Vec<Slot>,
    /// Current checkpoint epoch (starts at 1; 0 marks "never dirty").
    epoch: u64,
    /// Instances changed or dropped since the last checkpoint: (detector index, entity).
    dirty: Vec<(usize, String)>,
    /// Newest event time seen by this engine.
    max_ts: i64,
    /// Models fitted since the last [`Engine::take_models`].
    fitted: Vec<DetectorModel>,
}

impl Engine {
    /// An engine with no state for `specs`, for the events of log `partition`.
    pub fn new(specs: Arc<[DetectorSpec]>, ctx: RuleContext, partition: u32) -> Self {
        let slots = specs
            .iter()
            .map(|s| Slot {
                shared: s.params.is_stateless().then(|| s.params.build(ctx)),
                series: s.params.is_series(),
                needs_value: s.needs_value(),
                models: s.params.model().is_some(),
                instances: HashMap::new(),
            })
            .collect();
        Engine {
            specs,
            ctx,
            partition,
            slots,
            epoch: 1,
            dirty: Vec::new(),
            max_ts: i64::MIN,
            fitted: Vec::new(),
        }
    }

    /// The stored models the saved `entries` depend on: `(detector, key, version)`.
    pub fn models_needed(entries: &[StateEntry]) -> Vec<(String, String, u32)> {
        entries
            .iter()
            .filter_map(|e| {
                let version = e.state.get("model_version")?.as_u64()?;
                Some((
                    e.detector.clone(),
                    e.key.clone(),
                    u32::try_from(version).ok()?,
                ))
            })
            .collect()
    }

    /// Restores saved state, with the stored models it needs by (detector, key) (see
    /// [`Engine::models_needed`]). Entries of detectors no longer configured are ignored. An
    /// entry that does not restore (its detector's parameters changed shape, say) is dropped:
    /// that instance starts afresh and the next checkpoint deletes the old state; the returned
    /// errors name each one, for the caller to log. A model that is missing or does not fit the
    /// configuration is logged, and the detector refits.
    pub fn restore(
        &mut self,
        entries: Vec<StateEntry>,
        models: &HashMap<(String, String), Value>,
    ) -> Vec<PipelineError> {
        let mut dropped = Vec::new();
        for entry in entries {
            let Some(i) = self.specs.iter().position(|s| s.id == entry.detector) else {
                continue;
            };
            let detector = match &self.slots[i].shared {
                Some(_) => None,
                None => {
                    let mut d = self.specs[i].build(self.ctx);
                    let saved = entry.state.get("state").cloned().unwrap_or(Value::Null);
                    if !saved.is_null()
                        && let Err(e) = d.restore(&DetectorState(saved))
                    {
                        dropped.push(PipelineError::State {
                            detector: entry.detector.clone(),
                            key: entry.key.clone(),
                            reason: e.to_string(),
                        });
                        self.dirty.push((i, entry.key));
                        continue;
                    }
                    if let Some(version) = d.model_version() {
                        let found = models.get(&(entry.detector.clone(), entry.key.clone()));
                        match found.map(|m| d.restore_model(m)) {
                            Some(Ok(())) => {}
                            Some(Err(e)) => {
                                tracing::warn!(detector = %entry.detector, key = %entry.key, version, error = %e, "stored model not usable; the detector refits")
                            }
                            None => {
                                tracing::warn!(detector = %entry.detector, key = %entry.key, version, "stored model not found; the detector refits")
                            }
                        }
                    }
                    Some(d)
                }
            };
            let cooldown_until = entry.state.get("cooldown_until").and_then(Value::as_i64);
            self.slots[i].instances.insert(
                entry.key,
                Instance {
                    detector,
                    cooldown_until,
                    dirty_in: 0,
                },
            );
        }
        dropped
    }

    /// Number of live detector instances.
    pub fn instances(&self) -> usize {
        self.slots.iter().map(|s| s.instances.len()).sum()
    }

    /// Runs every detector over `events` (in order) and returns the anomalies they raise.
    /// `now_ms` is the detection wall-clock time. State changes accumulate until
    /// [`Engine::checkpoint`].
    pub fn process(&mut self, events: &[Event], now_ms: i64) -> Vec<Anomaly> {
        let epoch = self.epoch;
        let mut anomalies = Vec::new();
        let mut touched: Vec<(usize, String)> = Vec::new();
        for event in events {
            self.max_ts = self.max_ts.max(event.ts);
            let attrs = Attrs::new(event);
            for (i, spec) in self.specs.iter().enumerate() {
                if !spec.accepts_type(&event.event_type)
                    || !oddity_detect::condition::all_match(&spec.conditions, event, &attrs)
                {
                    continue;
                }
                let slot = &mut self.slots[i];
                let fits_models = slot.models;
                let mut input = Input::new(event, &attrs);
                if slot.series {
                    input.value = spec.value.number(event, &attrs);
                    if input.value.is_none() && slot.needs_value {
                        continue;
                    }
                }
                let key: Cow<'_, str> = match spec.key {
                    KeyBy::Entity => Cow::Borrowed(&event.entity),
                    KeyBy::EntityType => Cow::Owned(series_key(&event.entity, &event.event_type)),
                    KeyBy::Type => Cow::Owned(type_key(self.partition, &event.event_type)),
                    KeyBy::Global => Cow::Owned(format!("[{}]", self.partition)),
                };
                let verdict = match &mut slot.shared {
                    Some(shared) => shared.observe(&input),
                    None => {
                        let instance =
                            instance_for(slot, spec, self.ctx, &key, epoch, &mut touched, i);
                        let Some(detector) = instance.detector.as_mut() else {
                            continue;
                        };
                        let verdict = detector.observe(&input);
                        if fits_models && let Some(f) = detector.take_fitted() {
                            self.fitted.push(DetectorModel {
                                info: DetectorModelInfo {
                                    detector: spec.id.clone(),
                                    key: key.to_string(),
                                    version: f.version,
                                    created_at: now_ms,
                                    trained_at: f.trained_at,
                                    rows: f.rows,
                                },
                                model: f.model,
                            });
                        }
                        verdict
                    }
                };
                if !verdict.anomalous {
                    continue;
                }
                let cooling = slot
                    .instances
                    .get(key.as_ref())
                    .and_then(|inst| inst.cooldown_until)
                    .is_some_and(|until| event.ts < until);
                if cooling {
                    continue;
                }
                if let Some(cooldown) = spec.cooldown {
                    let instance = instance_for(slot, spec, self.ctx, &key, epoch, &mut touched, i);
                    instance.cooldown_until =
                        Some(event.ts.saturating_add(cooldown.as_millis() as i64));
                }
                anomalies.push(anomaly(spec, event, &attrs, verdict, now_ms));
            }
        }
        // Drop what the batch left idle; the next checkpoint deletes it from the store.
        let max_ts = self.max_ts;
        for (i, key) in &touched {
            let slot = &mut self.slots[*i];
            if slot
                .instances
                .get(key.as_str())
                .is_some_and(|inst| inst.is_idle(max_ts))
            {
                slot.instances.remove(key.as_str());
            }
        }
        self.dirty.extend(touched);
        anomalies
    }

    /// The state changes since the last checkpoint: a snapshot of every instance touched since,
    /// a deletion for every one dropped since. Starts a new checkpoint epoch.
    pub fn checkpoint(&mut self) -> Vec<StateChange> {
        self.epoch += 1;
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut changes = Vec::with_capacity(dirty.len());
        for (i, key) in dirty {
            let spec_id = &self.specs[i].id;
            let Some(instance) = self.slots[i].instances.get(key.as_str()) else {
                changes.push(StateChange {
                    detector: spec_id.clone(),
                    key,
                    state: None,
                });
                continue;
            };
            let state = match instance.detector.as_ref().map(|d| d.snapshot()) {
                None => Value::Null,
                Some(Ok(DetectorState(state))) => state,
                Some(Err(e)) => {
                    tracing::warn!(detector = %spec_id, key = %key, error = %e, "detector state not saved");
                    continue;
                }
            };
            let mut saved = json!({ "state": state, "cooldown_until": instance.cooldown_until });
            if let Some(version) = instance.detector.as_ref().and_then(|d| d.model_version()) {
                saved["model_version"] = version.into();
            }
            changes.push(StateChange {
                detector: spec_id.clone(),
                key,
                state: Some(saved),
            });
        }
        changes
    }

    /// Whether anything changed since the last checkpoint.
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The model versions fitted since the last call, to be committed with the batch.
    pub fn take_models(&mut self) -> Vec<DetectorModel> {
        std::mem::take(&mut self.fitted)
    }
}

/// The key of the series (entity, type): a JSON array, unambiguous whatever the names contain.
/// Written straight to a string (no `Value` tree per event).
fn series_key(entity: &str, event_type: &str) -> String {
    serde_json::to_string(&(entity, event_type)).expect("strings always serialise")
}

/// The key of a per-type instance in `partition`: `[0,"purchase"]`.
fn type_key(partition: u32, event_type: &str) -> String {
    serde_json::to_string(&(partition, event_type)).expect("numbers and strings always serialise")
}

/// The entity's instance in `slot`, created if missing; records the first touch of each batch.
fn instance_for<'s>(
    slot: &'s mut Slot,
    spec: &DetectorSpec,
    ctx: RuleContext,
    entity: &str,
    epoch: u64,
    touched: &mut Vec<(usize, String)>,
    index: usize,
) -> &'s mut Instance {
    if !slot.instances.contains_key(entity) {
        let detector = slot.shared.is_none().then(|| spec.build(ctx));
        slot.instances.insert(
            entity.to_owned(),
            Instance {
                detector,
                cooldown_until: None,
                dirty_in: 0,
            },
        );
    }
    let instance = slot
        .instances
        .get_mut(entity)
        .expect("the instance should exist: it was inserted above when missing");
    if instance.dirty_in != epoch {
        instance.dirty_in = epoch;
        touched.push((index, entity.to_owned()));
    }
    instance
}

impl Engine {
    /// Drops every instance that is idle as of the newest event time seen (entities that went
    /// quiet); the next checkpoint deletes their saved state. Touched instances are checked at
    /// each batch; this catches the ones no event touches any more. One pass over all instances.
    pub fn sweep(&mut self) {
        let max_ts = self.max_ts;
        let epoch = self.epoch;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let dirty = &mut self.dirty;
            slot.instances.retain(|key, instance| {
                let keep = !instance.is_idle(max_ts);
                if !keep && instance.dirty_in != epoch {
                    dirty.push((i, key.clone()));
                }
                keep
            });
        }
    }
}

/// Builds the anomaly for a firing verdict.
fn anomaly(
    spec: &DetectorSpec,
    event: &Event,
    attrs: &Attrs<'_>,
    verdict: Verdict,
    now_ms: i64,
) -> Anomaly {
    let explanation = verdict.explanation.unwrap_or_default();
    let description = spec.description.render(|name| match name {
        "entity" => Some(Value::from(event.entity.as_str())),
        "type" => Some(Value::from(event.event_type.as_str())),
        "ts" => Some(Value::from(event.ts)),
        "detector" => Some(Value::from(spec.id.as_str())),
        "score" => Some(Value::from(verdict.score)),
        "observed" => explanation.observed.clone(),
        "window" => explanation.window.clone().map(Value::from),
        other => explanation
            .details
            .get(other)
            .cloned()
            .or_else(|| other.parse::<FieldPath>().ok()?.json(event, attrs)),
    });
    Anomaly {
        event_id: event.id,
        entity: event.entity.clone(),
        event_type: event.event_type.clone(),
        ts: event.ts,
        detector: spec.id.clone(),
        kind: spec.params.kind().as_str().to_owned(),
        severity: spec.severity.severity(verdict.score),
        score: verdict.score,
        description,
        explanation,
        event: event.clone(),
        detected_at: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use oddity_config::Config;
    use oddity_model::{EventId, Severity};

    use super::*;

    fn engine() -> Engine {
        let config = Config::default_config().unwrap();
        Engine::new(
            config.detectors.into(),
            RuleContext {
                lateness_ms: 60_000,
            },
            0,
        )
    }

    fn signal(i: u64, user: &str, kind: &str, ts: i64, payload: &str) -> Event {
        let mut e = Event::new(user, kind, ts);
        e.id = EventId::new(0, i);
        e.attrs = Some(payload.to_owned());
        e
    }

    fn saved(changes: &[StateChange]) -> Vec<StateEntry> {
        changes
            .iter()
            .filter_map(|c| {
                Some(StateEntry {
                    detector: c.detector.clone(),
                    key: c.key.clone(),
                    state: c.state.clone()?,
                })
            })
            .collect()
    }

    const NOON: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + 12 * 3_600_000;

    #[test]
    fn seed_rules_fire_with_seed_descriptions() {
        let mut e = engine();
        let events = vec![
            signal(1, "7", "purchase", NOON, r#"{"amount":1500.5}"#),
            signal(2, "8", "purchase", NOON, r#"{"amount":99.99}"#),
        ];
        let anomalies = e.process(&events, 5);
        assert_eq!(anomalies.len(), 1);
        let a = &anomalies[0];
        assert_eq!(a.detector, "high_value_purchase");
        assert_eq!(a.kind, "threshold");
        assert_eq!(a.severity, Severity::High);
        assert_eq!(
            a.description,
            "User 7 made a high-value purchase of $1500.50"
        );
        assert_eq!(a.event_id, EventId::new(0, 1));
        assert_eq!(a.detected_at, 5);
        // Threshold rules are stateless: only the purchase-rate windows are kept and saved.
        assert_eq!(e.instances(), 2);
        let changes = e.checkpoint();
        assert!(
            changes
                .iter()
                .all(|c| c.detector == "rapid_successive_purchases"),
            "{changes:?}"
        );
        assert!(!e.has_changes());
        assert!(e.checkpoint().is_empty());
    }

    #[test]
    fn a_checkpoint_lists_each_instance_once_however_often_touched() {
        let mut e = engine();
        for i in 0..5 {
            e.process(
                &[signal(
                    i,
                    "u",
                    "purchase",
                    NOON + i as i64,
                    r#"{"amount":1}"#,
                )],
                0,
            );
        }
        let changes = e.checkpoint();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            changes[0].state.as_ref().unwrap()["state"]["entries"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn cooldown_suppresses_repeats_and_survives_restore() {
        let mut e = engine();
        let three_am = NOON - 9 * 3_600_000;
        let anomalies = e.process(
            &[
                signal(1, "u", "click", three_am, "{}"),
                signal(2, "u", "click", three_am + 60_000, "{}"),
            ],
            0,
        );
        let night: Vec<_> = anomalies
            .iter()
            .filter(|a| a.detector == "unusual_time_activity")
            .collect();
        assert_eq!(night.len(), 1, "{anomalies:?}");
        let saved = saved(&e.checkpoint());
        assert!(saved.iter().any(|s| s.detector == "unusual_time_activity"));
        let mut restarted = engine();
        assert!(restarted.restore(saved, &HashMap::new()).is_empty());
        let anomalies = restarted.process(&[signal(3, "u", "click", three_am + 120_000, "{}")], 0);
        assert!(
            anomalies
                .iter()
                .all(|a| a.detector != "unusual_time_activity")
        );
    }

    #[test]
    fn replay_from_a_checkpoint_rebuilds_the_same_state() {
        let login = |i: u64, loc: &str| {
            signal(
                i,
                "u",
                "login",
                NOON + i as i64 * 1000,
                &format!(r#"{{"success":false,"location":"{loc}"}}"#),
            )
        };
        let events: Vec<Event> = (0..12)
            .map(|i| login(i, if i < 6 { "US" } else { "EU" }))
            .collect();
        // A straight run.
        let mut straight = engine();
        let all = straight.process(&events, 0);
        // A run that checkpoints after 4 events, "crashes", restores and replays the rest.
        let mut first = engine();
        let mut before = first.process(&events[..4], 0);
        let checkpoint = saved(&first.checkpoint());
        let mut second = engine();
        assert!(second.restore(checkpoint, &HashMap::new()).is_empty());
        before.extend(second.process(&events[4..], 0));
        let ids = |v: &[Anomaly]| {
            v.iter()
                .map(|a| (a.event_id, a.detector.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&before), ids(&all));
        assert_eq!(saved(&second.checkpoint()), saved(&straight.checkpoint()));
    }

    #[test]
    fn idle_windows_are_dropped_and_deleted_at_the_next_checkpoint() {
        let mut e = engine();
        e.process(
            &[signal(
                1,
                "u",
                "login",
                NOON,
                r#"{"success":true,"location":"US"}"#,
            )],
            0,
        );
        let ids: Vec<String> = e.checkpoint().into_iter().map(|c| c.detector).collect();
        assert!(
            ids.contains(&"high_frequency_login".to_owned())
                && ids.contains(&"unusual_location_login".to_owned()),
            "{ids:?}"
        );
        assert_eq!(
            e.instances(),
            2,
            "login rate and novelty; the failure streak is 0, idle, dropped"
        );
        // Much later, another user's event moves time on: the sweep drops u's emptied window.
        e.process(&[signal(3, "v", "click", NOON + 20_000_000, "{}")], 0);
        e.sweep();
        let changes = e.checkpoint();
        let deleted: Vec<(&str, &str)> = changes
            .iter()
            .filter(|c| c.state.is_none())
            .map(|c| (c.detector.as_str(), c.key.as_str()))
            .collect();
        assert_eq!(deleted, [("high_frequency_login", "u")], "{changes:?}");
        assert_eq!(e.instances(), 1, "novelty keeps what it learned");
    }

    #[test]
    fn series_detectors_follow_entity_and_type_and_read_their_value_field() {
        let config = Config::load(Some(
            r#"
[[detectors]]
id = "latency"
kind = "zscore"
value_field = "response_time_ms"
severity = { medium = 0.3, high = 0.6, critical = 0.9 }
description = "{entity} {type} took {observed} ms"
"#,
        ))
        .unwrap();
        let mut e = Engine::new(config.detectors.into(), RuleContext::default(), 0);
        let mut events = Vec::new();
        for i in 0..300u64 {
            let ms = if i == 299 {
                5000.0
            } else {
                100.0 + (i % 7) as f64
            };
            events.push(signal(
                i,
                "svc",
                "api_call",
                NOON + i as i64 * 1000,
                &format!(r#"{{"response_time_ms":{ms}}}"#),
            ));
            // Another series of the same entity, and events without the field, are not mixed in.
            events.push(signal(
                1000 + i,
                "svc",
                "db_call",
                NOON + i as i64 * 1000,
                r#"{"response_time_ms":1}"#,
            ));
            events.push(signal(
                2000 + i,
                "svc",
                "api_call",
                NOON + i as i64 * 1000,
                r#"{"other":1}"#,
            ));
        }
        let anomalies = e.process(&events, 0);
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        assert_eq!(anomalies[0].event_id, EventId::new(0, 299));
        assert_eq!(anomalies[0].kind, "zscore");
        assert_eq!(e.instances(), 2, "one instance per (entity, type)");
        let keys: Vec<String> = e.checkpoint().into_iter().map(|c| c.key).collect();
        assert!(
            keys.contains(&r#"["svc","api_call"]"#.to_owned()),
            "{keys:?}"
        );
    }

    #[test]
    fn half_space_trees_learn_a_multivariate_series_online() {
        let config = Config::load(Some(
            r#"
[[detectors]]
id = "hosts"
kind = "half_space_trees"
features = ["cpu", "mem"]
window = 100
warm_up = 100
threshold = 0.8
severity = "high"
description = "{entity} {type} looks unusual"
"#,
        ))
        .unwrap();
        let mut e = Engine::new(config.detectors.into(), RuleContext::default(), 0);
        let mut events = Vec::new();
        for i in 0..1000u64 {
            let mut ev = signal(i, "host-1", "metrics", NOON + i as i64 * 1000, "{}");
            let (cpu, mem) = if i == 900 {
                (0.99, 0.01)
            } else {
                (0.3 + (i % 10) as f64 * 0.01, 0.5 + (i % 7) as f64 * 0.01)
            };
            ev.fields.insert("cpu".into(), cpu);
            ev.fields.insert("mem".into(), mem);
            events.push(ev);
        }
        let anomalies = e.process(&events, 0);
        assert!(
            anomalies.iter().any(|a| a.event_id == EventId::new(0, 900)),
            "{anomalies:?}"
        );
        assert!(
            anomalies.len() <= 10,
            "{} alarms on a regular series",
            anomalies.len()
        );
        let saved = e.checkpoint();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].key, r#"["host-1","metrics"]"#);
    }

    #[test]
    fn batch_models_key_by_partition_and_type_hand_over_versions_and_restore() {
        let config = Config::load(Some(
            r#"
[[detectors]]
id = "forest"
kind = "isolation_forest"
features = ["fields.x", "fields.y"]
warm_up = 100
window = 200
refit_every = "0s"
severity = "low"
description = "{entity}"
"#,
        ))
        .unwrap();
        let specs: Arc<[DetectorSpec]> = config.detectors.into();
        let row = |i: i64, x: f64| {
            let mut e = Event::new(format!("h{}", i % 7), "metrics", i * 1_000);
            e.id = EventId::new(3, i as u64);
            e.fields.insert("x".into(), x);
            e.fields.insert("y".into(), ((i * 37) % 11) as f64);
            e
        };
        let events: Vec<Event> = (0..150).map(|i| row(i, (i % 13) as f64)).collect();
        let mut a = Engine::new(specs.clone(), RuleContext::default(), 3);
        a.process(&events, 77);
        let models = a.take_models();
        assert_eq!(models.len(), 1, "one fit after the warm-up");
        let m = &models[0].info;
        assert_eq!(
            (m.detector.as_str(), m.key.as_str()),
            ("forest", "[3,\"metrics\"]")
        );
        assert_eq!(
            (m.version, m.rows, m.created_at, m.trained_at),
            (1, 100, 77, 99_000)
        );
        assert!(a.take_models().is_empty(), "handed over once");
        let changes = a.checkpoint();
        assert_eq!(
            changes.len(),
            1,
            "one instance for every entity of the type"
        );
        let entries = saved(&changes);
        assert_eq!(entries[0].state["model_version"], 1);
        assert_eq!(
            Engine::models_needed(&entries),
            vec![("forest".to_owned(), "[3,\"metrics\"]".to_owned(), 1)]
        );
        // A restart with the stored model continues exactly; without it, the detector refits.
        let stored = HashMap::from([(
            ("forest".to_owned(), m.key.clone()),
            models[0].model.clone(),
        )]);
        let mut b = Engine::new(specs.clone(), RuleContext::default(), 3);
        assert!(b.restore(entries.clone(), &stored).is_empty());
        let mut c = Engine::new(specs, RuleContext::default(), 3);
        assert!(c.restore(entries, &HashMap::new()).is_empty());
        let later: Vec<Event> = (150..160)
            .map(|i| row(i, if i == 155 { 500.0 } else { (i % 13) as f64 }))
            .collect();
        let (from_a, from_b) = (a.process(&later, 0), b.process(&later, 0));
        assert_eq!(from_a, from_b);
        assert_eq!(from_a.len(), 1, "{from_a:?}");
        assert!(b.take_models().is_empty());
        c.process(&later, 0);
        assert_eq!(
            c.take_models()[0].info.version,
            2,
            "refitted: the model was missing"
        );
    }

    #[test]
    fn aggregated_series_count_events_without_values_per_interval() {
        let config = Config::load(Some(
            r#"
[[detectors]]
id = "login_volume"
kind = "mad"
types = ["login"]
key = "entity"
aggregate = { every = "1m", of = "count" }
severity = "medium"
description = "{entity}: {observed} logins in a minute"
"#,
        ))
        .unwrap();
        let mut e = Engine::new(config.detectors.into(), RuleContext::default(), 0);
        let mut events = Vec::new();
        for m in 0..120i64 {
            for k in 0..(19 + m % 3) {
                events.push(signal(0, "7", "login", m * 60_000 + k * 2_500, "{}"));
            }
        }
        assert!(e.process(&events, 0).is_empty());
        let burst: Vec<Event> = (0..200)
            .map(|k| signal(0, "7", "login", 120 * 60_000 + k * 100, "{}"))
            .chain([signal(0, "7", "login", 121 * 60_000, "{}")])
            .collect();
        let found = e.process(&burst, 0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].description, "7: 200.0 logins in a minute");
        assert_eq!(
            found[0].ts,
            121 * 60_000,
            "reported on the event that closed the minute"
        );
        // The state survives a checkpoint and restore, with its open bucket.
        let saved = saved(&e.checkpoint());
        let mut restored = Engine::new(e.specs.clone(), RuleContext::default(), 0);
        assert!(restored.restore(saved, &HashMap::new()).is_empty());
        let next = [signal(0, "7", "login", 125 * 60_000, "{}")];
        assert_eq!(e.process(&next, 0), restored.process(&next, 0));
    }

    #[test]
    fn a_saved_state_that_does_not_restore_is_dropped_and_deleted() {
        let mut e = engine();
        let dropped = e.restore(
            vec![
                StateEntry {
                    detector: "high_frequency_login".into(),
                    key: "u9".into(),
                    state: json!({"state": {"entries": "nope"}}),
                },
                // Unknown detectors are ignored (removed from the configuration).
                StateEntry {
                    detector: "gone".into(),
                    key: "k".into(),
                    state: json!({}),
                },
            ],
            &HashMap::new(),
        );
        assert_eq!(dropped.len(), 1);
        let err = dropped[0].to_string();
        assert!(
            err.contains("high_frequency_login") && err.contains("u9"),
            "{err}"
        );
        assert_eq!(e.instances(), 0, "the instance starts afresh");
        let changes = e.checkpoint();
        assert_eq!(
            changes,
            vec![StateChange {
                detector: "high_frequency_login".into(),
                key: "u9".into(),
                state: None,
            }],
            "the old state is deleted at the next checkpoint"
        );
    }
}
