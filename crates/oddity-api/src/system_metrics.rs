//! CPU, memory and load of this process, for seed 001's `/healthcheck` `system_metrics`.
//!
//! Read by hand from `/proc` (no extra dependency, no `unsafe`):
//! - `cpu_percent`: CPU time of this process (`utime + stime` of `/proc/self/stat`) consumed
//!   over a 0.1 s wall-clock interval, in percent of one core (like psutil's
//!   `Process.cpu_percent(interval=0.1)`, so it can exceed 100 on several cores). The clock tick
//!   comes from the auxiliary vector (`AT_CLKTCK` in `/proc/self/auxv`), 100 Hz if unreadable;
//! - `memory_percent`: resident set size (`VmRSS` of `/proc/self/status`) over `MemTotal` of
//!   `/proc/meminfo`, in percent;
//! - `load_avg`: the three numbers of `/proc/loadavg`.
//!
//! Seed 001 reported its trainer and predictor services separately; in oddity both are this
//! process, so the caller reports the same sample twice. Percentages are rounded to one
//! decimal, as psutil's. Anything unreadable (another OS, a restricted `/proc`) reads as 0.

use std::time::{Duration, Instant};

use serde::Serialize;

/// The interval CPU usage is sampled over.
pub const CPU_SAMPLE: Duration = Duration::from_millis(100);

/// `AT_CLKTCK` in the auxiliary vector.
const AT_CLKTCK: u64 = 17;

/// One sample of this process's resource use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemSample {
    /// CPU used over [`CPU_SAMPLE`], percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, percent of the machine's total.
    pub memory_percent: f64,
    /// 1, 5 and 15-minute load averages of the host.
    pub load_avg: [f64; 3],
}

/// Samples this process: waits [`CPU_SAMPLE`] (asynchronously) between two CPU readings.
pub async fn sample() -> SystemSample {
    let before = (cpu_ticks(), Instant::now());
    tokio::time::sleep(CPU_SAMPLE).await;
    let after = (cpu_ticks(), Instant::now());
    let cpu_percent = match (before.0, after.0) {
        (Some(a), Some(b)) => {
            let cpu_s = b.saturating_sub(a) as f64 / clock_ticks_per_second() as f64;
            let wall_s = after.1.duration_since(before.1).as_secs_f64();
            if wall_s > 0.0 {
                round1(cpu_s / wall_s * 100.0)
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    SystemSample {
        cpu_percent,
        memory_percent: memory_percent(),
        load_avg: load_avg(),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `utime + stime` of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    parse_stat_ticks(&read("/proc/self/stat")?)
}

/// Fields after the command name (which may contain spaces and parentheses): state is the
/// first, `utime` the 12th and `stime` the 13th.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| parse_auxv(&auxv, AT_CLKTCK))
        .filter(|&hz| hz > 0)
        .unwrap_or(100)
}

/// The value of `key` in an auxiliary vector of native-endian machine words.
fn parse_auxv(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |chunk: &[u8]| -> Option<u64> {
        let mut buf = [0_u8; WORD];
        buf.copy_from_slice(chunk.get(..WORD)?);
        Some(usize::from_ne_bytes(buf) as u64)
    };
    auxv.chunks_exact(2 * WORD).find_map(|pair| {
        let k = word(&pair[..WORD])?;
        (k == key).then(|| word(&pair[WORD..])).flatten()
    })
}

/// A `Name:   1234 kB` line of `/proc/self/status` or `/proc/meminfo`, in kB.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn memory_percent() -> f64 {
    let rss = read("/proc/self/status").and_then(|s| kb_field(&s, "VmRSS"));
    let total = read("/proc/meminfo").and_then(|s| kb_field(&s, "MemTotal"));
    match (rss, total) {
        (Some(rss), Some(total)) if total > 0 => round1(rss as f64 / total as f64 * 100.0),
        _ => 0.0,
    }
}

fn load_avg() -> [f64; 3] {
    read("/proc/loadavg")
        .map(|s| parse_loadavg(&s))
        .unwrap_or([0.0; 3])
}

fn parse_loadavg(text: &str) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (odd (name) x) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 8 0 100 1000 50";
        assert_eq!(parse_stat_ticks(stat), Some(175));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(
            kb_field("Name:\toddity\nVmRSS:\t   20480 kB\n", "VmRSS"),
            Some(20_480)
        );
        assert_eq!(
            kb_field("MemTotal:       16384000 kB\n", "MemTotal"),
            Some(16_384_000)
        );
        assert_eq!(kb_field("VmRSSX: 1 kB\n", "VmRSS"), None);
        assert_eq!(
            parse_loadavg("1.93 1.38 1.47 2/345 6789\n"),
            [1.93, 1.38, 1.47]
        );
        assert_eq!(parse_loadavg(""), [0.0; 3]);
        let mut auxv = Vec::new();
        for (k, v) in [(6_usize, 4096_usize), (17, 250), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_auxv(&auxv, AT_CLKTCK), Some(250));
        assert_eq!(parse_auxv(&auxv, 99), None);
    }

    #[tokio::test]
    async fn samples_this_process() {
        let s = sample().await;
        assert!(s.cpu_percent >= 0.0 && s.memory_percent >= 0.0);
        if cfg!(target_os = "linux") {
            assert!(
                read("/proc/self/status")
                    .and_then(|t| kb_field(&t, "VmRSS"))
                    .is_some_and(|kb| kb > 0)
            );
            assert!(cpu_ticks().is_some());
            assert!(clock_ticks_per_second() >= 1);
        }
    }
}
