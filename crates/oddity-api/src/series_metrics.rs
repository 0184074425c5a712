//! The counters behind seed 001's `GET /healthcheck`, kept in memory by this process.
//!
//! Seed 001 kept them in Redis (`metrics:training_times`, `metrics:inference_times`,
//! `metrics:throughput:{fit|predict}`, `metrics:model_usage`); oddity keeps the same numbers
//! in one small struct behind a `std::sync::Mutex` (held for a few list operations, never across
//! an `.await`). They restart from zero with the process, like a Redis without persistence;
//! `series_trained` comes from the model store instead, so it survives restarts.
//!
//! Semantics follow the original code (see `shared/COMPAT.md`, seed 001 `/healthcheck`):
//! - latencies: the last [`LATENCY_SAMPLES`] handler timings in ms; `avg` rounded to 2
//!   decimals; `p95` by Python's `statistics.quantiles(data, n=100)[94]` (exclusive method),
//!   rounded to 2, and `0` below [`P95_MIN_SAMPLES`] samples; `{"avg":0,"p95":0}` with none;
//! - throughput: requests counted per UTC second; `avg_per_minute` is the mean count over the
//!   seconds of the last 60 that had any request (a per-second rate, despite the name), rounded
//!   to 2, `0` with none. Python's `statistics.mean` of integers is an integer when exact, so an
//!   exact mean is written as an integer (`1`, not `1.0`), as the original's JSON shows;
//! - model usage: predictions per series, the counts as strings (they came from Redis).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// Latency samples kept per kind (Redis lists capped at 1000 in the original).
pub const LATENCY_SAMPLES: usize = 1000;

/// Below this many samples `p95` is reported as 0 (the original's rule).
pub const P95_MIN_SAMPLES: usize = 20;

/// Seconds of throughput history.
const THROUGHPUT_WINDOW_S: i64 = 60;

/// The per-series API's counters. Cheap to share (`Arc`); every method takes `&self`.
#[derive(Debug, Default)]
pub struct SeriesMetrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    training_ms: VecDeque<f64>,
    inference_ms: VecDeque<f64>,
    fits_per_second: BTreeMap<i64, u64>,
    predicts_per_second: BTreeMap<i64, u64>,
    usage: BTreeMap<String, u64>,
}

fn push_sample(samples: &mut VecDeque<f64>, elapsed: Duration) {
    if samples.len() == LATENCY_SAMPLES {
        samples.pop_front();
    }
    samples.push_back(elapsed.as_secs_f64() * 1000.0);
}

fn count_second(buckets: &mut BTreeMap<i64, u64>, now_ms: i64) {
    let second = now_ms.div_euclid(1000);
    *buckets.entry(second).or_insert(0) += 1;
    // Forget seconds that can no longer be reported.
    let oldest = second - THROUGHPUT_WINDOW_S;
    while let Some((&first, _)) = buckets.first_key_value() {
        if first > oldest {
            break;
        }
        buckets.pop_first();
    }
}

impl SeriesMetrics {
    /// Empty counters.
    pub fn new() -> SeriesMetrics {
        SeriesMetrics::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters are plain numbers: a panic mid-update cannot leave them unusable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a successful fit that took `elapsed`, finishing at `now_ms`.
    pub fn record_fit(&self, elapsed: Duration, now_ms: i64) {
        let mut inner = self.lock();
        push_sample(&mut inner.training_ms, elapsed);
        count_second(&mut inner.fits_per_second, now_ms);
    }

    /// Records a successful prediction on `series_id` that took `elapsed`, finishing at `now_ms`.
    pub fn record_predict(&self, series_id: &str, elapsed: Duration, now_ms: i64) {
        let mut inner = self.lock();
        push_sample(&mut inner.inference_ms, elapsed);
        count_second(&mut inner.predicts_per_second, now_ms);
        match inner.usage.get_mut(series_id) {
            Some(n) => *n += 1,
            None => {
                inner.usage.insert(series_id.to_owned(), 1);
            }
        }
    }

    /// The healthcheck's counter blocks at `now_ms`, in the original's key order:
    /// `inference_latency_ms`, `training_latency_ms`, `throughput`, `model_usage`.
    pub fn report(&self, now_ms: i64) -> SeriesReport {
        let inner = self.lock();
        let usage: Map<String, Value> = inner
            .usage
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
        SeriesReport {
            inference_latency_ms: latency_json(&inner.inference_ms),
            training_latency_ms: latency_json(&inner.training_ms),
            throughput: json!({
                "trainer": { "avg_per_minute": per_second_json(&inner.fits_per_second, now_ms) },
                "predictor": { "avg_per_minute": per_second_json(&inner.predicts_per_second, now_ms) },
            }),
            model_usage: Value::Object(usage),
        }
    }
}

/// The counter blocks of the healthcheck, as JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesReport {
    /// `{"avg", "p95"}` of predictions.
    pub inference_latency_ms: Value,
    /// `{"avg", "p95"}` of fits.
    pub training_latency_ms: Value,
    /// `{"trainer": {"avg_per_minute"}, "predictor": {"avg_per_minute"}}`.
    pub throughput: Value,
    /// Series → prediction count, as strings.
    pub model_usage: Value,
}

/// Rounds like Python's `round(x, 2)` for the magnitudes seen here.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `{"avg", "p95"}` of `samples`.
fn latency_json(samples: &VecDeque<f64>) -> Value {
    if samples.is_empty() {
        return json!({ "avg": 0, "p95": 0 });
    }
    let avg = samples.iter().sum::<f64>() / samples.len() as f64;
    let mut sorted: Vec<f64> = samples.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let p95 = match p95_exclusive(&sorted) {
        Some(p) => json!(round2(p)),
        None => json!(0),
    };
    json!({ "avg": round2(avg), "p95": p95 })
}

/// `statistics.quantiles(sorted, n=100, method="exclusive")[94]`, `None` below
/// [`P95_MIN_SAMPLES`] samples.
fn p95_exclusive(sorted: &[f64]) -> Option<f64> {
    const N: usize = 100;
    const I: usize = 95;
    let ld = sorted.len();
    if ld < P95_MIN_SAMPLES {
        return None;
    }
    let m = ld + 1;
    let j = (I * m / N).clamp(1, ld - 1);
    let delta = (I * m) as f64 - (j * N) as f64;
    Some((sorted[j - 1] * (N as f64 - delta) + sorted[j] * delta) / N as f64)
}

/// Mean count per active second over the last 60 s, an integer when exact.
fn per_second_json(buckets: &BTreeMap<i64, u64>, now_ms: i64) -> Value {
    let now_s = now_ms.div_euclid(1000);
    let counts: Vec<u64> = buckets
        .range(now_s - THROUGHPUT_WINDOW_S + 1..=now_s)
        .map(|(_, &n)| n)
        .filter(|&n| n > 0)
        .collect();
    if counts.is_empty() {
        return json!(0);
    }
    let total: u64 = counts.iter().sum();
    let active = counts.len() as u64;
    if total.is_multiple_of(active) {
        json!(total / active)
    } else {
        json!(round2(total as f64 / active as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[f64]) -> VecDeque<f64> {
        values.iter().copied().collect()
    }

    #[test]
    fn p95_matches_python_statistics_quantiles() {
        // Reference values from CPython 3.12:
        // statistics.quantiles(range(1, 21), n=100)[94] == 19.95
        // statistics.quantiles(range(1, 101), n=100)[94] == 95.95
        // statistics.quantiles([x * 0.5 for x in range(1, 31)], n=100)[94] == 14.725
        let seq = |n: usize| (1..=n).map(|x| x as f64).collect::<Vec<_>>();
        assert!((p95_exclusive(&seq(20)).unwrap() - 19.95).abs() < 1e-9);
        assert!((p95_exclusive(&seq(100)).unwrap() - 95.95).abs() < 1e-9);
        let halves: Vec<f64> = (1..=30).map(|x| f64::from(x) * 0.5).collect();
        assert!((p95_exclusive(&halves).unwrap() - 14.725).abs() < 1e-9);
        assert_eq!(p95_exclusive(&seq(19)), None);
    }

    #[test]
    fn latency_blocks() {
        assert_eq!(latency_json(&ms(&[])).to_string(), r#"{"avg":0,"p95":0}"#);
        assert_eq!(
            latency_json(&ms(&[0.3, 0.4])).to_string(),
            r#"{"avg":0.35,"p95":0}"#
        );
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(
            latency_json(&ms(&twenty)).to_string(),
            r#"{"avg":10.5,"p95":19.95}"#
        );
    }

    #[test]
    fn samples_are_capped() {
        let m = SeriesMetrics::new();
        for i in 0..(LATENCY_SAMPLES + 10) {
            m.record_fit(Duration::from_millis(if i < 10 { 1000 } else { 1 }), 0);
        }
        let inner = m.lock();
        assert_eq!(inner.training_ms.len(), LATENCY_SAMPLES);
        assert!(
            inner.training_ms.iter().all(|&x| (x - 1.0).abs() < 1e-9),
            "oldest samples dropped"
        );
    }

    #[test]
    fn throughput_is_the_mean_over_active_seconds() {
        let m = SeriesMetrics::new();
        let t = 1_700_000_000_000;
        assert_eq!(
            m.report(t).throughput.to_string(),
            r#"{"trainer":{"avg_per_minute":0},"predictor":{"avg_per_minute":0}}"#
        );
        // Predictions: 3 in one second, 1 in another, 2 in a third → 2 (exact, an integer).
        for at in [t, t + 10, t + 20, t + 5_000, t + 9_000, t + 9_500] {
            m.record_predict("s1", Duration::from_micros(300), at);
        }
        // Fits: 1 then 2 → 1.5.
        for at in [t, t + 2_000, t + 2_100] {
            m.record_fit(Duration::from_micros(700), at);
        }
        let r = m.report(t + 10_000);
        assert_eq!(
            r.throughput.to_string(),
            r#"{"trainer":{"avg_per_minute":1.5},"predictor":{"avg_per_minute":2}}"#
        );
        // Seconds older than a minute no longer count.
        assert_eq!(
            m.report(t + 70_000).throughput["predictor"]["avg_per_minute"],
            json!(0)
        );
        assert_eq!(r.model_usage.to_string(), r#"{"s1":"6"}"#);
        // 1/3 rounds to 2 decimals.
        let m = SeriesMetrics::new();
        for at in [t, t + 1_000, t + 1_001, t + 2_000] {
            m.record_predict("a", Duration::ZERO, at);
        }
        m.record_predict("b", Duration::ZERO, t + 3_000);
        m.record_predict("b", Duration::ZERO, t + 3_000);
        let r = m.report(t + 3_000);
        assert_eq!(r.throughput["predictor"]["avg_per_minute"], json!(1.5));
        assert_eq!(r.model_usage.to_string(), r#"{"a":"4","b":"2"}"#);
        let m = SeriesMetrics::new();
        for at in [t, t, t + 1_000, t + 2_000] {
            m.record_fit(Duration::ZERO, at);
        }
        assert_eq!(
            m.report(t + 2_000).throughput["trainer"]["avg_per_minute"],
            json!(1.33)
        );
    }
}
