//! Cases about commit: round trip, fencing, idempotence, state, odd values.

use std::collections::BTreeMap;

use oddity_model::{EventId, Severity};
use serde_json::json;

use super::{HOUR, T0, anomaly, batch, event, events_at, must_commit, newest_first};
use crate::{
    AnomalyQuery, CommitBatch, DetectorModel, DetectorModelInfo, EventQuery, MODEL_VERSIONS_KEPT,
    SavedState, StateChange, StateEntry, Store, StoreError,
};

fn all_events() -> EventQuery {
    EventQuery {
        size: 1000,
        ..EventQuery::default()
    }
}

fn all_anomalies() -> AnomalyQuery {
    AnomalyQuery {
        size: 1000,
        ..AnomalyQuery::default()
    }
}

/// Counts of events, anomalies and state entries of partition 0 and 1.
async fn footprint<S: Store>(store: &S) -> (u64, u64, usize) {
    let events = store.events(&all_events()).await.unwrap().total;
    let anomalies = store.anomalies(&all_anomalies()).await.unwrap().total;
    let state = store.load_state(0).await.unwrap().entries.len()
        + store.load_state(1).await.unwrap().entries.len();
    (events, anomalies, state)
}

/// Events and anomalies read back equal to what was committed, every field included.
pub async fn commit_then_query_round_trips<S: Store>(store: &S) {
    let mut events = events_at(
        0,
        0,
        &[
            ("u1", "purchase", T0 + 5),
            ("u2", "login", T0 + 9),
            ("u1", "click", T0 + 1),
        ],
    );
    events[0].value = Some(1500.25);
    events[0].fields = BTreeMap::from([("amount".to_owned(), 1500.25), ("items".to_owned(), 3.0)]);
    // Raw JSON: odd spacing, key order and number forms must survive as written.
    events[0].attrs =
        Some(r#"{ "z": 1,  "a": [1.50, 2e3, {"n": null}], "s": "é\u00e9\n" }"#.to_owned());
    events[1].attrs = None;
    let a = anomaly(&events[0], "high_value_purchase", Severity::High, T0 + 100);
    must_commit(store, batch(0, 0, events.clone(), vec![a.clone()])).await;

    let page = store.events(&all_events()).await.unwrap();
    let mut expected = events.clone();
    newest_first(&mut expected);
    assert_eq!(page.total, 3);
    assert_eq!(page.items, expected);
    let attrs = page
        .items
        .iter()
        .find(|e| e.id == events[0].id)
        .unwrap()
        .attrs
        .clone();
    assert_eq!(attrs, events[0].attrs, "attrs must be stored as raw text");

    let page = store.anomalies(&all_anomalies()).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].anomaly, a);
    assert!(page.items[0].id > 0);
}

/// A batch that does not start at the stored position is rejected and writes nothing.
pub async fn position_fencing_writes_nothing_on_conflict<S: Store>(store: &S) {
    let first = events_at(0, 0, &[("u1", "login", T0), ("u1", "login", T0 + 1)]);
    must_commit(store, batch(0, 0, first, Vec::new())).await;
    let before = footprint(store).await;

    let mut stale = batch(0, 0, events_at(0, 0, &[("u9", "login", T0)]), Vec::new());
    let e = event(0, 7, "u9", "login", T0);
    stale.anomalies.push(anomaly(&e, "d", Severity::Low, T0));
    stale.state.push(StateChange {
        detector: "d".into(),
        key: "u9".into(),
        state: Some(json!(1)),
    });
    match store.commit(stale).await {
        Err(StoreError::PositionConflict {
            partition: 0,
            stored: 2,
            batch_from: 0,
        }) => {}
        other => panic!("expected a position conflict, got {other:?}"),
    }
    // Ahead of the stored position, and on a partition never committed (absent = 0).
    let ahead = batch(0, 5, events_at(0, 5, &[("u9", "login", T0)]), Vec::new());
    assert!(matches!(
        store.commit(ahead).await,
        Err(StoreError::PositionConflict {
            stored: 2,
            batch_from: 5,
            ..
        })
    ));
    let fresh = batch(1, 3, events_at(1, 3, &[("u9", "login", T0)]), Vec::new());
    assert!(matches!(
        store.commit(fresh).await,
        Err(StoreError::PositionConflict {
            stored: 0,
            batch_from: 3,
            ..
        })
    ));

    assert_eq!(footprint(store).await, before);
    assert_eq!(store.positions().await.unwrap(), BTreeMap::from([(0, 2)]));
}

/// Replaying a committed batch is rejected; an anomaly already stored is never stored twice.
pub async fn replay_is_rejected_and_anomalies_never_duplicate<S: Store>(store: &S) {
    let events = events_at(0, 0, &[("u1", "purchase", T0), ("u2", "purchase", T0 + 1)]);
    let a = anomaly(&events[0], "high_value_purchase", Severity::High, T0 + 10);
    let b = batch(0, 0, events.clone(), vec![a.clone()]);
    must_commit(store, b.clone()).await;
    assert!(matches!(
        store.commit(b).await,
        Err(StoreError::PositionConflict { .. })
    ));

    // The next batch re-raises the same (event, detector) and one new anomaly.
    let more = events_at(0, 2, &[("u1", "purchase", T0 + 2)]);
    let mut again = a.clone();
    again.description = "raised twice".into();
    let other_detector = anomaly(
        &events[0],
        "rapid_successive_purchases",
        Severity::Medium,
        T0 + 11,
    );
    must_commit(
        store,
        batch(0, 2, more, vec![again, a.clone(), other_detector]),
    )
    .await;

    let page = store.anomalies(&all_anomalies()).await.unwrap();
    assert_eq!(page.total, 2);
    let stored = page
        .items
        .iter()
        .find(|s| s.anomaly.detector == "high_value_purchase")
        .unwrap();
    assert_eq!(stored.anomaly, a, "the first stored anomaly is kept");
    assert_eq!(store.events(&all_events()).await.unwrap().total, 3);
    assert_eq!(store.positions().await.unwrap()[&0], 3);
}

/// A batch whose end is before its start is refused without writing.
pub async fn invalid_batch_writes_nothing<S: Store>(store: &S) {
    let mut b = batch(0, 0, events_at(0, 0, &[("u1", "login", T0)]), Vec::new());
    b.to_offset = 0;
    b.from_offset = 1;
    assert!(store.commit(b).await.is_err());
    assert_eq!(footprint(store).await, (0, 0, 0));
    assert!(store.positions().await.unwrap().is_empty());
}

/// A batch without events (all filtered out, say) still moves the position.
pub async fn empty_batch_only_advances_position<S: Store>(store: &S) {
    let b = CommitBatch {
        partition: 3,
        from_offset: 0,
        to_offset: 42,
        ..CommitBatch::default()
    };
    must_commit(store, b).await;
    assert_eq!(store.positions().await.unwrap(), BTreeMap::from([(3, 42)]));
    must_commit(
        store,
        CommitBatch {
            partition: 3,
            from_offset: 42,
            to_offset: 42,
            ..CommitBatch::default()
        },
    )
    .await;
    assert_eq!(store.positions().await.unwrap(), BTreeMap::from([(3, 42)]));
    assert_eq!(footprint(store).await, (0, 0, 0));
}

/// `positions` lists every partition that committed, and only those.
pub async fn positions_of_every_partition<S: Store>(store: &S) {
    assert!(store.positions().await.unwrap().is_empty());
    for p in [0u32, 5, 1023] {
        let from = u64::from(p) * 10;
        let b = CommitBatch {
            partition: p,
            from_offset: 0,
            to_offset: from + 1,
            ..CommitBatch::default()
        };
        must_commit(store, b).await;
    }
    assert_eq!(
        store.positions().await.unwrap(),
        BTreeMap::from([(0, 1), (5, 51), (1023, 10231)])
    );
}

/// State is upserted and deleted in batch order and loaded per partition.
pub async fn state_upsert_delete_and_load_per_partition<S: Store>(store: &S) {
    let change = |d: &str, k: &str, s: Option<serde_json::Value>| StateChange {
        detector: d.into(),
        key: k.into(),
        state: s,
    };
    let mut b = CommitBatch {
        partition: 0,
        to_offset: 1,
        ..CommitBatch::default()
    };
    b.state = vec![
        change("rate", "u1", Some(json!({"window": [1, 2, 3]}))),
        change("rate", "u2", Some(json!({"window": []}))),
        change("novelty", "u1", Some(json!(["EU"]))),
        change("rate", "u2", Some(json!({"window": [9]}))), // last change wins
    ];
    must_commit(store, b).await;
    let mut b1 = CommitBatch {
        partition: 1,
        to_offset: 1,
        ..CommitBatch::default()
    };
    b1.state = vec![change("rate", "u7", Some(json!(7)))];
    must_commit(store, b1).await;

    let entry = |d: &str, k: &str, s: serde_json::Value| StateEntry {
        detector: d.into(),
        key: k.into(),
        state: s,
    };
    let mut loaded = store.load_state(0).await.unwrap().entries;
    loaded.sort_by(|a, b| (&a.detector, &a.key).cmp(&(&b.detector, &b.key)));
    assert_eq!(
        loaded,
        vec![
            entry("novelty", "u1", json!(["EU"])),
            entry("rate", "u1", json!({"window": [1, 2, 3]})),
            entry("rate", "u2", json!({"window": [9]})),
        ]
    );
    assert_eq!(
        store.load_state(1).await.unwrap().entries,
        vec![entry("rate", "u7", json!(7))]
    );
    assert_eq!(store.load_state(2).await.unwrap(), SavedState::default());

    let mut b = CommitBatch {
        partition: 0,
        from_offset: 1,
        to_offset: 2,
        ..CommitBatch::default()
    };
    b.state = vec![
        change("rate", "u1", None),
        change("novelty", "u1", Some(json!(["EU", "US"]))),
        change("x", "gone", None),
    ];
    must_commit(store, b).await;
    let mut loaded = store.load_state(0).await.unwrap().entries;
    loaded.sort_by(|a, b| (&a.detector, &a.key).cmp(&(&b.detector, &b.key)));
    assert_eq!(
        loaded,
        vec![
            entry("novelty", "u1", json!(["EU", "US"])),
            entry("rate", "u2", json!({"window": [9]}))
        ]
    );
}

/// Non-ASCII and very long strings are stored intact, and usable as filters.
pub async fn unicode_and_long_strings_round_trip<S: Store>(store: &S) {
    let long = "x".repeat(100_000);
    let entity = "Jürgen 🦀 名前 \u{7f}'\"%_?"; // quotes and LIKE wildcards too
    let mut events = events_at(0, 0, &[(entity, "café", T0), (&long, "login", T0 + 1)]);
    events[0].attrs = Some(format!(
        r#"{{"text":"{}","emoji":"🚨"}}"#,
        "ü".repeat(50_000)
    ));
    let mut a = anomaly(&events[0], "détecteur", Severity::Critical, T0);
    a.description = format!("{entity} {}", "ß".repeat(20_000));
    must_commit(store, batch(0, 0, events.clone(), vec![a.clone()])).await;

    let q = EventQuery {
        entity: Some(entity.into()),
        ..EventQuery::default()
    };
    assert_eq!(
        store.events(&q).await.unwrap().items,
        vec![events[0].clone()]
    );
    let q = EventQuery {
        entity: Some(long.clone()),
        ..EventQuery::default()
    };
    assert_eq!(
        store.events(&q).await.unwrap().items,
        vec![events[1].clone()]
    );
    let q = AnomalyQuery {
        detector: Some("détecteur".into()),
        ..AnomalyQuery::default()
    };
    assert_eq!(store.anomalies(&q).await.unwrap().items[0].anomaly, a);
    let risk = store.entity_risk(entity, 0).await.unwrap();
    assert_eq!((risk.total_anomalies, risk.critical), (1, 1));
}

/// NaN and infinities are not stored (read back as absent), huge values round-trip exactly.
pub async fn non_finite_and_huge_values<S: Store>(store: &S) {
    let values = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        -0.0,
        1e-300,
    ];
    let mut events: Vec<_> = (0..values.len() as u64)
        .map(|i| event(0, i, "u1", "metric", T0 + i as i64))
        .collect();
    for (e, v) in events.iter_mut().zip(values) {
        e.value = Some(v);
        e.fields = BTreeMap::from([("v".to_owned(), v), ("ok".to_owned(), 1.0)]);
    }
    let mut a = anomaly(&events[0], "zscore", Severity::Low, T0);
    a.explanation.expected = Some(oddity_model::Expected {
        low: Some(-1e308),
        high: Some(f64::MAX),
    });
    must_commit(store, batch(0, 0, events.clone(), vec![a.clone()])).await;

    let page = store
        .events(&EventQuery {
            size: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    for got in &page.items {
        let sent = &events[got.id.offset() as usize];
        let v = sent.value.unwrap_or(f64::NAN);
        if v.is_finite() {
            assert_eq!(got.value, Some(v), "value {v}");
            assert_eq!(got.fields, sent.fields);
        } else {
            assert_eq!(got.value, None, "non-finite value {v} reads back as absent");
            assert_eq!(got.fields, BTreeMap::from([("ok".to_owned(), 1.0)]));
        }
    }
    let stored = &store
        .anomalies(&AnomalyQuery::default())
        .await
        .unwrap()
        .items[0]
        .anomaly;
    assert_eq!(stored.event.value, None);
    assert_eq!(stored.explanation, a.explanation);
    assert_eq!(stored.event_id, EventId::new(0, 0));
}

/// A checkpoint records the offset its state reflects; batches without one keep it.
pub async fn checkpoint_offset_is_kept_until_the_next_checkpoint<S: Store>(store: &S) {
    assert_eq!(store.load_state(4).await.unwrap().offset, 0);
    let change = StateChange {
        detector: "rate".into(),
        key: "u1".into(),
        state: Some(json!([1])),
    };
    let b = CommitBatch {
        partition: 4,
        to_offset: 10,
        state: vec![change],
        state_offset: Some(10),
        ..CommitBatch::default()
    };
    must_commit(store, b).await;
    let b = CommitBatch {
        partition: 4,
        from_offset: 10,
        to_offset: 25,
        ..CommitBatch::default()
    };
    must_commit(store, b).await;
    let saved = store.load_state(4).await.unwrap();
    assert_eq!((saved.offset, saved.entries.len()), (10, 1));
    assert_eq!(store.positions().await.unwrap()[&4], 25);
    let bad = CommitBatch {
        partition: 4,
        from_offset: 25,
        to_offset: 26,
        state_offset: Some(30),
        ..CommitBatch::default()
    };
    assert!(
        store.commit(bad).await.is_err(),
        "a checkpoint cannot be ahead of the batch"
    );
    assert_eq!(store.positions().await.unwrap()[&4], 25);
}

/// A model version of (`detector`, `key`) whose JSON names its version.
fn model(detector: &str, key: &str, version: u32) -> DetectorModel {
    DetectorModel {
        info: DetectorModelInfo {
            detector: detector.into(),
            key: key.into(),
            version,
            created_at: T0 + i64::from(version),
            trained_at: T0 - HOUR + i64::from(version),
            rows: 1_000 + u64::from(version),
        },
        model: json!({ "version": version, "trees": [[0.5, 1.25e-300]], "name": "naïve ✓" }),
    }
}

/// Detector models: saved with the batch, listed by key and version, fetched by version or
/// newest, a re-saved version ignored (replay), old versions pruned, nothing saved by a
/// rejected batch.
pub async fn detector_models_versions_replay_and_pruning<S: Store>(store: &S) {
    assert!(store.detector_models("forest").await.unwrap().is_empty());
    assert_eq!(
        store.detector_model("forest", "k", None).await.unwrap(),
        None
    );
    let b = CommitBatch {
        partition: 0,
        to_offset: 5,
        models: vec![model("forest", "[0,\"cpu\"]", 1), model("forest", "b", 1)],
        ..CommitBatch::default()
    };
    must_commit(store, b).await;
    let got = store
        .detector_model("forest", "[0,\"cpu\"]", Some(1))
        .await
        .unwrap();
    assert_eq!(got, Some(model("forest", "[0,\"cpu\"]", 1)));
    // A replay fits version 1 again, later, maybe differently: the stored one stays.
    let mut again = model("forest", "b", 1);
    again.info.created_at += 99;
    again.model = json!({"other": true});
    let b = CommitBatch {
        partition: 0,
        from_offset: 5,
        to_offset: 6,
        models: vec![again, model("forest", "b", 2)],
        ..CommitBatch::default()
    };
    must_commit(store, b).await;
    assert_eq!(
        store.detector_model("forest", "b", Some(1)).await.unwrap(),
        Some(model("forest", "b", 1))
    );
    assert_eq!(
        store.detector_model("forest", "b", None).await.unwrap(),
        Some(model("forest", "b", 2)),
        "no version means the newest"
    );
    assert_eq!(
        store.detector_model("forest", "b", Some(3)).await.unwrap(),
        None
    );
    assert_eq!(
        store.detector_model("other", "b", None).await.unwrap(),
        None
    );
    let listed: Vec<(String, u32)> = store
        .detector_models("forest")
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.key, i.version))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("[0,\"cpu\"]".to_owned(), 1),
            ("b".to_owned(), 1),
            ("b".to_owned(), 2)
        ]
    );
    assert_eq!(
        store.detector_models("forest").await.unwrap()[0],
        model("forest", "[0,\"cpu\"]", 1).info
    );
    // A rejected batch saves no model.
    let bad = CommitBatch {
        partition: 0,
        from_offset: 0,
        to_offset: 1,
        models: vec![model("forest", "c", 1)],
        ..CommitBatch::default()
    };
    assert!(store.commit(bad).await.is_err());
    assert!(
        store
            .detector_model("forest", "c", None)
            .await
            .unwrap()
            .is_none()
    );
    // Saving version 3 .. 3 + KEPT keeps the newest KEPT versions of that key only.
    let newest = 2 + MODEL_VERSIONS_KEPT + 1;
    let b = CommitBatch {
        partition: 0,
        from_offset: 6,
        to_offset: 7,
        models: (3..=newest).map(|v| model("forest", "b", v)).collect(),
        ..CommitBatch::default()
    };
    must_commit(store, b).await;
    let versions: Vec<u32> = store
        .detector_models("forest")
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.key == "b")
        .map(|i| i.version)
        .collect();
    assert_eq!(
        versions,
        (newest - MODEL_VERSIONS_KEPT + 1..=newest).collect::<Vec<_>>()
    );
    assert!(
        store
            .detector_model("forest", "[0,\"cpu\"]", Some(1))
            .await
            .unwrap()
            .is_some(),
        "pruning is per key"
    );
}
