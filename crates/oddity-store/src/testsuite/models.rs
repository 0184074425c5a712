//! Conformance cases of [`ModelStore`]: version numbering, pins and rollback, training points.
//!
//! Same pattern as [`store_test_suite!`](crate::store_test_suite): each case is a generic
//! `async fn case<S: ModelStore>(store: &S)` that panics on a violation, and
//! [`model_store_test_suite!`](crate::model_store_test_suite) expands to one `#[tokio::test]`
//! per case for a backend:
//!
//! ```ignore
//! oddity_store::model_store_test_suite!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap();
//!     (dir, store)
//! });
//! ```

use serde_json::json;

use super::T0;
use crate::models::{ModelStore, ModelVersionInfo, TrainingPoint};

fn points(values: &[(i64, f64)]) -> Vec<TrainingPoint> {
    values
        .iter()
        .map(|&(timestamp, value)| TrainingPoint { timestamp, value })
        .collect()
}

/// Saves a small model for `series`, tagged with `tag`, and returns its version.
async fn save<S: ModelStore>(store: &S, series: &str, tag: i64) -> u32 {
    let pts = points(&[(1, 10.0), (2, 10.5), (3, 11.0)]);
    store
        .save_model(series, &json!({ "tag": tag }), &pts, T0 + tag)
        .await
        .unwrap()
}

async fn active<S: ModelStore>(store: &S, series: &str) -> Option<u32> {
    store.active_model(series).await.unwrap().map(|m| m.version)
}

/// Versions start at 1 and grow by one per save; the saved model, time and count read back.
pub async fn versions_start_at_one_and_increase<S: ModelStore>(store: &S) {
    for expected in 1..=3 {
        assert_eq!(
            save(store, "sensor_01", i64::from(expected)).await,
            expected
        );
    }
    let m = store.model("sensor_01", 2).await.unwrap().unwrap();
    assert_eq!(
        (m.series_id.as_str(), m.version, m.created_at, m.points),
        ("sensor_01", 2, T0 + 2, 3)
    );
    assert_eq!(m.model, json!({ "tag": 2 }));
    assert!(store.model("sensor_01", 4).await.unwrap().is_none());
    assert!(store.model("sensor_01", 0).await.unwrap().is_none());
    let listed = store.versions("sensor_01").await.unwrap();
    let expected: Vec<ModelVersionInfo> = (1..=3)
        .map(|v| ModelVersionInfo {
            version: v,
            created_at: T0 + i64::from(v),
            points: 3,
            pinned: false,
            active: v == 3,
        })
        .collect();
    assert_eq!(listed, expected);
}

/// Versions belong to exactly one series id: no prefix matching (seed 001's bug), and ids with
/// `_v`, digits or unicode work.
pub async fn series_ids_are_exact<S: ModelStore>(store: &S) {
    assert_eq!(save(store, "sensor_10", 1).await, 1);
    assert_eq!(save(store, "sensor_10", 2).await, 2);
    assert_eq!(save(store, "sensor_10", 3).await, 3);
    assert_eq!(
        save(store, "sensor_1", 4).await,
        1,
        "a prefix must not see sensor_10"
    );
    for id in [
        "temp_v2",
        "temp_v2_v3",
        "_v",
        "v1",
        "série ☃",
        "sensor_1%",
        "sensor__",
    ] {
        assert_eq!(save(store, id, 5).await, 1, "{id}");
        assert_eq!(save(store, id, 6).await, 2, "{id}");
    }
    assert_eq!(active(store, "sensor_1").await, Some(1));
    assert_eq!(active(store, "sensor_").await, None);
    assert_eq!(active(store, "sensor_1%").await, Some(2));
}

/// Unknown series: no model, no versions, no points, nothing to pin or roll back.
pub async fn unknown_series_is_empty<S: ModelStore>(store: &S) {
    assert!(store.active_model("nope").await.unwrap().is_none());
    assert!(store.model("nope", 1).await.unwrap().is_none());
    assert!(store.versions("nope").await.unwrap().is_empty());
    assert!(store.training_points("nope", 1).await.unwrap().is_none());
    assert!(!store.pin("nope", 1).await.unwrap());
    assert!(!store.unpin("nope").await.unwrap());
    assert_eq!(store.rollback("nope").await.unwrap(), None);
    assert_eq!(store.series_count().await.unwrap(), 0);
}

/// The active version is the latest unless one is pinned; a pin survives newer fits; pinning a
/// missing version changes nothing.
pub async fn pin_overrides_latest<S: ModelStore>(store: &S) {
    for tag in 1..=3 {
        save(store, "s", tag).await;
    }
    assert_eq!(active(store, "s").await, Some(3));
    assert!(store.pin("s", 2).await.unwrap());
    assert_eq!(active(store, "s").await, Some(2));
    assert_eq!(
        store.active_model("s").await.unwrap().unwrap().model,
        json!({ "tag": 2 })
    );
    assert_eq!(save(store, "s", 4).await, 4);
    assert_eq!(
        active(store, "s").await,
        Some(2),
        "a newer fit keeps the pin"
    );
    assert!(!store.pin("s", 9).await.unwrap());
    assert_eq!(active(store, "s").await, Some(2));
    let flags: Vec<(u32, bool, bool)> = store
        .versions("s")
        .await
        .unwrap()
        .iter()
        .map(|v| (v.version, v.pinned, v.active))
        .collect();
    assert_eq!(
        flags,
        vec![
            (1, false, false),
            (2, true, true),
            (3, false, false),
            (4, false, false)
        ]
    );
    assert!(store.unpin("s").await.unwrap());
    assert!(!store.unpin("s").await.unwrap());
    assert_eq!(active(store, "s").await, Some(4));
    // Pins are per series.
    save(store, "other", 1).await;
    save(store, "other", 2).await;
    assert_eq!(active(store, "other").await, Some(2));
}

/// Rollback pins the version below the active one, repeatedly, and stops at the first.
pub async fn rollback_walks_back<S: ModelStore>(store: &S) {
    assert_eq!(save(store, "r", 1).await, 1);
    assert_eq!(
        store.rollback("r").await.unwrap(),
        None,
        "nothing before v1"
    );
    assert_eq!(active(store, "r").await, Some(1));
    save(store, "r", 2).await;
    save(store, "r", 3).await;
    assert_eq!(store.rollback("r").await.unwrap(), Some(2));
    assert_eq!(active(store, "r").await, Some(2));
    assert_eq!(store.rollback("r").await.unwrap(), Some(1));
    assert_eq!(active(store, "r").await, Some(1));
    assert_eq!(store.rollback("r").await.unwrap(), None);
    assert_eq!(active(store, "r").await, Some(1));
    assert!(store.unpin("r").await.unwrap());
    assert_eq!(active(store, "r").await, Some(3));
}

/// Training points read back ordered by timestamp (ties in insertion order), values exact.
pub async fn training_points_round_trip_in_time_order<S: ModelStore>(store: &S) {
    let given = points(&[
        (30, 3.0),
        (-5, -1e300),
        (10, 0.1 + 0.2),
        (10, f64::MIN_POSITIVE),
        (i64::MAX, f64::MAX),
        (i64::MIN, -0.5),
    ]);
    let v = store.save_model("p", &json!({}), &given, T0).await.unwrap();
    let got = store.training_points("p", v).await.unwrap().unwrap();
    let expected = points(&[
        (i64::MIN, -0.5),
        (-5, -1e300),
        (10, 0.1 + 0.2),
        (10, f64::MIN_POSITIVE),
        (30, 3.0),
        (i64::MAX, f64::MAX),
    ]);
    assert_eq!(got, expected);
    assert_eq!(store.model("p", v).await.unwrap().unwrap().points, 6);
    // Versions keep their own points.
    let v2 = store
        .save_model("p", &json!({}), &points(&[(1, 1.0)]), T0)
        .await
        .unwrap();
    assert_eq!(
        store.training_points("p", v2).await.unwrap().unwrap(),
        points(&[(1, 1.0)])
    );
    assert_eq!(
        store.training_points("p", v).await.unwrap().unwrap().len(),
        6
    );
    assert!(store.training_points("p", 3).await.unwrap().is_none());
    // A version with no points exists and has an empty list.
    let v3 = store.save_model("p", &json!({}), &[], T0).await.unwrap();
    assert_eq!(
        store.training_points("p", v3).await.unwrap(),
        Some(Vec::new())
    );
}

/// A non-finite training value is refused and nothing is written.
pub async fn non_finite_point_writes_nothing<S: ModelStore>(store: &S) {
    let bad = points(&[(1, 1.0), (2, f64::NAN)]);
    assert!(store.save_model("n", &json!({}), &bad, T0).await.is_err());
    assert!(store.versions("n").await.unwrap().is_empty());
    assert_eq!(store.series_count().await.unwrap(), 0);
    assert_eq!(save(store, "n", 1).await, 1);
}

/// The count of distinct series ever fitted.
pub async fn series_count_counts_distinct_series<S: ModelStore>(store: &S) {
    assert_eq!(store.series_count().await.unwrap(), 0);
    save(store, "a", 1).await;
    save(store, "a", 2).await;
    save(store, "b", 1).await;
    save(store, "a_v1", 1).await;
    assert_eq!(store.series_count().await.unwrap(), 3);
}

/// Model JSON reads back as saved (nested values, unicode, key order).
pub async fn model_json_round_trips<S: ModelStore>(store: &S) {
    let model = json!({
        "z": 1, "a": [1.5, -2e-300, 1.7976931348623157e308], "nested": { "s": "é ☃ \"q\"" },
        "n": null, "b": true
    });
    let v = store.save_model("j", &model, &[], T0).await.unwrap();
    assert_eq!(store.model("j", v).await.unwrap().unwrap().model, model);
}

/// Expands to one `#[tokio::test]` per [`ModelStore`] conformance case, inside a
/// `model_store_conformance` module. The argument is like
/// [`store_test_suite!`](crate::store_test_suite)'s: a future of `(guard, store)`, the store
/// empty.
#[macro_export]
macro_rules! model_store_test_suite {
    ($factory:expr) => {
        $crate::model_store_test_suite!(@cases $factory;
            versions_start_at_one_and_increase,
            series_ids_are_exact,
            unknown_series_is_empty,
            pin_overrides_latest,
            rollback_walks_back,
            training_points_round_trip_in_time_order,
            non_finite_point_writes_nothing,
            series_count_counts_distinct_series,
            model_json_round_trips,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        mod model_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let (_guard, store) = $factory.await;
                    $crate::testsuite::models::$case(&store).await;
                }
            )+
        }
    };
}
