//! Query-string parameters shared by the query routes: typed getters with messages that name
//! the parameter and the offending value.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ingest::parse_time_text;

/// Raw query parameters.
pub(crate) type Params = BTreeMap<String, String>;

/// A parameter problem: (name, message, offending input).
#[derive(Debug)]
pub(crate) struct ParamError {
    pub name: &'static str,
    pub message: String,
    pub input: String,
    /// pydantic's error type, for the compatibility routes.
    pub kind: &'static str,
}

impl ParamError {
    pub(crate) fn to_sentence(&self) -> String {
        format!(
            "query parameter `{}`: {} (got `{}`)",
            self.name, self.message, self.input
        )
    }
}

impl From<ParamError> for crate::ApiError {
    fn from(e: ParamError) -> Self {
        crate::ApiError::BadRequest(e.to_sentence())
    }
}

impl From<ParamError> for crate::error::CompatError {
    fn from(e: ParamError) -> Self {
        crate::error::CompatError::validation(&["query", e.name], e.message, e.kind, e.input.into())
    }
}

/// A string parameter (empty counts as absent).
pub(crate) fn text(params: &Params, name: &str) -> Option<String> {
    params.get(name).filter(|v| !v.is_empty()).cloned()
}

/// An integer parameter within `min..=max`.
pub(crate) fn int(
    params: &Params,
    name: &'static str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, ParamError> {
    let Some(raw) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let n: i64 = raw.trim().parse().map_err(|_| ParamError {
        name,
        message: "Input should be a valid integer, unable to parse string as an integer".into(),
        input: raw.clone(),
        kind: "int_parsing",
    })?;
    if n < min {
        return Err(ParamError {
            name,
            message: format!("Input should be greater than or equal to {min}"),
            input: raw.clone(),
            kind: "greater_than_equal",
        });
    }
    if n > max {
        return Err(ParamError {
            name,
            message: format!("Input should be less than or equal to {max}"),
            input: raw.clone(),
            kind: "less_than_equal",
        });
    }
    Ok(Some(n))
}

/// A time parameter: epoch ms/seconds or ISO-8601.
pub(crate) fn time(params: &Params, name: &'static str) -> Result<Option<i64>, ParamError> {
    let Some(raw) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    parse_time_text(raw).map(Some).ok_or_else(|| ParamError {
        name,
        message: "expected epoch milliseconds, epoch seconds or an ISO-8601 datetime".into(),
        input: raw.clone(),
        kind: "datetime_parsing",
    })
}

/// A parameter that must be one of `allowed`.
pub(crate) fn one_of(
    params: &Params,
    name: &'static str,
    allowed: &[&str],
) -> Result<Option<String>, ParamError> {
    let Some(raw) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if allowed.contains(&raw.as_str()) {
        return Ok(Some(raw.clone()));
    }
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    let (head, last) = quoted.split_at(quoted.len().saturating_sub(1));
    Err(ParamError {
        name,
        message: format!("Input should be {} or {}", head.join(", "), last.join("")),
        input: raw.clone(),
        kind: "enum",
    })
}

/// `page` (≥ 1, default 1) and `size` (1..=1000, default 50).
pub(crate) fn page(params: &Params) -> Result<(u32, u32), ParamError> {
    let page = int(params, "page", 1, 1_000_000)?.unwrap_or(1) as u32;
    let size = int(params, "size", 1, 1000)?.unwrap_or(50) as u32;
    Ok((page, size))
}

/// The pagination block of a page of results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Pagination {
    pub page: u32,
    pub size: u32,
    pub total: u64,
    pub total_pages: u64,
    pub has_next: bool,
    pub has_prev: bool,
}

impl Pagination {
    pub(crate) fn new(page: u32, size: u32, total: u64) -> Self {
        let total_pages = total.div_ceil(u64::from(size.max(1)));
        Pagination {
            page,
            size,
            total,
            total_pages,
            has_next: u64::from(page) < total_pages,
            has_prev: page > 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn getters() {
        assert_eq!(page(&p(&[])).unwrap(), (1, 50));
        assert_eq!(
            page(&p(&[("page", "3"), ("size", "1000")])).unwrap(),
            (3, 1000)
        );
        assert_eq!(
            page(&p(&[("size", "1001")])).unwrap_err().kind,
            "less_than_equal"
        );
        assert_eq!(
            page(&p(&[("page", "0")])).unwrap_err().kind,
            "greater_than_equal"
        );
        assert_eq!(page(&p(&[("page", "x")])).unwrap_err().kind, "int_parsing");
        assert_eq!(
            time(&p(&[("from", "2023-06-07T12:34:56Z")]), "from").unwrap(),
            Some(1_686_141_296_000)
        );
        assert_eq!(
            time(&p(&[("from", "1686141296000")]), "from").unwrap(),
            Some(1_686_141_296_000)
        );
        assert!(time(&p(&[("from", "soon")]), "from").is_err());
        let e = one_of(
            &p(&[("severity", "urgent")]),
            "severity",
            &["low", "medium", "high"],
        )
        .unwrap_err();
        assert_eq!(e.message, "Input should be 'low', 'medium' or 'high'");
        assert_eq!(text(&p(&[("entity", "")]), "entity"), None);
    }

    #[test]
    fn pagination() {
        let pg = Pagination::new(1, 50, 1234);
        assert_eq!(
            (pg.total_pages, pg.has_next, pg.has_prev),
            (25, true, false)
        );
        let last = Pagination::new(25, 50, 1234);
        assert!(!last.has_next && last.has_prev);
        assert_eq!(Pagination::new(1, 50, 0).total_pages, 0);
    }
}
