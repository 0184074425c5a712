//! Synthetic signals in seed 002's shape (the reference emitter's distributions, from
//! `shared/COMPAT.md`): users 1..=1000; types click .40, api_call .30, file_access .15, login .10,
//! purchase .05; the reference payloads; and anomalies injected with probability `anomaly_rate`
//! (high-value purchases, failed API calls, failed logins).
//!
//! Generation is a hand-written NDJSON formatter over a xorshift generator: a few hundred
//! nanoseconds per event, so the load generator is not what a benchmark measures.

use std::fmt::Write as _;

/// A seeded generator of NDJSON batches.
#[derive(Debug)]
pub struct Emitter {
    rng: u64,
    /// Timestamp of the next signal (ms); advances by `step_ms` per signal.
    pub next_ts: i64,
    step_us: i64,
    sub_us: i64,
    anomaly_rate: f64,
    users: u64,
    /// Signals generated so far.
    pub generated: u64,
}

impl Emitter {
    /// Signals starting at `start_ts`, `per_second` of them per second of event time.
    pub fn new(seed: u64, start_ts: i64, per_second: u64, anomaly_rate: f64) -> Self {
        Emitter {
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            next_ts: start_ts,
            step_us: (1_000_000 / per_second.max(1)) as i64,
            sub_us: 0,
            anomaly_rate,
            users: 1000,
            generated: 0,
        }
    }

    /// Draws users from `1..=users` instead of the reference's 1..=1000 (per-user rates fall as
    /// users grow, which keeps windowed rules realistic at benchmark rates).
    pub fn with_users(mut self, users: u64) -> Self {
        self.users = users.max(1);
        self
    }

    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// Appends `n` signals, one JSON object per line, to `out`.
    pub fn fill(&mut self, out: &mut String, n: usize) {
        for _ in 0..n {
            self.one(out);
        }
    }

    fn one(&mut self, out: &mut String) {
        let user = self.range(1, self.users);
        let ts = self.next_ts;
        self.sub_us += self.step_us;
        self.next_ts += self.sub_us / 1000;
        self.sub_us %= 1000;
        self.generated += 1;
        let anomalous = self.unit() < self.anomaly_rate;
        let roll = self.unit();
        let kind = if roll < 0.40 {
            "click"
        } else if roll < 0.70 {
            "api_call"
        } else if roll < 0.85 {
            "file_access"
        } else if roll < 0.95 {
            "login"
        } else {
            "purchase"
        };
        let ip = (self.range(1, 255), self.range(1, 255));
        let session = self.range(1000, 9999);
        let _ = write!(
            out,
            r#"{{"user_id":{user},"type":"{kind}","timestamp":{ts},"payload":{{"session_id":"sess_{user}_{session}","ip_address":"192.168.{}.{}","user_agent":"Mozilla/5.0 (compatible; EventPipeline/1.0)""#,
            ip.0, ip.1
        );
        match kind {
            "login" => {
                let method = self.pick(&["password", "oauth", "sso"]);
                let success = !anomalous && self.unit() < 0.8;
                let location = self.pick(&["US", "EU", "ASIA", "CA"]);
                let _ = write!(
                    out,
                    r#","login_method":"{method}","success":{success},"location":"{location}""#
                );
            }
            "purchase" => {
                let amount = if anomalous {
                    1500.0 + self.unit() * 3500.0
                } else {
                    self.range(500, 200_000) as f64 / 100.0
                };
                let product = self.range(100, 999);
                let method = self.pick(&["credit_card", "paypal", "bank_transfer"]);
                let _ = write!(
                    out,
                    r#","amount":{amount:.2},"currency":"USD","product_id":"prod_{product}","payment_method":"{method}""#
                );
            }
            "click" => {
                let page = self.pick(&["/home", "/products", "/cart", "/profile", "/settings"]);
                let element = self.pick(&["button", "link", "image", "form"]);
                let (x, y) = (self.range(0, 1920), self.range(0, 1080));
                let _ = write!(
                    out,
                    r#","page":"{page}","element":"{element}","coordinates":{{"x":{x},"y":{y}}}"#
                );
            }
            "api_call" => {
                let endpoint = self.pick(&[
                    "/api/users",
                    "/api/products",
                    "/api/orders",
                    "/api/analytics",
                ]);
                let method = self.pick(&["GET", "PUT", "POST", "DELETE"]);
                let status = if anomalous {
                    self.pick(&["401", "403", "500"])
                } else {
                    self.pick(&["200", "200", "200", "400", "401", "500"])
                };
                let rt = self.range(10, 500);
                let _ = write!(
                    out,
                    r#","endpoint":"{endpoint}","method":"{method}","status_code":{status},"response_time_ms":{rt}"#
                );
            }
            _ => {
                let file = self.range(1, 100);
                let action = self.pick(&["read", "write", "delete"]);
                let size = self.range(1024, 1_048_576);
                let _ = write!(
                    out,
                    r#","file_path":"/data/user_{user}/file_{file}.txt","action":"{action}","file_size":{size}"#
                );
            }
        }
        out.push_str("}}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_valid_seed_002_signals_deterministically() {
        let mut a = Emitter::new(7, 1_754_654_400_000, 1000, 0.01);
        let mut text = String::new();
        a.fill(&mut text, 2000);
        let mut types = std::collections::BTreeMap::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                v["user_id"]
                    .as_u64()
                    .is_some_and(|u| (1..=1000).contains(&u))
            );
            assert!(v["payload"].is_object());
            *types
                .entry(v["type"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        assert_eq!(types.len(), 5, "{types:?}");
        assert!(types["click"] > types["purchase"]);
        assert_eq!(
            a.next_ts,
            1_754_654_400_000 + 2000,
            "1000/s advances 1 ms per signal"
        );
        let mut b = Emitter::new(7, 1_754_654_400_000, 1000, 0.01);
        let mut again = String::new();
        b.fill(&mut again, 2000);
        assert_eq!(text, again);
    }
}
