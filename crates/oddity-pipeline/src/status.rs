//! Counters shared between workers and the API.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Progress of one partition's worker.
#[derive(Debug, Default)]
pub struct PartitionStatus {
    /// Next offset to process: everything below it is committed.
    pub position: AtomicU64,
    /// Events processed and committed since start.
    pub events: AtomicU64,
    /// Anomalies committed since start.
    pub anomalies: AtomicU64,
    /// Wall-clock time of the last commit (ms), 0 before the first.
    pub last_commit_ms: AtomicI64,
    /// Times the worker restarted after an error.
    pub restarts: AtomicU64,
    /// Live detector instances held in memory.
    pub instances: AtomicU64,
}

/// Progress of every worker.
#[derive(Debug)]
pub struct PipelineStatus {
    partitions: Vec<PartitionStatus>,
    /// Time from an event's acknowledgement (its `ingested_at`) to the commit that made it and
    /// its anomalies queryable, in ms.
    pub ack_to_queryable: LatencyHistogram,
}

impl PipelineStatus {
    /// Counters for `partitions` workers.
    pub fn new(partitions: u32) -> Self {
        PipelineStatus {
            partitions: (0..partitions)
                .map(|_| PartitionStatus::default())
                .collect(),
            ack_to_queryable: LatencyHistogram::default(),
        }
    }

    /// One partition's counters.
    pub fn partition(&self, p: u32) -> Option<&PartitionStatus> {
        self.partitions.get(p as usize)
    }

    /// All partitions' counters.
    pub fn partitions(&self) -> &[PartitionStatus] {
        &self.partitions
    }

    /// Total events processed since start.
    pub fn events(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| p.events.load(Ordering::Relaxed))
            .sum()
    }

    /// Total anomalies since start.
    pub fn anomalies(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| p.anomalies.load(Ordering::Relaxed))
            .sum()
    }

    /// Total worker restarts.
    pub fn restarts(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| p.restarts.load(Ordering::Relaxed))
            .sum()
    }
}

/// Number of buckets of [`LatencyHistogram`]: 8 per power of two up to ~2^25 ms.
const BUCKETS: usize = 200;

fn bucket_of(ms: u64) -> usize {
    (((ms as f64 + 1.0).log2() * 8.0) as usize).min(BUCKETS - 1)
}

fn upper_bound_ms(bucket: usize) -> f64 {
    (2f64.powf((bucket + 1) as f64 / 8.0) - 1.0).max(0.0)
}

/// A log-scaled histogram of milliseconds (about 9 % resolution), updated with one atomic add per
/// non-empty bucket per batch, never per event.
#[derive(Debug)]
pub struct LatencyHistogram {
    counts: Vec<AtomicU64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyHistogram {
    /// Adds one batch of observations, given as milliseconds.
    pub fn record_all(&self, values: impl Iterator<Item = i64>) {
        let mut local = [0u64; BUCKETS];
        for v in values {
            local[bucket_of(v.max(0) as u64)] += 1;
        }
        for (i, n) in local.iter().enumerate() {
            if *n > 0 {
                self.counts[i].fetch_add(*n, Ordering::Relaxed);
            }
        }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_bound_ms(i));
            }
        }
        Some(upper_bound_ms(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.record_all((1..=1000).map(|v| v as i64));
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((500.0..=560.0).contains(&p50), "{p50}");
        assert!((990.0..=1090.0).contains(&p99), "{p99}");
        h.record_all([-5, 0].into_iter());
        assert!(h.quantile(0.0).unwrap() < 1.0);
    }
}
