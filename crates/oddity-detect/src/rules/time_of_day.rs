//! `time_of_day`: activity inside configured hours (seed 002's "around 3 AM").
//!
//! Fires on events whose time of day, in the configured UTC offset, falls in `[start, end)`;
//! a range that wraps midnight (`22:00`–`06:00`) is allowed. Repeats per entity are for the
//! pipeline's `cooldown` to suppress.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use oddity_model::Explanation;
use oddity_model::time::minute_of_day;

use crate::{Detector, DetectorKind, Input, Verdict};

/// A time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime(pub u32);

impl FromStr for ClockTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid time of day `{s}`: expected HH:MM from 00:00 to 24:00");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m > 59 || h > 24 || (h == 24 && m > 0) {
            return Err(bad());
        }
        Ok(ClockTime(h * 60 + m))
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A UTC offset, `+HH:MM` or `-HH:MM` (`Z` for UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcOffset(pub i32);

impl FromStr for UtcOffset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "Z" || s == "UTC" {
            return Ok(UtcOffset(0));
        }
        let bad = || format!("invalid UTC offset `{s}`: expected +HH:MM or -HH:MM");
        let sign = match s.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad()),
        };
        let ClockTime(minutes) = s[1..].parse().map_err(|_| bad())?;
        if minutes > 14 * 60 {
            return Err(bad());
        }
        Ok(UtcOffset(sign * minutes as i32))
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        write!(f, "{sign}{}", ClockTime(self.0.unsigned_abs()))
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parameters of a time-of-day rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeOfDayConfig {
    /// Start of the unusual hours, inclusive (`03:00`).
    pub start: ClockTime,
    /// End of the unusual hours, exclusive (`04:00`).
    pub end: ClockTime,
    /// The zone the hours are in, as an offset from UTC.
    #[serde(default)]
    pub utc_offset: UtcOffset,
}

impl TimeOfDayConfig {
    /// Every problem with these parameters.
    pub fn validate(&self) -> Vec<String> {
        if self.start == self.end {
            vec![format!(
                "start and end are both {}: the range is empty",
                self.start
            )]
        } else {
            vec![]
        }
    }

    /// A detector instance.
    pub fn build(&self) -> Box<dyn Detector> {
        Box::new(TimeOfDay {
            config: self.clone(),
        })
    }

    fn contains(&self, minute: u32) -> bool {
        let (s, e) = (self.start.0, self.end.0);
        if s < e {
            minute >= s && minute < e
        } else {
            minute >= s || minute < e
        }
    }
}

/// A stateless time-of-day rule.
#[derive(Debug)]
pub struct TimeOfDay {
    config: TimeOfDayConfig,
}

impl Detector for TimeOfDay {
    fn kind(&self) -> DetectorKind {
        DetectorKind::TimeOfDay
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let c = &self.config;
        let minute = minute_of_day(input.ts(), c.utc_offset.0);
        if !c.contains(minute) {
            return Verdict::normal();
        }
        let mut details = serde_json::Map::new();
        details.insert("hour".into(), (minute / 60).into());
        details.insert("time".into(), ClockTime(minute).to_string().into());
        details.insert(
            "hours".into(),
            format!("{}–{} UTC{}", c.start, c.end, c.utc_offset).into(),
        );
        Verdict::anomaly(
            0.6,
            Explanation {
                observed: Some(ClockTime(minute).to_string().into()),
                expected: None,
                window: None,
                feature: Some("ts".into()),
                details,
            },
        )
    }

    stateless_rule!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{event, fired, run};

    const H: i64 = 3_600_000;

    #[test]
    fn table() {
        let day = 19_000 * 24 * H;
        let cases: &[(&str, &str, &str, &str, i64, bool)] = &[
            ("inside", "03:00", "04:00", "+00:00", day + 3 * H + 5, true),
            (
                "end is exclusive",
                "03:00",
                "04:00",
                "+00:00",
                day + 4 * H,
                false,
            ),
            (
                "start is inclusive",
                "03:00",
                "04:00",
                "+00:00",
                day + 3 * H,
                true,
            ),
            ("outside", "03:00", "04:00", "+00:00", day + 12 * H, false),
            ("wraps midnight", "22:00", "06:00", "+00:00", day + H, true),
            (
                "wrap outside",
                "22:00",
                "06:00",
                "+00:00",
                day + 12 * H,
                false,
            ),
            (
                "offset shifts",
                "03:00",
                "04:00",
                "+02:00",
                day + H + 30 * 60_000,
                true,
            ),
            ("negative timestamps", "23:00", "24:00", "+00:00", -1, true),
        ];
        for (name, start, end, offset, ts, want) in cases {
            let cfg = TimeOfDayConfig {
                start: start.parse().unwrap(),
                end: end.parse().unwrap(),
                utc_offset: offset.parse().unwrap(),
            };
            let mut d = cfg.build();
            assert_eq!(
                fired(&run(d.as_mut(), &[event("click", *ts, "")])),
                vec![*want],
                "{name}"
            );
        }
    }

    #[test]
    fn parses_times_and_offsets() {
        assert!("25:00".parse::<ClockTime>().is_err());
        assert!("3".parse::<ClockTime>().is_err());
        assert!("03:60".parse::<ClockTime>().is_err());
        assert_eq!("24:00".parse::<ClockTime>().unwrap().0, 1440);
        assert_eq!("-05:30".parse::<UtcOffset>().unwrap().0, -330);
        assert_eq!("-05:30".parse::<UtcOffset>().unwrap().to_string(), "-05:30");
        assert!("05:30".parse::<UtcOffset>().is_err());
        assert!("+15:00".parse::<UtcOffset>().is_err());
        let cfg = TimeOfDayConfig {
            start: ClockTime(60),
            end: ClockTime(60),
            utc_offset: UtcOffset(0),
        };
        assert_eq!(cfg.validate().len(), 1);
    }
}
