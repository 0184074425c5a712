//! The shared test suite every statistical detector passes, table-driven over
//! [`StatsConfig::all_defaults`]: constant and zero series never alarm, missing values are
//! ignored, warm-up is silent, a clear spike fires with a sane score and band, odd timestamps do
//! not panic, and snapshot → restore gives the same future verdicts (also as a proptest).

use oddity_model::Event;
use proptest::prelude::*;

use super::*;
use crate::field::Attrs;
use crate::{Detector, Input, Verdict};

const MINUTE: i64 = 60_000;

/// Feeds one value (None: the event carries no value) at `ts` through the `Detector` trait.
fn feed(detector: &mut dyn Detector, ts: i64, value: Option<f64>) -> Verdict {
    let mut event = Event::new("sensor-1", "temperature", ts);
    event.value = value;
    let attrs = Attrs::new(&event);
    detector.observe(&Input::new(&event, &attrs))
}

/// Deterministic noise in [-1, 1] (a 64-bit LCG), so tests need no RNG crate.
fn noise(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// A noisy series around 100 (uniform noise, σ ≈ 0.58) with a daily cycle smaller than the noise,
/// one point per minute.
fn ordinary(n: usize) -> Vec<(i64, f64)> {
    noise(7, n)
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let ts = i as i64 * MINUTE;
            let phase = (ts % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
            (ts, 100.0 + 0.5 * phase.sin() + e)
        })
        .collect()
}

fn every_detector() -> Vec<(String, StatsConfig)> {
    StatsConfig::all_defaults()
        .into_iter()
        .map(|c| (c.kind().to_string(), c))
        .collect()
}

#[test]
fn defaults_are_valid_and_named() {
    for (name, config) in every_detector() {
        assert!(
            config.validate().is_empty(),
            "{name}: {:?}",
            config.validate()
        );
        assert_eq!(config.build().kind(), config.kind(), "{name}");
        assert_eq!(
            StatsConfig::default_for(config.kind()),
            Some(config.clone())
        );
        // Round-trips through the tagged configuration format.
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(&format!("\"kind\":\"{name}\"")), "{json}");
        assert_eq!(serde_json::from_str::<StatsConfig>(&json).unwrap(), config);
    }
}

#[test]
fn validation_reports_every_problem_with_its_value() {
    struct Case {
        name: &'static str,
        json: &'static str,
        problems: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "zscore window and threshold",
            json: r#"{"kind":"zscore","window":1,"warmup":1,"threshold":-1}"#,
            problems: &["window must be at least 2, got 1", "warmup", "got -1"],
        },
        Case {
            name: "ewma alpha",
            json: r#"{"kind":"ewma","alpha":1.5}"#,
            problems: &["alpha must be in (0, 1), got 1.5"],
        },
        Case {
            name: "mad threshold nan-like",
            json: r#"{"kind":"mad","threshold":0}"#,
            problems: &["got 0"],
        },
        Case {
            name: "seasonal bins and gamma",
            json: r#"{"kind":"seasonal","bins":1,"gamma":0}"#,
            problems: &[
                "bins must be in 2..=10080, got 1",
                "gamma must be in (0, 1], got 0",
            ],
        },
        Case {
            name: "change point drift",
            json: r#"{"kind":"change_point","drift":0,"warmup":1}"#,
            problems: &["drift", "warmup must be at least 2, got 1"],
        },
        Case {
            name: "streaming features",
            json: r#"{"kind":"streaming","features":[],"tail_fraction":0.7}"#,
            problems: &[
                "features must be a non-empty list",
                "tail_fraction must be in (0, 0.5), got 0.7",
            ],
        },
    ];
    for case in cases {
        let config: StatsConfig = serde_json::from_str(case.json).unwrap();
        let problems = config.validate();
        assert_eq!(
            problems.len(),
            case.problems.len(),
            "{}: {problems:?}",
            case.name
        );
        for (got, want) in problems.iter().zip(case.problems) {
            assert!(
                got.contains(want),
                "{}: `{got}` should mention `{want}`",
                case.name
            );
        }
    }
}

#[test]
fn unknown_fields_are_rejected() {
    let err = serde_json::from_str::<StatsConfig>(r#"{"kind":"zscore","windw":10}"#).unwrap_err();
    assert!(err.to_string().contains("windw"), "{err}");
}

#[test]
fn constant_and_zero_series_never_alarm() {
    for (name, config) in every_detector() {
        for (series, level) in [
            ("constant", 42.5),
            ("zeros", 0.0),
            ("huge", 1e12),
            ("negative", -3.0),
        ] {
            let mut d = config.build();
            for i in 0..5000 {
                let v = feed(d.as_mut(), i * MINUTE, Some(level));
                assert!(
                    !v.anomalous && v.score == 0.0,
                    "{name}/{series}: point {i} scored {v:?}"
                );
            }
        }
    }
}

#[test]
fn missing_values_are_ignored() {
    for (name, config) in every_detector() {
        let mut d = config.build();
        for &(ts, x) in &ordinary(400) {
            feed(d.as_mut(), ts, Some(x));
        }
        let before = d.snapshot().unwrap();
        for value in [
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
        ] {
            let v = feed(d.as_mut(), 400 * MINUTE, value);
            assert_eq!(v, Verdict::normal(), "{name}: {value:?}");
        }
        assert_eq!(
            d.snapshot().unwrap(),
            before,
            "{name}: a missing value changed the state"
        );
    }
}

#[test]
fn warm_up_is_silent() {
    for (name, config) in every_detector() {
        let mut d = config.build();
        // Wild values from the start: nothing is known yet, so nothing can be anomalous.
        for (i, x) in [1.0, 1e6, -1e6, 0.0, 5.0].into_iter().enumerate() {
            let v = feed(d.as_mut(), i as i64 * MINUTE, Some(x));
            assert!(
                !v.anomalous && v.score == 0.0,
                "{name}: warm-up point {i} gave {v:?}"
            );
        }
    }
}

#[test]
fn a_clear_spike_fires_with_a_sane_score_and_band() {
    for (name, config) in every_detector() {
        let mut d = config.build();
        let series = ordinary(3000);
        let mut false_alarms = 0;
        for &(ts, x) in &series {
            false_alarms += usize::from(feed(d.as_mut(), ts, Some(x)).anomalous);
        }
        assert!(
            false_alarms <= 3,
            "{name}: {false_alarms} alarms on ordinary data"
        );
        let spike = 160.0;
        let v = feed(d.as_mut(), 3000 * MINUTE, Some(spike));
        assert!(v.anomalous, "{name}: spike not flagged: {v:?}");
        assert!((0.5..=1.0).contains(&v.score), "{name}: score {}", v.score);
        let explanation = v.explanation.expect("an anomaly carries an explanation");
        let expected = explanation.expected.expect("with an expected band");
        let (low, high) = (expected.low.unwrap(), expected.high.unwrap());
        assert!(low < high, "{name}: band {low}..{high}");
        let observed = explanation.observed.and_then(|o| o.as_f64()).unwrap();
        assert!(
            observed > high || observed < low,
            "{name}: observed {observed} inside {low}..{high}"
        );
        assert!(explanation.feature.is_some(), "{name}");
    }
}

#[test]
fn odd_timestamps_do_not_panic() {
    for (name, config) in every_detector() {
        let mut d = config.build();
        let times = [
            5 * MINUTE,
            5 * MINUTE,
            0,
            -MINUTE,
            i64::MAX / 2,
            i64::MIN / 2,
            3 * MINUTE,
        ];
        for (i, &x) in noise(3, 3000).iter().enumerate() {
            let v = feed(d.as_mut(), times[i % times.len()], Some(x));
            assert!((0.0..=1.0).contains(&v.score), "{name}: {v:?}");
        }
        // Extreme magnitudes neither.
        for x in [f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 0.0] {
            let v = feed(d.as_mut(), 0, Some(x));
            assert!(
                (0.0..=1.0).contains(&v.score) && !v.score.is_nan(),
                "{name}: {x} gave {v:?}"
            );
        }
    }
}

/// Feeds `series` to one detector; at `split` snapshots into a fresh instance and checks that
/// both give the same verdicts from there on.
fn check_round_trip(config: &StatsConfig, series: &[(i64, Option<f64>)], split: usize) {
    let mut original = config.build();
    for &(ts, x) in &series[..split] {
        feed(original.as_mut(), ts, x);
    }
    let state = original.snapshot().unwrap();
    // The state survives a trip through JSON text, as the store keeps it.
    let state: crate::DetectorState =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    let mut restored = config.build();
    restored.restore(&state).unwrap();
    for &(ts, x) in &series[split..] {
        assert_eq!(
            feed(original.as_mut(), ts, x),
            feed(restored.as_mut(), ts, x),
            "{}",
            config.kind()
        );
    }
}

#[test]
fn snapshot_then_restore_gives_the_same_future() {
    let mut series: Vec<(i64, Option<f64>)> = ordinary(3500)
        .into_iter()
        .map(|(t, x)| (t, Some(x)))
        .collect();
    series[3200].1 = Some(400.0);
    series[3300].1 = None;
    for (_, config) in every_detector() {
        for split in [0, 10, 1500, 3000, 3500] {
            check_round_trip(&config, &series, split);
        }
    }
}

#[test]
fn restore_rejects_a_foreign_state() {
    let mut d = ZscoreConfig::default().build();
    let err = d
        .restore(&crate::DetectorState(
            serde_json::json!({"not": "a zscore"}),
        ))
        .unwrap_err();
    assert!(matches!(err, crate::DetectError::State(_)), "{err:?}");
}

#[test]
fn plain_api_matches_the_detector_api() {
    for (name, config) in every_detector() {
        let mut plain = config.build_series();
        let mut detector = config.build();
        for &(ts, x) in &ordinary(2000) {
            assert_eq!(
                plain.update(ts, x),
                feed(detector.as_mut(), ts, Some(x)),
                "{name}"
            );
        }
    }
}

#[test]
fn seasonal_detects_a_daily_period() {
    let mut m = SeasonalConfig::default().model();
    for (i, e) in noise(11, 3 * 288).into_iter().enumerate() {
        let ts = i as i64 * 5 * MINUTE;
        let phase = (ts % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
        m.update(ts, 50.0 + 20.0 * phase.sin() + e);
    }
    assert_eq!(m.period_ms(), Some(86_400_000));

    let mut flat = SeasonalConfig::default().model();
    for (i, e) in noise(12, 3 * 288).into_iter().enumerate() {
        flat.update(i as i64 * 5 * MINUTE, 50.0 + e);
    }
    assert_eq!(flat.period_ms(), None);
}

#[test]
fn streaming_reports_onsets_not_plateaus() {
    let mut m = StreamingConfig::default().model();
    let mut scores = Vec::new();
    for (i, e) in noise(5, 3000).into_iter().enumerate() {
        let level = if i >= 2500 { 130.0 } else { 100.0 };
        scores.push(m.update(i as i64 * MINUTE, level + e).score);
    }
    let onset = scores[2500];
    assert!(onset >= 0.5, "the shift should fire: {onset}");
    let later = scores[2510..].iter().filter(|&&s| s >= 0.5).count();
    assert_eq!(later, 0, "a plateau should not keep alarming");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn round_trip_and_determinism(
        values in prop::collection::vec(
            prop_oneof![9 => -1e3..1e3f64, 1 => Just(f64::NAN)],
            1..400,
        ),
        split in 0usize..400,
        step in 1i64..3_600_000,
    ) {
        let series: Vec<(i64, Option<f64>)> =
            values
                .iter()
                .enumerate()
                .map(|(i, &x)| (i as i64 * step, (!x.is_nan()).then_some(x)))
                .collect();
        let split = split.min(series.len());
        for (_, config) in every_detector() {
            check_round_trip(&config, &series, split);
        }
    }
}

#[test]
fn state_after_extreme_values_survives_a_restart() {
    // Values at ±f64::MAX overflow sums and variances to ±inf and NaN; the saved state must
    // bring those back, not fail to restore.
    let mut series: Vec<(i64, Option<f64>)> = (0..400)
        .map(|i| {
            let x = if i % 2 == 0 { f64::MAX } else { -f64::MAX };
            (i as i64 * MINUTE, Some(x))
        })
        .collect();
    series.extend(
        ordinary(800)
            .into_iter()
            .map(|(t, x)| (t + 400 * MINUTE, Some(x))),
    );
    for (_, config) in every_detector() {
        for split in [1, 2, 3, 200, 400, 401, 700] {
            check_round_trip(&config, &series, split);
        }
    }
}
