//! Compact, exact text encoding of `f64` sequences inside saved detector state.
//!
//! # Why
//! Detector state is checkpointed as JSON ([`crate::DetectorState`]) every few seconds for every
//! series touched since the last checkpoint. The default streaming detector keeps two windows of
//! 2,000 values per series (the value itself and its residual against the seasonal baseline);
//! as JSON numbers (shortest round-trip decimal: 17 significant digits for a computed residual)
//! that is ~60 KB per series, ~150 KB while the seasonal period is still being detected, so
//! thousands of series make every checkpoint tens of megabytes of text. This module stores such
//! a sequence as one JSON string, about half the size, and leaves every other field of the state
//! as readable JSON.
//!
//! # Use
//! ```
//! use std::collections::VecDeque;
//!
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct State {
//!     #[serde(with = "oddity_detect::compact::f64s")]
//!     values: Vec<f64>,
//!     #[serde(with = "oddity_detect::compact::f64_deque")]
//!     window: VecDeque<f64>,
//!     #[serde(with = "oddity_detect::compact::timed_f64s")]
//!     points: Vec<(i64, f64)>,
//!     #[serde(with = "oddity_detect::compact::f64_rows")]
//!     rows: Vec<Vec<f64>>, // an array of strings, one per row
//! }
//!
//! let state = State {
//!     values: vec![21.5, 21.75, 22.0],
//!     window: VecDeque::from(vec![0.1 + 0.2, -0.0]),
//!     points: vec![(1_700_000_000_000, 1.0), (1_700_000_060_000, 2.0)],
//!     rows: vec![vec![0.5, 0.25]],
//! };
//! let json = serde_json::to_string(&state).unwrap();
//! assert_eq!(
//!     json,
//!     r#"{"values":"d1:AwIAzCEyMg==","window":"g1:Aj/TMzMzMzM0wfX+mZmZmZmZoA==","#.to_owned()
//!         + r#""points":"tg1:AoCgq/75YsCpBz/wAAAAAAAAwl//","rows":["d1:AgIAZDE="]}"#
//! );
//! assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
//! // The previous plain form still loads.
//! let old = r#"{"values":[21.5,21.75,22.0],"window":[0.30000000000000004,-0.0],
//!     "points":[[1700000000000,1.0],[1700000060000,2.0]],"rows":[[0.5,0.25]]}"#;
//! assert_eq!(serde_json::from_str::<State>(old).unwrap(), state);
//! ```
//! Deserialisation also accepts the previous plain form (a JSON array of numbers, or of
//! `[ts, value]` pairs), so a checkpoint written by an older release still restores. A string
//! that is not a valid encoding is a serde error naming what is wrong; decoding never panics and
//! never allocates more than the text's own length justifies.
//!
//! **Exactness.** Every encoding is bit-for-bit: `-0.0`, subnormals, `±inf` and NaN payloads
//! come back as they went in. The plain form could not do that: `serde_json` writes a
//! non-finite number as `null`, which does not load back into an `f64`. The windows can hold
//! non-finite values although inputs are finite: residuals of values near `f64::MAX` overflow
//! (400 points alternating `±f64::MAX` leave 370 NaN in the streaming detector's residual
//! history), and those now survive a checkpoint. Scalar state fields that can overflow (EWM
//! moments, window sums, CUSUM sums) and the model fields derived from such sums (z-score
//! means and scales, the One-Class SVM's kernel width and coefficients, the half-space trees'
//! feature widths) go through
//! [`f64_exact`] and its `Vec`, array and `Option` forms: a plain JSON number when finite,
//! `"inf"`, `"-inf"` or `"nan:<16 hex digits>"` when not.
//!
//! # Format
//! `<scheme><version>:<payload>`, the payload in standard base64 (RFC 4648 §4, `A–Z a–z 0–9 + /`,
//! `=` padding, strictly checked: canonical form only). Varints are unsigned LEB128; signed ones
//! are zigzag-mapped first. Three schemes:
//!
//! - **`g1:`, a sequence of `f64`, Gorilla** (Pelkonen et al., VLDB 2015, §4.1.2). The count
//!   (varint), then a bit stream, most significant bit first: the first value's 64 bits, then for
//!   each next value the XOR `x` of its bit pattern with the previous one's:
//!   - `0`: `x = 0` (the same value);
//!   - `10` + the meaningful bits of `x` inside the current window (the leading/trailing zero
//!     counts of the last `11` block), when `x` fits in it;
//!   - `11` + 5 bits of leading zeros (capped at 31) + 6 bits of meaningful length (64 written
//!     as 0) + the meaningful bits; this opens a new window.
//!
//!   The stream is padded with zero bits to a whole byte.
//! - **`d1:`, a sequence of `f64`, scaled decimals** (the idea of ALP, Afroozeh et al., SIGMOD
//!   2024). The count (varint), one byte `e` in `0..=18`, the number of exceptions (varint), each
//!   exception as its index gap from the previous one (varint) and its 8 raw bits (little
//!   endian), then for every other value, in order, the zigzag varint of `dᵢ − dᵢ₋₁` (`d₋₁ = 0`),
//!   where the value is exactly `dᵢ as f64 / 10^e` (`|dᵢ| < 2^53`; the encoder checks that this
//!   very expression gives the value's bits back, otherwise the value is an exception).
//! - **`tg1:`, a sequence of `(i64, f64)` points.** The count (varint), the timestamps as zigzag
//!   varints (the first, the first delta, then deltas of deltas: 0 for regular sampling, so one
//!   byte a point; wrapping arithmetic, so any `i64` round-trips), then the values as the `g1` bit
//!   stream without its count.
//!
//! [`encode_f64s`] writes whichever of `g1` and `d1` is shorter (`d1` is only tried when an even
//! sample of 64 values is mostly decimals, and its exponent is the sampled one giving the
//! smallest payload). A future scheme or version gets a new prefix; decoders reject the ones they
//! do not know.
//!
//! # Why these schemes
//! Two kinds of sequences fill the state. Values as they arrived (read from JSON text, so
//! decimals with a few digits: `21.87`, `1402`) are what `d1` is for: their binary mantissas are
//! long repeating fractions, which defeat XOR schemes, while as integers scaled by `10^e` their
//! deltas take 1–4 bytes. Computed values (residuals, means, rescaled points) carry full 53-bit
//! mantissas: nothing exact gets far below 8 bytes a value, and Gorilla gets ~7.4 (one pass, no
//! search, sign and exponent bits shared with the previous value). Measured per history of 2,000
//! values on the NAB series below: the value history goes from 9.8–26 KB of JSON to 3.0–13.2 KB
//! (`d1` on four series, `g1` on `rogue_agent_key_updown`, mostly zeros), the residual history
//! from 37.6–41.9 KB to 19.6–21.9 KB (`g1`), against 20 KB for 2,000 raw 8-byte values in base64.
//!
//! # Measured
//! Default streaming detector after the first 5,000 points of five NAB series (`nyc_taxi`,
//! `machine_temperature_system_failure`, `cpu_utilization_asg_misconfiguration`,
//! `ambient_temperature_system_failure`, `rogue_agent_key_updown`), state serialised with
//! `serde_json::to_string` as the store keeps it; release build on a 2-vCPU shared VM (times:
//! mean of 200 repetitions, best of three runs, per series):
//!
//! | | plain JSON arrays (before) | compact strings (after) |
//! |---|---|---|
//! | state size, mean per series (range) | 59.5 KB (52.6–65.4) | 30.7 KB (25.7–34.3) |
//! | same, after 3,000 points (period detection still buffering) | 88.6 KB (54.9–147.8) | 38.4 KB (26.6–63.1) |
//! | snapshot (`DetectorState::of` + `to_string`) | 188 µs | 169 µs |
//! | restore (`from_str` + `DetectorState::to`) | 643 µs | 538 µs |
//!
//! Restore is dominated by rebuilding the sorted copies of the windows, not by decoding. A
//! half-space-trees detector (default parameters, mid-window) goes from 10.3 KB to 9.0 KB: its
//! workspaces and the latest window's points are compact; most of the rest is node masses.

use std::collections::VecDeque;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Prefix of an `f64` sequence as a Gorilla XOR stream, version 1.
pub const GORILLA_PREFIX: &str = "g1:";
/// Prefix of an `f64` sequence as scaled decimal integers, version 1.
pub const DECIMAL_PREFIX: &str = "d1:";
/// Prefix of an encoded sequence of `(i64, f64)` points (delta-of-delta timestamps, version 1).
pub const TIMED_F64S_PREFIX: &str = "tg1:";

/// Why a string is not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The string does not start with the expected scheme and version.
    #[error("expected a compact sequence starting with {expected}, found {found:?}")]
    Prefix {
        /// The prefixes this field accepts.
        expected: &'static str,
        /// The first characters of what was found.
        found: String,
    },
    /// The payload is not canonical base64.
    #[error("invalid base64 in compact sequence: {0}")]
    Base64(&'static str),
    /// The payload ends before the announced values.
    #[error("compact sequence truncated: {0}")]
    Truncated(&'static str),
    /// The payload is well-formed base64 but not a valid stream.
    #[error("corrupt compact sequence: {0}")]
    Corrupt(&'static str),
}

/// Encodes `values` as the shorter of a `d1:` string (when the values are decimals) and a
/// `g1:` string.
pub fn encode_f64s(values: &[f64]) -> String {
    let gorilla = gorilla_payload(values);
    match decimal_payload(values) {
        Some(decimal) if decimal.len() < gorilla.len() => to_text(DECIMAL_PREFIX, &decimal),
        _ => to_text(GORILLA_PREFIX, &gorilla),
    }
}

/// Encodes `values` as a `g1:` string (Gorilla XOR stream).
pub fn encode_gorilla(values: &[f64]) -> String {
    to_text(GORILLA_PREFIX, &gorilla_payload(values))
}

/// Encodes `values` as a `d1:` string (scaled decimal integers), or None when they are not
/// decimals with a common number of digits after the point (too many exceptions).
pub fn encode_decimal(values: &[f64]) -> Option<String> {
    decimal_payload(values).map(|p| to_text(DECIMAL_PREFIX, &p))
}

/// Decodes a `g1:` or `d1:` string.
pub fn decode_f64s(text: &str) -> Result<Vec<f64>, DecodeError> {
    const EXPECTED: &str = "\"g1:\" or \"d1:\"";
    if let Some(b64) = text.strip_prefix(GORILLA_PREFIX) {
        let payload = base64_decode(b64)?;
        let mut bytes = payload.as_slice();
        let count = read_varint(&mut bytes)?;
        decode_gorilla(bytes, count)
    } else if let Some(b64) = text.strip_prefix(DECIMAL_PREFIX) {
        decode_decimal(&base64_decode(b64)?)
    } else {
        Err(prefix_error(text, EXPECTED))
    }
}

fn to_text(prefix: &str, payload: &[u8]) -> String {
    let mut text = String::with_capacity(prefix.len() + payload.len().div_ceil(3) * 4);
    text.push_str(prefix);
    base64_encode(payload, &mut text);
    text
}

fn prefix_error(text: &str, expected: &'static str) -> DecodeError {
    DecodeError::Prefix {
        expected,
        found: text.chars().take(8).collect(),
    }
}

/// The `g1` payload: count, then the Gorilla bit stream.
fn gorilla_payload(values: &[f64]) -> Vec<u8> {
    let mut out = BitWriter::with_capacity(values.len() * 2 + 16);
    let mut gorilla = GorillaEncoder::default();
    for &v in values {
        gorilla.push(&mut out, v);
    }
    let stream = out.finish();
    let mut payload = Vec::with_capacity(stream.len() + 10);
    write_varint(&mut payload, values.len() as u64);
    payload.extend_from_slice(&stream);
    payload
}

/// Encodes `points` as a `tg1:` string.
pub fn encode_timed_f64s(points: &[(i64, f64)]) -> String {
    let mut payload = Vec::with_capacity(points.len() * 3 + 16);
    write_varint(&mut payload, points.len() as u64);
    let (mut prev, mut prev_delta) = (0i64, 0i64);
    for (i, &(ts, _)) in points.iter().enumerate() {
        let delta = ts.wrapping_sub(prev);
        let written = match i {
            0 => ts,
            1 => delta,
            _ => delta.wrapping_sub(prev_delta),
        };
        write_varint(&mut payload, zigzag(written));
        prev = ts;
        prev_delta = delta;
    }
    let mut out = BitWriter::with_capacity(points.len() * 2 + 8);
    let mut gorilla = GorillaEncoder::default();
    for &(_, v) in points {
        gorilla.push(&mut out, v);
    }
    payload.extend_from_slice(&out.finish());
    to_text(TIMED_F64S_PREFIX, &payload)
}

/// Decodes a `tg1:` string.
pub fn decode_timed_f64s(text: &str) -> Result<Vec<(i64, f64)>, DecodeError> {
    let Some(b64) = text.strip_prefix(TIMED_F64S_PREFIX) else {
        return Err(prefix_error(text, "\"tg1:\""));
    };
    let payload = base64_decode(b64)?;
    let mut bytes = payload.as_slice();
    let count = read_varint(&mut bytes)?;
    // Every timestamp takes at least one byte: bounds the allocation by the input size.
    if count > bytes.len() as u64 {
        return Err(DecodeError::Truncated(
            "fewer bytes than announced timestamps",
        ));
    }
    let mut stamps = Vec::with_capacity(count as usize);
    let (mut prev, mut prev_delta) = (0i64, 0i64);
    for i in 0..count {
        let written = unzigzag(read_varint(&mut bytes)?);
        let (ts, delta) = match i {
            0 => (written, written),
            1 => (prev.wrapping_add(written), written),
            _ => {
                let delta = prev_delta.wrapping_add(written);
                (prev.wrapping_add(delta), delta)
            }
        };
        stamps.push(ts);
        prev = ts;
        prev_delta = delta;
    }
    let values = decode_gorilla(bytes, count)?;
    Ok(stamps.into_iter().zip(values).collect())
}

/// Serde helpers for a `Vec<f64>` field: `#[serde(with = "crate::compact::f64s")]`.
pub mod f64s {
    use super::*;

    /// Writes the values as one `g1:` string.
    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode_f64s(values))
    }

    /// Reads a `g1:`/`d1:` string or a plain array of numbers.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        deserializer.deserialize_any(F64sVisitor)
    }
}

/// Serde helpers for a `VecDeque<f64>` field: `#[serde(with = "crate::compact::f64_deque")]`.
pub mod f64_deque {
    use super::*;

    /// Writes the values, front first, as one `g1:` string.
    pub fn serialize<S: Serializer>(
        values: &VecDeque<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let (front, back) = values.as_slices();
        let text = if back.is_empty() {
            encode_f64s(front)
        } else {
            encode_f64s(&values.iter().copied().collect::<Vec<_>>())
        };
        serializer.serialize_str(&text)
    }

    /// Reads a `g1:`/`d1:` string or a plain array of numbers.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<VecDeque<f64>, D::Error> {
        deserializer
            .deserialize_any(F64sVisitor)
            .map(VecDeque::from)
    }
}

/// Serde helpers for a `Vec<(i64, f64)>` field (timestamped values):
/// `#[serde(with = "crate::compact::timed_f64s")]`.
pub mod timed_f64s {
    use super::*;

    /// Writes the points as one `tg1:` string.
    pub fn serialize<S: Serializer>(
        points: &[(i64, f64)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode_timed_f64s(points))
    }

    /// Reads a `tg1:` string or a plain array of `[ts, value]` pairs.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(i64, f64)>, D::Error> {
        deserializer.deserialize_any(TimedF64sVisitor)
    }
}

/// Serde helpers for a `Vec<Vec<f64>>` field (rows): a JSON array with one `g1:` string per
/// row, each row also accepted as a plain array of numbers.
/// `#[serde(with = "crate::compact::f64_rows")]`.
pub mod f64_rows {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Serialize};

    use super::*;

    struct Row<'a>(&'a [f64]);

    impl Serialize for Row<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            f64s::serialize(self.0, serializer)
        }
    }

    struct OwnedRow(Vec<f64>);

    impl<'de> Deserialize<'de> for OwnedRow {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            f64s::deserialize(deserializer).map(OwnedRow)
        }
    }

    /// Writes an array of `g1:` strings, one per row.
    pub fn serialize<S: Serializer>(rows: &[Vec<f64>], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(rows.len()))?;
        for row in rows {
            seq.serialize_element(&Row(row))?;
        }
        seq.end()
    }

    /// Reads an array whose rows are `g1:` strings or plain arrays of numbers.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<f64>>, D::Error> {
        let rows = Vec::<OwnedRow>::deserialize(deserializer)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

/// One `f64` as JSON, exactly: a finite value as a plain number (the form it always had, so
/// older states load), `±inf` as `"inf"`/`"-inf"`, NaN as `"nan:"` and its 16 hex digits of bits
/// (payload included). `serde_json` writes a non-finite number as `null`, which does not load
/// back into an `f64`: a state whose moments overflowed would fail to restore.
#[derive(Debug, Clone, Copy)]
struct Exact(f64);

impl serde::Serialize for Exact {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if x.is_finite() {
            serializer.serialize_f64(x)
        } else if x == f64::INFINITY {
            serializer.serialize_str("inf")
        } else if x == f64::NEG_INFINITY {
            serializer.serialize_str("-inf")
        } else {
            serializer.serialize_str(&format!("nan:{:016x}", x.to_bits()))
        }
    }
}

impl<'de> serde::Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExactVisitor)
    }
}

struct ExactVisitor;

impl Visitor<'_> for ExactVisitor {
    type Value = Exact;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r#"a number, "inf", "-inf" or "nan:" and 16 hex digits"#)
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Exact, E> {
        Ok(Exact(x))
    }

    fn visit_i64<E: de::Error>(self, x: i64) -> Result<Exact, E> {
        Ok(Exact(x as f64))
    }

    fn visit_u64<E: de::Error>(self, x: u64) -> Result<Exact, E> {
        Ok(Exact(x as f64))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Exact, E> {
        let nan = |hex: &str| {
            let bits = u64::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 16)?;
            Some(f64::from_bits(bits)).filter(|x| x.is_nan())
        };
        match text {
            "inf" => Ok(Exact(f64::INFINITY)),
            "-inf" => Ok(Exact(f64::NEG_INFINITY)),
            _ => text
                .strip_prefix("nan:")
                .and_then(nan)
                .map(Exact)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self)),
        }
    }
}

/// Serde helpers for an `f64` field that may hold `±inf` or NaN ([`Exact`]'s form):
/// `#[serde(with = "crate::compact::f64_exact")]`.
pub mod f64_exact {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// Writes the value as a number, or as a string when it is not finite.
    pub fn serialize<S: Serializer>(x: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        Exact(*x).serialize(serializer)
    }

    /// Reads a number or one of the strings for non-finite values.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Exact::deserialize(deserializer).map(|e| e.0)
    }
}

/// Serde helpers for a `Vec<f64>` field whose values may be non-finite, kept readable (plain
/// numbers when finite, unlike [`f64s`]): `#[serde(with = "crate::compact::f64_exact_vec")]`.
pub mod f64_exact_vec {
    use serde::Deserialize;

    use super::*;

    /// Writes the values as an array ([`Exact`]'s form each).
    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|&v| Exact(v)))
    }

    /// Reads an array of numbers and strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<Exact>::deserialize(deserializer)?;
        Ok(values.into_iter().map(|e| e.0).collect())
    }
}

/// Serde helpers for an `[f64; N]` field whose values may be non-finite:
/// `#[serde(with = "crate::compact::f64_exact_array")]`.
pub mod f64_exact_array {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// Writes the values as an array ([`Exact`]'s form each).
    pub fn serialize<S: Serializer, const N: usize>(
        values: &[f64; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        values.map(Exact).serialize(serializer)
    }

    /// Reads an array of exactly `N` values.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[f64; N], D::Error> {
        let values = Vec::<Exact>::deserialize(deserializer)?;
        let len = values.len();
        <[Exact; N]>::try_from(values)
            .map(|a| a.map(|e| e.0))
            .map_err(|_| de::Error::invalid_length(len, &format!("{N} values").as_str()))
    }
}

/// Serde helpers for a `Vec<Option<f64>>` field whose values may be non-finite (`None` is
/// `null`): `#[serde(with = "crate::compact::opt_f64_exact_vec")]`.
pub mod opt_f64_exact_vec {
    use serde::Deserialize;

    use super::*;

    /// Writes the values as an array ([`Exact`]'s form each, `null` for `None`).
    pub fn serialize<S: Serializer>(
        values: &[Option<f64>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|v| v.map(Exact)))
    }

    /// Reads an array of numbers, strings and `null`s.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Option<f64>>, D::Error> {
        let values = Vec::<Option<Exact>>::deserialize(deserializer)?;
        Ok(values.into_iter().map(|v| v.map(|e| e.0)).collect())
    }
}

struct F64sVisitor;

impl<'de> Visitor<'de> for F64sVisitor {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a compact f64 sequence ({GORILLA_PREFIX}... or {DECIMAL_PREFIX}...) or an array of numbers"
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<f64>, E> {
        decode_f64s(text).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        // The size hint comes from the input: trust it only up to a sane bound.
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(v) = seq.next_element::<f64>()? {
            values.push(v);
        }
        Ok(values)
    }
}

struct TimedF64sVisitor;

impl<'de> Visitor<'de> for TimedF64sVisitor {
    type Value = Vec<(i64, f64)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a compact point sequence ({TIMED_F64S_PREFIX}...) or an array of [ts, value] pairs"
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<(i64, f64)>, E> {
        decode_timed_f64s(text).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<(i64, f64)>, A::Error> {
        let mut points = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(p) = seq.next_element::<(i64, f64)>()? {
            points.push(p);
        }
        Ok(points)
    }
}

// --- Scaled decimals ------------------------------------------------------------------------

/// The most digits after the point the decimal scheme tries.
const MAX_DECIMALS: u8 = 18;
/// `10^e` for `e` in `0..=MAX_DECIMALS`, all exact in `f64`.
const POW10: [f64; MAX_DECIMALS as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];
/// Scaled integers stay below 2^53, where every integer is exact in `f64`.
const MAX_SCALED: f64 = 9_007_199_254_740_992.0;
/// Sampled values that decide whether the decimal scheme is worth trying.
const DECIMAL_SAMPLE: usize = 64;

/// `d` such that `x` is bit-for-bit `d as f64 / 10^e` (what the decoder computes), if any.
/// Never for `-0.0`, NaN or infinities.
fn scaled(x: f64, e: u8) -> Option<i64> {
    let p = POW10[usize::from(e)];
    let d = (x * p).round();
    if !d.is_finite() || d.abs() >= MAX_SCALED {
        return None;
    }
    let d = d as i64;
    // The decoder's own computation, so that `-0.0` (which is `0 / 10^e` = `+0.0` there) and
    // any value the division does not give back exactly become exceptions.
    ((d as f64 / p).to_bits() == x.to_bits()).then_some(d)
}

/// The fewest digits after the point that give `x` exactly.
fn decimals(x: f64) -> Option<u8> {
    (0..=MAX_DECIMALS).find(|&e| scaled(x, e).is_some())
}

/// The `d1` payload for the best exponent, or None when an even sample of the values says
/// they are mostly not decimals (a computed statistic: Gorilla is the better tool).
fn decimal_payload(values: &[f64]) -> Option<Vec<u8>> {
    if values.len() < 2 {
        return None;
    }
    let mut candidates = [false; MAX_DECIMALS as usize + 1];
    let (mut sampled, mut decimal) = (0, 0);
    for &x in values.iter().step_by(values.len().div_ceil(DECIMAL_SAMPLE)) {
        sampled += 1;
        if let Some(e) = decimals(x) {
            candidates[usize::from(e)] = true;
            decimal += 1;
        }
    }
    if decimal * 2 < sampled {
        return None;
    }
    let e = (0..=MAX_DECIMALS)
        .filter(|&e| candidates[usize::from(e)])
        .min_by_key(|&e| decimal_cost(values, e))?;
    Some(decimal_payload_with(values, e))
}

/// Bytes of the `d1` payload of `values` scaled by `10^e`, up to a constant.
fn decimal_cost(values: &[f64], e: u8) -> usize {
    let mut prev = 0i64;
    values
        .iter()
        .map(|&x| match scaled(x, e) {
            Some(d) => {
                let len = varint_len(zigzag(d.wrapping_sub(prev)));
                prev = d;
                len
            }
            None => 9,
        })
        .sum()
}

/// The `d1` payload: count, exponent `e`, the exceptions (values that are not `d / 10^e`) as
/// index gaps with their raw bits, then the deltas of the scaled integers of the others.
fn decimal_payload_with(values: &[f64], e: u8) -> Vec<u8> {
    let mut exceptions = Vec::new();
    let mut exception_count = 0u64;
    let mut deltas = Vec::with_capacity(values.len() * 2);
    let (mut next_index, mut prev) = (0u64, 0i64);
    for (i, &x) in values.iter().enumerate() {
        match scaled(x, e) {
            Some(d) => {
                write_varint(&mut deltas, zigzag(d.wrapping_sub(prev)));
                prev = d;
            }
            None => {
                write_varint(&mut exceptions, i as u64 - next_index);
                exceptions.extend_from_slice(&x.to_bits().to_le_bytes());
                exception_count += 1;
                next_index = i as u64 + 1;
            }
        }
    }
    let mut payload = Vec::with_capacity(exceptions.len() + deltas.len() + 21);
    write_varint(&mut payload, values.len() as u64);
    payload.push(e);
    write_varint(&mut payload, exception_count);
    payload.extend_from_slice(&exceptions);
    payload.extend_from_slice(&deltas);
    payload
}

fn decode_decimal(payload: &[u8]) -> Result<Vec<f64>, DecodeError> {
    let mut bytes = payload;
    let count = read_varint(&mut bytes)?;
    let (&e, rest) = bytes
        .split_first()
        .ok_or(DecodeError::Truncated("stream ends before the exponent"))?;
    bytes = rest;
    let p = *POW10
        .get(usize::from(e))
        .ok_or(DecodeError::Corrupt("decimal exponent out of range"))?;
    let exception_count = read_varint(&mut bytes)?;
    if exception_count > count {
        return Err(DecodeError::Corrupt("more exceptions than values"));
    }
    // Every value takes at least one byte: bounds the allocation by the input size.
    if count > bytes.len() as u64 {
        return Err(DecodeError::Truncated("fewer bytes than announced values"));
    }
    let mut exceptions = Vec::with_capacity(exception_count as usize);
    let mut next_index = 0u64;
    for _ in 0..exception_count {
        let index = next_index
            .checked_add(read_varint(&mut bytes)?)
            .filter(|&i| i < count)
            .ok_or(DecodeError::Corrupt("exception index out of range"))?;
        let (raw, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or(DecodeError::Truncated("stream ends inside an exception"))?;
        bytes = rest;
        exceptions.push((index, f64::from_bits(u64::from_le_bytes(*raw))));
        next_index = index + 1;
    }
    let mut exceptions = exceptions.into_iter().peekable();
    let mut values = Vec::with_capacity(count as usize);
    let mut prev = 0i64;
    for i in 0..count {
        if let Some((_, x)) = exceptions.next_if(|&(j, _)| j == i) {
            values.push(x);
        } else {
            prev = prev.wrapping_add(unzigzag(read_varint(&mut bytes)?));
            values.push(prev as f64 / p);
        }
    }
    if !bytes.is_empty() {
        return Err(DecodeError::Corrupt("data after the last value"));
    }
    Ok(values)
}

// --- Gorilla XOR stream -------------------------------------------------------------------

/// Leading zeros are written in 5 bits, so at most 31 are recorded (the rest go into the
/// meaningful bits), as in the paper.
const MAX_LEADING: u32 = 31;

#[derive(Debug, Default)]
struct GorillaEncoder {
    prev: Option<u64>,
    /// `(leading, trailing)` zeros of the current window, once one is open.
    window: Option<(u32, u32)>,
}

impl GorillaEncoder {
    fn push(&mut self, out: &mut BitWriter, value: f64) {
        let bits = value.to_bits();
        let Some(prev) = self.prev.replace(bits) else {
            out.write(bits, 64);
            return;
        };
        let xor = bits ^ prev;
        if xor == 0 {
            out.write(0, 1);
            return;
        }
        let leading = xor.leading_zeros().min(MAX_LEADING);
        let trailing = xor.trailing_zeros();
        match self.window {
            Some((wl, wt)) if leading >= wl && trailing >= wt => {
                out.write(0b10, 2);
                out.write(xor >> wt, 64 - wl - wt);
            }
            _ => {
                let meaningful = 64 - leading - trailing;
                out.write(0b11, 2);
                out.write(u64::from(leading), 5);
                out.write(u64::from(meaningful & 63), 6);
                out.write(xor >> trailing, meaningful);
                self.window = Some((leading, trailing));
            }
        }
    }
}

/// Decodes `count` values from a Gorilla bit stream filling `bytes` (zero padding at the end).
fn decode_gorilla(bytes: &[u8], count: u64) -> Result<Vec<f64>, DecodeError> {
    if count == 0 {
        return if bytes.is_empty() {
            Ok(Vec::new())
        } else {
            Err(DecodeError::Corrupt("data after an empty sequence"))
        };
    }
    // 64 bits for the first value, at least one for each next: bounds the allocation.
    let available = bytes.len() as u64 * 8;
    if available < 64 || count - 1 > available - 64 {
        return Err(DecodeError::Truncated("fewer bits than announced values"));
    }
    let mut input = BitReader::new(bytes);
    let mut values = Vec::with_capacity(count as usize);
    let mut prev = input.read(64)?;
    values.push(f64::from_bits(prev));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..count {
        if input.read(1)? == 1 {
            let xor = if input.read(1)? == 0 {
                let (wl, wt) = window.ok_or(DecodeError::Corrupt(
                    "a value reuses a window before any was opened",
                ))?;
                input.read(64 - wl - wt)? << wt
            } else {
                let leading = input.read(5)? as u32;
                let meaningful = match input.read(6)? as u32 {
                    0 => 64,
                    m => m,
                };
                if leading + meaningful > 64 {
                    return Err(DecodeError::Corrupt("window wider than 64 bits"));
                }
                let trailing = 64 - leading - meaningful;
                window = Some((leading, trailing));
                input.read(meaningful)? << trailing
            };
            prev ^= xor;
        }
        values.push(f64::from_bits(prev));
    }
    input.finish()?;
    Ok(values)
}

/// Bits written most significant first into bytes.
#[derive(Debug)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits in the low `pending_len` bits.
    pending: u8,
    pending_len: u32,
}

impl BitWriter {
    fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            pending: 0,
            pending_len: 0,
        }
    }

    /// Writes the low `n` bits of `value` (`n <= 64`).
    fn write(&mut self, value: u64, n: u32) {
        let mut remaining = n;
        while remaining > 0 {
            let take = (8 - self.pending_len).min(remaining);
            let chunk = (value >> (remaining - take)) & ((1u64 << take) - 1);
            self.pending = ((u64::from(self.pending) << take) | chunk) as u8;
            self.pending_len += take;
            remaining -= take;
            if self.pending_len == 8 {
                self.bytes.push(self.pending);
                self.pending = 0;
                self.pending_len = 0;
            }
        }
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.pending_len > 0 {
            self.bytes.push(self.pending << (8 - self.pending_len));
        }
        self.bytes
    }
}

/// Reads bits most significant first.
#[derive(Debug)]
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next bit to read, counted from the start.
    position: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, position: 0 }
    }

    /// Reads `n <= 64` bits.
    fn read(&mut self, n: u32) -> Result<u64, DecodeError> {
        if self.position + n as usize > self.bytes.len() * 8 {
            return Err(DecodeError::Truncated("bit stream ends inside a value"));
        }
        let mut value = 0u64;
        let mut remaining = n;
        while remaining > 0 {
            let byte = self.bytes[self.position / 8];
            let offset = (self.position % 8) as u32;
            let take = (8 - offset).min(remaining);
            let chunk = (u64::from(byte) >> (8 - offset - take)) & ((1u64 << take) - 1);
            value = if take == 64 {
                chunk
            } else {
                (value << take) | chunk
            };
            remaining -= take;
            self.position += take as usize;
        }
        Ok(value)
    }

    /// Checks that only zero padding, less than a byte, is left.
    fn finish(mut self) -> Result<(), DecodeError> {
        let left = self.bytes.len() * 8 - self.position;
        if left >= 8 {
            return Err(DecodeError::Corrupt("data after the last value"));
        }
        if self.read(left as u32)? != 0 {
            return Err(DecodeError::Corrupt(
                "non-zero padding after the last value",
            ));
        }
        Ok(())
    }
}

// --- Varints --------------------------------------------------------------------------------

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

fn read_varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(DecodeError::Truncated("stream ends inside a varint"));
        };
        *input = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(DecodeError::Corrupt("varint overflows 64 bits"));
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::Corrupt("varint longer than 10 bytes"))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

// --- Base64 (RFC 4648 §4, standard alphabet, padded) ----------------------------------------

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    let symbol = |v: u32| char::from(BASE64_ALPHABET[(v & 63) as usize]);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(symbol(n >> 18));
        out.push(symbol(n >> 12));
        out.push(if chunk.len() > 1 { symbol(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { symbol(n) } else { '=' });
    }
}

fn base64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

fn base64_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return Err(DecodeError::Base64("length is not a multiple of 4"));
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (i, quad) in text.chunks_exact(4).enumerate() {
        let padding = match quad {
            [_, _, b'=', b'='] => 2,
            [_, _, _, b'='] => 1,
            _ => 0,
        };
        if padding > 0 && i + 1 != quads {
            return Err(DecodeError::Base64("padding before the end"));
        }
        let mut n = 0u32;
        for &c in &quad[..4 - padding] {
            let v = base64_value(c).ok_or(DecodeError::Base64("character outside the alphabet"))?;
            n = (n << 6) | v;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - padding;
        // Canonical form only: the bits beyond the last byte must be zero.
        if decoded[keep..].iter().any(|&b| b != 0) {
            return Err(DecodeError::Base64("non-zero bits in the padding"));
        }
        out.extend_from_slice(&decoded[..keep]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    fn same_bits(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Scalars {
        #[serde(with = "super::f64_exact")]
        x: f64,
        #[serde(with = "super::f64_exact_array")]
        pair: [f64; 2],
        #[serde(with = "super::opt_f64_exact_vec")]
        bins: Vec<Option<f64>>,
    }

    #[test]
    fn exact_scalars_round_trip_non_finite_values() {
        let payload = f64::from_bits(0x7ff0_0000_0000_0001);
        for x in [
            0.1 + 0.2,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            payload,
        ] {
            let state = Scalars {
                x,
                pair: [x, 1.5],
                bins: vec![Some(x), None],
            };
            let json = serde_json::to_string(&state).unwrap();
            let back: Scalars = serde_json::from_str(&json).unwrap();
            assert_eq!(back.x.to_bits(), x.to_bits(), "{json}");
            assert!(same_bits(&back.pair, &[x, 1.5]), "{json}");
            assert_eq!(back.bins.len(), 2);
            assert_eq!(back.bins[0].map(f64::to_bits), Some(x.to_bits()), "{json}");
            assert_eq!(back.bins[1], None);
        }
        // Finite values stay plain numbers (older states load), non-finite ones are named.
        let json = serde_json::to_string(&Scalars {
            x: f64::NEG_INFINITY,
            pair: [2.0, f64::NAN],
            bins: vec![Some(0.5), None],
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"x":"-inf","pair":[2.0,"nan:7ff8000000000000"],"bins":[0.5,null]}"#
        );
        let old: Scalars =
            serde_json::from_str(r#"{"x":3,"pair":[1.0,-2],"bins":[null,0.25]}"#).unwrap();
        assert_eq!(
            (old.x, old.pair, old.bins),
            (3.0, [1.0, -2.0], vec![None, Some(0.25)])
        );
        // Anything else is an error, not a guess.
        for bad in [
            r#""infinity""#,
            r#""nan""#,
            r#""nan:0000000000000000""#,
            r#""nan:7ff8""#,
            r#""nan:7ff800000000000g""#,
            "null",
        ] {
            let text = format!(r#"{{"x":{bad},"pair":[1.0,2.0],"bins":[]}}"#);
            assert!(serde_json::from_str::<Scalars>(&text).is_err(), "{bad}");
        }
        let short = r#"{"x":1.0,"pair":[1.0],"bins":[]}"#;
        assert!(serde_json::from_str::<Scalars>(short).is_err());
    }

    /// Every encoding of `values` decodes to the same bits: the chosen one, Gorilla, and the
    /// decimal scheme at a few exponents (most values then being exceptions).
    fn round_trip(values: &[f64]) {
        let mut texts = vec![encode_f64s(values), encode_gorilla(values)];
        texts.extend(encode_decimal(values));
        for e in [0, 2, MAX_DECIMALS] {
            texts.push(to_text(DECIMAL_PREFIX, &decimal_payload_with(values, e)));
        }
        for text in texts {
            let back = decode_f64s(&text).unwrap();
            let first_difference = (0..values.len().max(back.len()))
                .find(|&i| values.get(i).map(|x| x.to_bits()) != back.get(i).map(|x| x.to_bits()));
            assert_eq!(
                first_difference,
                None,
                "{} values, {} back, through {}",
                values.len(),
                back.len(),
                &text[..text.len().min(12)]
            );
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        #[serde(with = "f64s")]
        values: Vec<f64>,
        #[serde(with = "f64_deque")]
        window: VecDeque<f64>,
        #[serde(with = "timed_f64s")]
        points: Vec<(i64, f64)>,
        #[serde(with = "f64_rows")]
        rows: Vec<Vec<f64>>,
    }

    fn special_values() -> Vec<f64> {
        vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN payload
            f64::from_bits(0xfff8_dead_beef_0001),
            0.1,
            0.1,
            0.1,
            100.0,
            100.5,
        ]
    }

    #[test]
    fn special_values_round_trip_bit_for_bit() {
        round_trip(&[]);
        round_trip(&[-0.0]);
        round_trip(&[f64::NAN]);
        round_trip(&special_values());
        let mut reversed = special_values();
        reversed.reverse();
        round_trip(&reversed);
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode_f64s(&[]), "g1:AA==");
        // count 1, then the 64 bits of 1.0 = 0x3ff0_0000_0000_0000.
        assert_eq!(encode_f64s(&[1.0]), "g1:AT/wAAAAAAAA");
        // A repeated value costs one bit.
        assert_eq!(encode_gorilla(&[1.0, 1.0]), "g1:Aj/wAAAAAAAAAA==");
        // count 2, exponent 0, no exception, deltas +1 and 0 (zigzag 2, 0).
        assert_eq!(encode_f64s(&[1.0, 1.0]), "d1:AgAAAgA=");
        // 1.25 at two decimals (zigzag(125) = 250 = varint fa 01), then -0.0 as an exception
        // at index 1 (gap 1, raw little-endian bits).
        assert_eq!(
            decode_f64s("d1:AgIBAQAAAAAAAACA+gE=")
                .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
            Ok(vec![1.25f64.to_bits(), (-0.0f64).to_bits()])
        );
        assert_eq!(
            encode_decimal(&[1.25, -0.0]).as_deref(),
            Some("d1:AgIBAQAAAAAAAACA+gE=")
        );
        assert_eq!(encode_timed_f64s(&[]), "tg1:AA==");
    }

    #[test]
    fn a_regular_series_is_small() {
        let values: Vec<f64> = (0..2000).map(|i| f64::from(i % 50 + 100)).collect();
        let plain = serde_json::to_string(&values).unwrap();
        let gorilla = encode_gorilla(&values);
        assert!(
            gorilla.len() * 3 < plain.len(),
            "{} vs {}",
            gorilla.len(),
            plain.len()
        );
        let chosen = encode_f64s(&values);
        assert!(chosen.starts_with(DECIMAL_PREFIX) && chosen.len() < gorilla.len());
        round_trip(&values);
        // Two decimals with a few exceptions: still the decimal scheme.
        let mut prices: Vec<f64> = (0..2000)
            .map(|i| f64::from(i % 700) / 100.0 + 20.0)
            .collect();
        prices[10] = 0.1 + 0.2;
        prices[20] = f64::NAN;
        assert!(encode_f64s(&prices).starts_with(DECIMAL_PREFIX));
        round_trip(&prices);
        // Computed values (full mantissas): Gorilla.
        let computed: Vec<f64> = (0..2000)
            .map(|i| (f64::from(i) * 0.37).sin() * 1e3)
            .collect();
        assert!(encode_f64s(&computed).starts_with(GORILLA_PREFIX));
        round_trip(&computed);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            let mut out = String::new();
            base64_encode(plain.as_bytes(), &mut out);
            assert_eq!(out, encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        let mut out = String::new();
        base64_encode(&all, &mut out);
        assert!(out.contains('+') && out.contains('/'));
        assert_eq!(base64_decode(&out).unwrap(), all);
    }

    #[test]
    fn timed_points_round_trip_with_any_timestamps() {
        let points = vec![
            (1_700_000_000_000, 1.5),
            (1_700_000_300_000, 1.5),
            (1_700_000_600_000, -0.0),
            (1_700_000_600_000, f64::NAN),
            (1_700_000_000_000, f64::INFINITY),
            (i64::MAX, 2.0),
            (i64::MIN, 3.0),
            (0, f64::from_bits(1)),
            (-1, 4.0),
        ];
        for n in 0..=points.len() {
            let text = encode_timed_f64s(&points[..n]);
            assert!(text.starts_with(TIMED_F64S_PREFIX));
            let back = decode_timed_f64s(&text).unwrap();
            assert_eq!(back.len(), n);
            for (a, b) in points[..n].iter().zip(&back) {
                assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
            }
        }
        // Regular sampling: about one byte of timestamp per point.
        let regular: Vec<(i64, f64)> = (0..1000).map(|i| (i * 300_000, 42.0)).collect();
        assert!(encode_timed_f64s(&regular).len() < 1600);
    }

    fn sample_state() -> State {
        State {
            values: vec![1.0, -0.0, 2.5, 1e300, f64::from_bits(1)],
            window: VecDeque::from(vec![3.0, 3.25]),
            points: vec![(10, 1.0), (20, -2.0)],
            rows: vec![vec![0.5, 0.25], vec![], vec![7.0]],
        }
    }

    #[test]
    fn state_round_trips_through_json_text_and_value() {
        let state = sample_state();
        let text = serde_json::to_string(&state).unwrap();
        assert!(text.contains("\"values\":\"g1:"), "{text}");
        assert!(text.contains("\"points\":\"tg1:"), "{text}");
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.values[1].to_bits(), (-0.0f64).to_bits());
        let value = serde_json::to_value(&state).unwrap();
        let back: State = serde_json::from_value(value).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn the_previous_plain_format_still_loads() {
        let old = serde_json::json!({
            "values": [1.0, -0.0, 2.5, 1e300, 5e-324],
            "window": [3.0, 3.25],
            "points": [[10, 1.0], [20, -2.0]],
            "rows": [[0.5, 0.25], [], [7]],
        });
        let back: State = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(back, sample_state());
        assert_eq!(back.values[1].to_bits(), (-0.0f64).to_bits());
        let back: State = serde_json::from_str(&old.to_string()).unwrap();
        assert_eq!(back, sample_state());
        // Mixed: some fields already compact.
        let mut mixed = old;
        mixed["values"] = serde_json::Value::String(encode_f64s(&[1.0, -0.0, 2.5, 1e300, 5e-324]));
        assert_eq!(
            serde_json::from_value::<State>(mixed).unwrap(),
            sample_state()
        );
    }

    fn load_values(field: serde_json::Value) -> Result<State, String> {
        let mut json = serde_json::to_value(sample_state()).unwrap();
        json["values"] = field;
        serde_json::from_value::<State>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        let good = encode_gorilla(&[1.0, 2.0, 3.5, -7.25]);
        assert!(!good.ends_with('='), "{good}");
        let decimal = |bytes: &[u8]| to_text(DECIMAL_PREFIX, bytes);
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "starting with \"g1:\" or \"d1:\""),
            ("g2:AA==".into(), "starting with \"g1:\" or \"d1:\""),
            ("tg1:AA==".into(), "starting with \"g1:\" or \"d1:\""),
            ("[1,2]".into(), "starting with \"g1:\" or \"d1:\""),
            ("g1:A".into(), "multiple of 4"),
            ("g1:A===".into(), "invalid base64"),
            ("g1:AA==AA==".into(), "padding before the end"),
            ("g1:AB==".into(), "non-zero bits"),
            ("g1:!!!!".into(), "outside the alphabet"),
            ("g1:".into(), "truncated"),
            ("g1:BQ==".into(), "truncated"),
            ("g1:AAAA".into(), "data after an empty sequence"),
            (good[..good.len() - 4].to_owned(), "truncated"),
            (format!("{good}AAAA"), "data after the last value"),
            (to_text(GORILLA_PREFIX, &[0xff; 11]), "varint"),
            // count 2, exponent 99.
            (decimal(&[2, 99, 0, 0, 0]), "exponent out of range"),
            (decimal(&[2]), "before the exponent"),
            (decimal(&[2, 0, 3, 0, 0]), "more exceptions than values"),
            (
                decimal(&[2, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                "index out of range",
            ),
            (decimal(&[2, 0, 1, 0, 0, 0, 0]), "truncated"),
            (decimal(&[2, 0, 0, 2]), "truncated"),
            (decimal(&[2, 0, 0, 2, 0, 0]), "data after the last value"),
            (decimal(&[2, 0, 0, 0x80, 0x80]), "truncated"),
        ];
        for (text, want) in cases {
            let err = decode_f64s(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            // Through serde, the same message.
            let err = load_values(serde_json::Value::String(text.clone())).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = load_values(serde_json::json!([1.0, "x"])).unwrap_err();
        assert!(err.contains("expected f64"), "{err}");
        let err = load_values(serde_json::json!({"a": 1})).unwrap_err();
        assert!(err.contains("compact f64 sequence"), "{err}");
        assert!(decode_timed_f64s("tg1:BQ==").is_err());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_value() {
        let values = special_values();
        let decimal = decimal_payload_with(&values, 1);
        for (prefix, payload) in [
            (GORILLA_PREFIX, gorilla_payload(&values)),
            (DECIMAL_PREFIX, decimal),
        ] {
            let text = to_text(prefix, &payload);
            assert!(same_bits(&decode_f64s(&text).unwrap(), &values));
            for cut in 0..text.len() {
                assert!(decode_f64s(&text[..cut]).is_err(), "{prefix} cut at {cut}");
            }
            for i in 0..payload.len() * 8 {
                let mut flipped = payload.clone();
                flipped[i / 8] ^= 0x80 >> (i % 8);
                // Must not panic; a flip may still decode to (other) values.
                let _ = decode_f64s(&to_text(prefix, &flipped));
            }
        }
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => any::<u64>().prop_map(f64::from_bits),
            4 => (-1000i32..1000).prop_map(|i| f64::from(i) / 8.0),
            1 => Just(-0.0),
            1 => (0u64..1 << 52).prop_map(f64::from_bits),
            1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        ]
    }

    /// Mostly decimals with up to 4 digits after the point, a few other values.
    fn decimal_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => (-100_000_000i64..100_000_000, 0u32..5)
                .prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
            1 => any_f64(),
        ]
    }

    proptest! {
        #[test]
        fn any_bit_patterns_round_trip(values in prop::collection::vec(any_f64(), 0..300)) {
            round_trip(&values);
        }

        #[test]
        fn decimals_round_trip(values in prop::collection::vec(decimal_f64(), 0..300)) {
            round_trip(&values);
        }

        #[test]
        fn any_points_round_trip(
            points in prop::collection::vec((any::<i64>(), any_f64()), 0..200),
        ) {
            let back = decode_timed_f64s(&encode_timed_f64s(&points)).unwrap();
            prop_assert_eq!(back.len(), points.len());
            for (a, b) in points.iter().zip(&back) {
                prop_assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
            }
        }

        #[test]
        fn garbage_never_panics(text in "(g1:|d1:|tg1:)?[A-Za-z0-9+/=]{0,64}") {
            let _ = decode_f64s(&text);
            let _ = decode_timed_f64s(&text);
        }

        #[test]
        fn random_payloads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_f64s(&to_text(GORILLA_PREFIX, &bytes));
            let _ = decode_f64s(&to_text(DECIMAL_PREFIX, &bytes));
            let _ = decode_timed_f64s(&to_text(TIMED_F64S_PREFIX, &bytes));
        }
    }
}
