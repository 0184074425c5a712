//! The read side, on pooled read connections. Each call is one read transaction, so a page and
//! its `total` come from the same snapshot.
//!
//! Events are found through their postings ([`postings`]). For anomalies, index choice is made explicit rather than left to the planner (the database is never
//! `ANALYZE`d, so the planner would have to guess which equality filter is more selective): the
//! most selective filter keeps its indexable form and every other equality filter is written
//! `+column = ?`, which SQLite cannot use an index for. Priority: entity, then detector, then
//! type, then severity; with none of those the `ts` index serves both the range filter and the
//! order. Every index ends in `ts` (and the implicit rowid), so the newest-first order never
//! needs a sort. The anomaly statistics name `INDEXED BY anomalies_detected_at`: left alone, the
//! planner may prefer scanning a `(detector, ts)`-style index whole to avoid a GROUP BY sort,
//! which reads every anomaly ever stored instead of the recent ones. `EXPLAIN QUERY PLAN` is checked in
//! this module's tests.

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::codec::{ANOMALY_COLUMNS, EVENT_COLUMNS, anomaly_from_row, event_from_row};
use super::postings;
use super::write::hour_of;
use crate::{
    AnomalyQuery, DetectorModel, DetectorModelInfo, EntityRisk, EventQuery, Page, SavedState,
    StateEntry, Stats, StoreError, StoredAnomaly,
};

/// Number of entities in each top list of [`Stats`].
const TOP_N: i64 = 10;

/// A WHERE clause under construction, with its bound values.
#[derive(Debug, Default)]
struct Filter {
    conds: Vec<String>,
    values: Vec<Value>,
    /// Whether an equality filter already claimed the index.
    indexed: bool,
}

impl Filter {
    /// `column = ?`, indexable only if no earlier (more selective) equality filter was added.
    fn eq(&mut self, column: &str, value: Option<&str>) {
        if let Some(v) = value {
            let prefix = if self.indexed { "+" } else { "" };
            self.indexed = true;
            self.conds
                .push(format!("{prefix}{column} = ?{}", self.values.len() + 1));
            self.values.push(Value::Text(v.to_owned()));
        }
    }

    fn cmp(&mut self, column: &str, op: &str, value: Option<i64>) {
        if let Some(v) = value {
            self.conds
                .push(format!("{column} {op} ?{}", self.values.len() + 1));
            self.values.push(Value::Integer(v));
        }
    }

    fn where_clause(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conds.join(" AND "))
        }
    }
}

fn anomaly_filter(q: &AnomalyQuery) -> Filter {
    let mut f = Filter::default();
    f.eq("entity", q.entity.as_deref());
    f.eq("detector", q.detector.as_deref());
    f.eq("type", q.event_type.as_deref());
    f.eq("severity", q.severity.map(|s| s.as_str()));
    f.cmp("ts", ">=", q.from_ts);
    f.cmp("ts", "<=", q.to_ts);
    f
}

/// The page's SELECT and COUNT statements, and the bound values (LIMIT and OFFSET last).
fn paged_sql(
    table: &str,
    columns: &str,
    f: &Filter,
    page: u32,
    size: u32,
) -> (String, String, Vec<Value>) {
    let size = i64::from(size.max(1));
    let offset = i64::from(page.max(1) - 1) * size;
    let w = f.where_clause();
    let n = f.values.len();
    let select = format!(
        "SELECT {columns} FROM {table}{w} ORDER BY ts DESC, id DESC LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    );
    let count = format!("SELECT count(*) FROM {table}{w}");
    let mut values = f.values.clone();
    values.push(Value::Integer(size));
    values.push(Value::Integer(offset));
    (select, count, values)
}

/// A page of events, newest first, through the postings (see [`postings`]).
///
/// The postings of the most selective key are used: the entity if given, else the type, else
/// all events. With both an entity and a type, the entity's entries in the time range are
/// checked against the type of their row (an entity has few events, so this stays cheap).
pub(super) fn events(
    conn: &mut Connection,
    q: &EventQuery,
) -> Result<Page<oddity_model::Event>, StoreError> {
    let (kind, key) = match (&q.entity, &q.event_type) {
        (Some(entity), _) => (postings::KIND_ENTITY, entity.as_str()),
        (None, Some(event_type)) => (postings::KIND_TYPE, event_type.as_str()),
        (None, None) => (postings::KIND_ALL, ""),
    };
    let (from, to) = (q.from_ts.unwrap_or(i64::MIN), q.to_ts.unwrap_or(i64::MAX));
    let size = q.size.max(1) as usize;
    let offset = usize::try_from(u64::from(q.page.max(1) - 1) * size as u64).unwrap_or(usize::MAX);
    let tx = conn.transaction()?;
    let metas = postings::overlapping(&tx, kind, key, from, to)?;
    let (total, entries) = match (&q.entity, &q.event_type) {
        (Some(_), Some(event_type)) => {
            let mut all = Vec::new();
            for m in &metas {
                postings::load_into(&tx, m, from, to, &mut all)?;
            }
            all.sort_unstable_by(postings::newest_first);
            let mut has_type = tx.prepare_cached("SELECT type = ?2 FROM events WHERE seq = ?1")?;
            let mut matched = Vec::new();
            for e in all {
                if has_type
                    .query_row(params![e.seq, event_type], |r| r.get::<_, bool>(0))
                    .optional()?
                    == Some(true)
                {
                    matched.push(e);
                }
            }
            (
                matched.len() as u64,
                matched.into_iter().skip(offset).take(size).collect(),
            )
        }
        _ => newest_entries(&tx, &metas, from, to, offset, size)?,
    };
    let mut fetch = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
    ))?;
    let mut items = Vec::with_capacity(entries.len());
    for e in entries {
        let mut rows = fetch.query([e.seq])?;
        // Retention deletes a batch's postings in the transaction that starts deleting its
        // rows, so a posting read in this snapshot has all its rows; skip defensively anyway.
        if let Some(row) = rows.next()? {
            items.push(event_from_row(row)?);
        }
    }
    drop(fetch);
    tx.finish()?;
    Ok(Page { items, total })
}

/// The total number of entries of `metas` in `[from, to]`, and entries `offset..offset + size`
/// of them in the store's order. Postings are merged newest `max_ts` first, stopping when no
/// remaining posting can hold an entry for the page.
fn newest_entries(
    conn: &Connection,
    metas: &[postings::Meta],
    from: i64,
    to: i64,
    offset: usize,
    size: usize,
) -> Result<(u64, Vec<postings::Entry>), StoreError> {
    let mut total = 0u64;
    let mut scratch = Vec::new();
    for m in metas {
        if m.inside(from, to) {
            total += m.n;
        } else {
            scratch.clear();
            postings::load_into(conn, m, from, to, &mut scratch)?;
            total += scratch.len() as u64;
        }
    }
    if offset as u64 >= total {
        return Ok((total, Vec::new()));
    }
    let need = offset.saturating_add(size);
    let mut best: Vec<postings::Entry> = Vec::new();
    for m in metas {
        if best.len() >= need && m.max_ts < best[need - 1].ts {
            break;
        }
        postings::load_into(conn, m, from, to, &mut best)?;
        if best.len() >= need {
            best.sort_unstable_by(postings::newest_first);
            best.truncate(need);
        }
    }
    best.sort_unstable_by(postings::newest_first);
    Ok((total, best.into_iter().skip(offset).take(size).collect()))
}

/// A page of anomalies, newest triggering event first.
pub(super) fn anomalies(
    conn: &mut Connection,
    q: &AnomalyQuery,
) -> Result<Page<StoredAnomaly>, StoreError> {
    let f = anomaly_filter(q);
    let (select, count, values) = paged_sql("anomalies", ANOMALY_COLUMNS, &f, q.page, q.size);
    let tx = conn.transaction()?;
    let mut items = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&select)?;
        let mut rows = stmt.query(params_from_iter(values.iter()))?;
        while let Some(row) = rows.next()? {
            items.push(anomaly_from_row(row)?);
        }
    }
    let total: i64 = tx
        .prepare_cached(&count)?
        .query_row(params_from_iter(f.values.iter()), |r| r.get(0))?;
    tx.finish()?;
    Ok(Page {
        items,
        total: total as u64,
    })
}

/// Every partition's stored position.
pub(super) fn positions(conn: &mut Connection) -> Result<BTreeMap<u32, u64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT partition, next_offset FROM positions")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (partition, offset) = row?;
        let offset = u64::try_from(offset).map_err(|_| {
            StoreError::Corrupt(format!(
                "negative position {offset} of partition {partition}"
            ))
        })?;
        out.insert(partition, offset);
    }
    Ok(out)
}

/// The detector state saved by `partition`, ordered by detector then key, with its offset.
pub(super) fn load_state(conn: &mut Connection, partition: u32) -> Result<SavedState, StoreError> {
    let offset: Option<i64> = conn
        .prepare_cached("SELECT state_offset FROM positions WHERE partition = ?1")?
        .query_row([partition], |r| r.get(0))
        .optional()?;
    let offset = u64::try_from(offset.unwrap_or(0)).map_err(|_| {
        StoreError::Corrupt(format!("negative state offset of partition {partition}"))
    })?;
    let mut stmt = conn.prepare_cached(
        "SELECT detector, key, state FROM detector_state WHERE partition = ?1 ORDER BY detector, key",
    )?;
    let mut rows = stmt.query([partition])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let detector: String = row.get(0)?;
        let key: String = row.get(1)?;
        let state = serde_json::from_str(row.get_ref(2)?.as_str()?)
            .map_err(|e| StoreError::Corrupt(format!("state of {detector}/{key}: {e}")))?;
        out.push(StateEntry {
            detector,
            key,
            state,
        });
    }
    Ok(SavedState {
        offset,
        entries: out,
    })
}

/// Runs a two-column `(key, count)` query.
fn counts(conn: &Connection, sql: &str, arg: i64) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([arg], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (k, n) = row?;
        out.push((k, n.max(0) as u64));
    }
    Ok(out)
}

/// Counts since `since_ms`. Events come from the hourly aggregates: the hour holding `since_ms`
/// is counted whole (so up to one hour more than asked). Anomalies are counted exactly.
pub(super) fn stats(conn: &mut Connection, since_ms: i64) -> Result<Stats, StoreError> {
    let tx = conn.transaction()?;
    let hour = hour_of(since_ms);
    let events_by_type: BTreeMap<String, u64> = counts(
        &tx,
        "SELECT type, SUM(n) FROM event_counts_by_type WHERE hour >= ?1 GROUP BY type",
        hour,
    )?
    .into_iter()
    .collect();
    let top_entities_by_events = counts(
        &tx,
        &format!(
            "SELECT entity, SUM(n) AS c FROM event_counts_by_entity WHERE hour >= ?1
             GROUP BY entity ORDER BY c DESC, entity ASC LIMIT {TOP_N}"
        ),
        hour,
    )?;
    let anomalies = anomaly_counts(&tx, since_ms)?;
    tx.finish()?;
    Ok(Stats {
        since_ms,
        total_events: events_by_type.values().sum(),
        total_anomalies: anomalies.total,
        events_by_type,
        anomalies_by_detector: anomalies.by_detector.into_iter().collect(),
        anomalies_by_severity: anomalies.by_severity.into_iter().collect(),
        top_entities_by_events,
        top_entities_by_anomalies: top_n(anomalies.by_entity),
    })
}

/// Anomaly counts since a detection time.
#[derive(Debug, Default)]
struct AnomalyCounts {
    total: u64,
    by_detector: HashMap<String, u64>,
    by_severity: HashMap<String, u64>,
    by_entity: HashMap<String, u64>,
}

/// Counts anomalies detected since `since_ms` in one pass over the covering
/// `(detected_at, detector, severity, entity)` index (three GROUP BY queries sorted three times).
fn anomaly_counts(conn: &Connection, since_ms: i64) -> Result<AnomalyCounts, StoreError> {
    fn bump(map: &mut HashMap<String, u64>, key: &str) {
        match map.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                map.insert(key.to_owned(), 1);
            }
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT detector, severity, entity FROM anomalies INDEXED BY anomalies_detected_at
         WHERE detected_at >= ?1",
    )?;
    let mut rows = stmt.query([since_ms])?;
    let mut out = AnomalyCounts::default();
    while let Some(row) = rows.next()? {
        out.total += 1;
        bump(&mut out.by_detector, row.get_ref(0)?.as_str()?);
        bump(&mut out.by_severity, row.get_ref(1)?.as_str()?);
        bump(&mut out.by_entity, row.get_ref(2)?.as_str()?);
    }
    Ok(out)
}

/// The `TOP_N` largest counts, ties by key ascending.
fn top_n(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP_N as usize);
    v
}

/// Anomaly counts of one entity, by severity, and since `recent_since_ms` (by detection time).
pub(super) fn entity_risk(
    conn: &mut Connection,
    entity: &str,
    recent_since_ms: i64,
) -> Result<EntityRisk, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT severity, count(*), coalesce(sum(detected_at >= ?2), 0) FROM anomalies
         WHERE entity = ?1 GROUP BY severity",
    )?;
    let mut rows = stmt.query(params![entity, recent_since_ms])?;
    let mut risk = EntityRisk {
        entity: entity.to_owned(),
        ..EntityRisk::default()
    };
    while let Some(row) = rows.next()? {
        let severity: String = row.get(0)?;
        let n = row.get::<_, i64>(1)?.max(0) as u64;
        let recent = row.get::<_, i64>(2)?.max(0) as u64;
        match severity.as_str() {
            "low" => risk.low = n,
            "medium" => risk.medium = n,
            "high" => risk.high = n,
            "critical" => risk.critical = n,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown severity `{other}` in anomalies"
                )));
            }
        }
        risk.total_anomalies += n;
        risk.recent_anomalies += recent;
    }
    Ok(risk)
}

/// Columns of a model's listing line, as [`model_info`] reads them.
const MODEL_INFO_COLUMNS: &str = "key, version, created_at, trained_at, rows";

/// A model's listing line from the first columns of a row ([`MODEL_INFO_COLUMNS`]).
fn model_info(detector: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<DetectorModelInfo> {
    Ok(DetectorModelInfo {
        detector: detector.to_owned(),
        key: r.get(0)?,
        version: r.get(1)?,
        created_at: r.get(2)?,
        trained_at: r.get(3)?,
        rows: r.get::<_, i64>(4)?.max(0) as u64,
    })
}

/// The stored model versions of `detector`, by key then version.
pub(super) fn detector_models(
    conn: &mut Connection,
    detector: &str,
) -> Result<Vec<DetectorModelInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MODEL_INFO_COLUMNS} FROM detector_models
         WHERE detector = ?1 ORDER BY key, version"
    ))?;
    let rows = stmt.query_map([detector], |r| model_info(detector, r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One stored model version (the newest when `version` is `None`).
pub(super) fn detector_model(
    conn: &mut Connection,
    detector: &str,
    key: &str,
    version: Option<u32>,
) -> Result<Option<DetectorModel>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {MODEL_INFO_COLUMNS}, model FROM detector_models
             WHERE detector = ?1 AND key = ?2 AND (?3 IS NULL OR version = ?3)
             ORDER BY version DESC LIMIT 1"
        ))?
        .query_row(params![detector, key, version], |r| {
            Ok((model_info(detector, r)?, r.get::<_, String>(5)?))
        })
        .optional()?;
    let Some((info, model)) = found else {
        return Ok(None);
    };
    let model = serde_json::from_str(&model).map_err(|e| {
        StoreError::Corrupt(format!("model {detector}/{key} v{}: {e}", info.version))
    })?;
    Ok(Some(DetectorModel { info, model }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oddity_model::Severity;

    fn plan(conn: &Connection, sql: &str, values: &[Value]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(values.iter()), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join(" | ")
    }

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("plan.db")).unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    #[test]
    fn postings_lookup_uses_the_covering_index() {
        let (_dir, conn) = db();
        let v = [
            Value::Integer(1),
            Value::Text("u1".into()),
            Value::Integer(0),
            Value::Integer(9),
        ];
        let p = plan(
            &conn,
            "SELECT posting, min_ts, max_ts, n FROM event_postings
             WHERE kind = ?1 AND key = ?2 AND max_ts >= ?3 AND min_ts <= ?4 ORDER BY max_ts DESC",
            &v,
        );
        assert!(p.contains("COVERING INDEX event_postings_key"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
        let p = plan(
            &conn,
            "DELETE FROM event_postings WHERE batch = ?1",
            &v[..1],
        );
        assert!(p.contains("event_postings_batch"), "{p}");
        let p = plan(
            &conn,
            "SELECT batch FROM event_batches WHERE max_ingested_at < ?1 ORDER BY max_ingested_at LIMIT 1",
            &v[..1],
        );
        assert!(p.contains("event_batches_max_ingested"), "{p}");
    }

    #[test]
    fn anomaly_queries_use_an_index_and_never_sort() {
        let (_dir, conn) = db();
        let s = |v: &str| Some(v.to_owned());
        let cases = [
            (AnomalyQuery::default(), "anomalies_ts"),
            (
                AnomalyQuery {
                    from_ts: Some(1),
                    ..Default::default()
                },
                "anomalies_ts",
            ),
            (
                AnomalyQuery {
                    entity: s("u1"),
                    detector: s("d"),
                    ..Default::default()
                },
                "anomalies_entity_ts",
            ),
            (
                AnomalyQuery {
                    detector: s("d"),
                    severity: Some(Severity::High),
                    ..Default::default()
                },
                "anomalies_detector_ts",
            ),
            (
                AnomalyQuery {
                    event_type: s("login"),
                    ..Default::default()
                },
                "anomalies_type_ts",
            ),
            (
                AnomalyQuery {
                    severity: Some(Severity::Low),
                    to_ts: Some(9),
                    ..Default::default()
                },
                "anomalies_severity_ts",
            ),
        ];
        for (q, index) in cases {
            let f = anomaly_filter(&q);
            let (select, _, values) = paged_sql("anomalies", ANOMALY_COLUMNS, &f, 1, 10);
            let p = plan(&conn, &select, &values);
            assert!(p.contains(&format!("INDEX {index}")), "{q:?}: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{q:?}: {p}");
        }
    }

    #[test]
    fn stats_and_risk_use_indexes() {
        let (_dir, conn) = db();
        let v = [Value::Integer(0)];
        let p = plan(
            &conn,
            "SELECT detector, severity, entity FROM anomalies INDEXED BY anomalies_detected_at
             WHERE detected_at >= ?1",
            &v,
        );
        assert!(
            p.contains("COVERING INDEX anomalies_detected_at (detected_at>?)"),
            "{p}"
        );
        let p = plan(
            &conn,
            "SELECT type, SUM(n) FROM event_counts_by_type WHERE hour >= ?1 GROUP BY type",
            &v,
        );
        assert!(p.contains("PRIMARY KEY"), "{p}");
        let p = plan(
            &conn,
            "SELECT severity, count(*) FROM anomalies WHERE entity = ?1 GROUP BY severity",
            &[Value::Text("u".into())],
        );
        assert!(p.contains("anomalies_entity_ts"), "{p}");
    }
}
