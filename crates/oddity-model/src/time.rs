//! Wall-clock helpers. Everything inside oddity is UTC milliseconds since the epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats epoch milliseconds as a naive ISO-8601 UTC datetime with microseconds
/// (`2025-08-08T10:00:00.123000`), the shape the reference systems used in their JSON.
pub fn iso_naive(ms: i64) -> String {
    let (date, secs_of_day, millis) = split(ms);
    let (y, m, d) = civil_from_days(date);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        millis * 1000
    )
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2025-08-08T10:00:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let (date, secs_of_day, millis) = split(ms);
    let (y, m, d) = civil_from_days(date);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
    )
}

/// Hour of day (0..24) of epoch milliseconds shifted by `offset_minutes` from UTC.
pub fn hour_of_day(ms: i64, offset_minutes: i32) -> u32 {
    let (_, secs, _) = split(ms + i64::from(offset_minutes) * 60_000);
    (secs / 3600) as u32
}

/// Minute of day (0..1440) of epoch milliseconds shifted by `offset_minutes` from UTC.
pub fn minute_of_day(ms: i64, offset_minutes: i32) -> u32 {
    let (_, secs, _) = split(ms + i64::from(offset_minutes) * 60_000);
    (secs / 60) as u32
}

/// Parses an ISO-8601 / RFC 3339 datetime (`2023-06-07T12:34:56Z`, `2023-06-07 12:34:56.5+02:00`,
/// a naive form is taken as UTC, a bare date as midnight UTC) into epoch milliseconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = s.get(0..4)?.parse().ok()?;
    let month: u32 = s.get(5..7)?.parse().ok()?;
    let day: u32 = s.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 5 || rest.as_bytes()[2] != b':' {
        return None;
    }
    let hour: i64 = rest.get(0..2)?.parse().ok()?;
    let minute: i64 = rest.get(3..5)?.parse().ok()?;
    let mut i = 5;
    let mut second = 0i64;
    let mut frac_ms = 0i64;
    let rb = rest.as_bytes();
    if rb.get(i) == Some(&b':') {
        second = rest.get(i + 1..i + 3)?.parse().ok()?;
        i += 3;
        if matches!(rb.get(i), Some(b'.') | Some(b',')) {
            i += 1;
            let start = i;
            while i < rb.len() && rb[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            let digits = &rest[start..i.min(start + 3)];
            frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    ms += (hour * 3600 + minute * 60 + second) * 1000 + frac_ms;
    let zone = &rest[i..];
    let offset_min = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = &zone[1..];
            let (h, m) = match z.len() {
                2 => (z.parse::<i64>().ok()?, 0),
                4 => (z.get(0..2)?.parse().ok()?, z.get(2..4)?.parse().ok()?),
                5 if z.as_bytes()[2] == b':' => {
                    (z.get(0..2)?.parse().ok()?, z.get(3..5)?.parse().ok()?)
                }
                _ => return None,
            };
            sign * (h * 60 + m)
        }
    };
    Some(ms - offset_min * 60_000)
}

fn split(ms: i64) -> (i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    (days, rem / 1000, rem % 1000)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_forms() {
        let cases = [
            ("2023-06-07T12:34:56Z", Some(1_686_141_296_000)),
            ("2023-06-07T12:34:56.5Z", Some(1_686_141_296_500)),
            ("2023-06-07T12:34:56.123456", Some(1_686_141_296_123)),
            ("2023-06-07 14:34:56+02:00", Some(1_686_141_296_000)),
            ("2023-06-07T12:34Z", Some(1_686_141_240_000)),
            ("2023-06-07", Some(1_686_096_000_000)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2023-02-30T00:00:00Z", None),
            ("2023-06-07T25:00:00Z", None),
            ("1717970237", None),
            ("", None),
            ("2023-06-07Tnope", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_iso8601(input), want, "{input}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for ms in [0, 1_686_141_296_123, -86_400_000, 951_782_400_000] {
            assert_eq!(parse_iso8601(&rfc3339(ms)), Some(ms));
            assert_eq!(parse_iso8601(&iso_naive(ms)), Some(ms));
        }
        assert_eq!(iso_naive(1_686_141_296_123), "2023-06-07T12:34:56.123000");
        assert_eq!(hour_of_day(1_686_141_296_123, 0), 12);
        assert_eq!(hour_of_day(1_686_141_296_123, -13 * 60), 23);
    }
}
