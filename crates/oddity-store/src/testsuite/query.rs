//! Cases about the read side: filters, pages, order, statistics, risk, retention, health.

use oddity_model::{Anomaly, Event, Severity};

use super::{HOUR, MINUTE, T0, anomaly, batch, event, must_commit, newest_first, tally};
use crate::{AnomalyQuery, EventQuery, Store};

const ENTITIES: [&str; 3] = ["a", "b", "c"];
const TYPES: [&str; 2] = ["login", "click"];

/// 60 events over two partitions, with repeated timestamps; returned in commit order.
async fn seed_events<S: Store>(store: &S) -> Vec<Event> {
    let mut all = Vec::new();
    for partition in 0..2u32 {
        let events: Vec<Event> = (0..30u64)
            .map(|o| {
                let i = o as usize * 2 + partition as usize;
                let ts = T0 + ((i * 7) % 20) as i64 * MINUTE;
                event(partition, o, ENTITIES[i % 3], TYPES[(i / 3) % 2], ts)
            })
            .collect();
        must_commit(store, batch(partition, 0, events.clone(), Vec::new())).await;
        all.extend(events);
    }
    all
}

/// Every filter of `events`, alone and combined, against a brute-force reference.
pub async fn event_filters_and_combinations<S: Store>(store: &S) {
    let all = seed_events(store).await;
    for entity in [None, Some("a"), Some("zz")] {
        for event_type in [None, Some("login")] {
            for from_ts in [None, Some(T0 + 5 * MINUTE)] {
                for to_ts in [None, Some(T0 + 12 * MINUTE)] {
                    let q = EventQuery {
                        entity: entity.map(str::to_owned),
                        event_type: event_type.map(str::to_owned),
                        from_ts,
                        to_ts,
                        page: 1,
                        size: 1000,
                    };
                    let mut want: Vec<Event> = all
                        .iter()
                        .filter(|e| entity.is_none_or(|x| e.entity == x))
                        .filter(|e| event_type.is_none_or(|x| e.event_type == x))
                        .filter(|e| from_ts.is_none_or(|x| e.ts >= x))
                        .filter(|e| to_ts.is_none_or(|x| e.ts <= x))
                        .cloned()
                        .collect();
                    newest_first(&mut want);
                    let page = store.events(&q).await.unwrap();
                    assert_eq!(page.total, want.len() as u64, "{q:?}");
                    assert_eq!(page.items, want, "{q:?}");
                }
            }
        }
    }
}

/// Every filter of `anomalies`, alone and combined, against a brute-force reference.
pub async fn anomaly_filters_and_combinations<S: Store>(store: &S) {
    let events = seed_events(store).await;
    let mut raised: Vec<Anomaly> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        for (d, detector) in ["d1", "d2"].into_iter().enumerate() {
            if (i + d) % 3 != 0 {
                raised.push(anomaly(
                    e,
                    detector,
                    Severity::ALL[(i + d) % 4],
                    T0 + i as i64,
                ));
            }
        }
    }
    // Anomalies travel with a later, empty batch of partition 5.
    let mut b = batch(5, 0, Vec::new(), raised.clone());
    b.to_offset = 1;
    must_commit(store, b).await;

    for entity in [None, Some("a")] {
        for event_type in [None, Some("login")] {
            for detector in [None, Some("d1")] {
                for severity in [None, Some(Severity::High)] {
                    for (from_ts, to_ts) in [
                        (None, None),
                        (Some(T0 + 5 * MINUTE), None),
                        (None, Some(T0 + 12 * MINUTE)),
                    ] {
                        let q = AnomalyQuery {
                            entity: entity.map(str::to_owned),
                            event_type: event_type.map(str::to_owned),
                            detector: detector.map(str::to_owned),
                            severity,
                            from_ts,
                            to_ts,
                            page: 1,
                            size: 1000,
                        };
                        let mut want: Vec<(u64, String)> = raised
                            .iter()
                            .filter(|a| entity.is_none_or(|x| a.entity == x))
                            .filter(|a| event_type.is_none_or(|x| a.event_type == x))
                            .filter(|a| detector.is_none_or(|x| a.detector == x))
                            .filter(|a| severity.is_none_or(|x| a.severity == x))
                            .filter(|a| from_ts.is_none_or(|x| a.ts >= x))
                            .filter(|a| to_ts.is_none_or(|x| a.ts <= x))
                            .map(|a| (a.event_id.0, a.detector.clone()))
                            .collect();
                        let page = store.anomalies(&q).await.unwrap();
                        assert_eq!(page.total, want.len() as u64, "{q:?}");
                        for pair in page.items.windows(2) {
                            let (x, y) = (&pair[0], &pair[1]);
                            assert!((x.anomaly.ts, x.id) > (y.anomaly.ts, y.id), "order {q:?}");
                        }
                        let mut got: Vec<(u64, String)> = page
                            .items
                            .iter()
                            .map(|s| (s.anomaly.event_id.0, s.anomaly.detector.clone()))
                            .collect();
                        got.sort();
                        want.sort();
                        assert_eq!(got, want, "{q:?}");
                    }
                }
            }
        }
    }
}

/// Pages split the ordered result; `total` counts every match; past the end is empty.
pub async fn pagination_pages_and_totals<S: Store>(store: &S) {
    let events: Vec<Event> = (0..25u64)
        .map(|o| event(0, o, "u1", "click", T0 + o as i64 * 1000))
        .collect();
    must_commit(store, batch(0, 0, events.clone(), Vec::new())).await;
    let mut want = events;
    newest_first(&mut want);

    let mut concatenated = Vec::new();
    for page in 1..=3 {
        let p = store
            .events(&EventQuery {
                page,
                size: 10,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(p.total, 25);
        assert_eq!(p.items.len(), if page < 3 { 10 } else { 5 });
        concatenated.extend(p.items);
    }
    assert_eq!(concatenated, want);
    let past = store
        .events(&EventQuery {
            page: 4,
            size: 10,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.total, 25);
    let far = store
        .events(&EventQuery {
            page: u32::MAX,
            size: 1000,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(far.items.is_empty());
    let last = store
        .events(&EventQuery {
            page: 25,
            size: 1,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(last.items, vec![want[24].clone()]);
    let q = EventQuery {
        entity: Some("u1".into()),
        page: 2,
        size: 1,
        ..EventQuery::default()
    };
    assert_eq!(store.events(&q).await.unwrap().items, vec![want[1].clone()]);

    let anomalies: Vec<Anomaly> = want
        .iter()
        .map(|e| anomaly(e, "d", Severity::Low, T0))
        .collect();
    let mut b = batch(0, 25, Vec::new(), anomalies);
    b.to_offset = 26;
    must_commit(store, b).await;
    let p = store
        .anomalies(&AnomalyQuery {
            page: 3,
            size: 12,
            ..AnomalyQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(p.total, 25);
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.items[0].anomaly.event_id, want[24].id);
}

/// Equal timestamps are ordered by id, descending, whatever the partition and commit order.
pub async fn ordering_breaks_ts_ties_by_id<S: Store>(store: &S) {
    let p1 = vec![
        event(1, 0, "u1", "click", T0),
        event(1, 1, "u1", "click", T0 - 1),
    ];
    let p0 = vec![
        event(0, 0, "u2", "click", T0),
        event(0, 1, "u2", "click", T0),
        event(0, 2, "u2", "click", T0 + 1),
    ];
    must_commit(store, batch(1, 0, p1.clone(), Vec::new())).await;
    must_commit(store, batch(0, 0, p0.clone(), Vec::new())).await;
    let ids: Vec<u64> = store
        .events(&EventQuery::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.id.0)
        .collect();
    let want = [p0[2].id, p0[1].id, p1[0].id, p0[0].id, p1[1].id];
    assert_eq!(ids, want.map(|i| i.0).to_vec());
}

/// Late arrivals (old `ts` in a recent batch) and overlapping batches are paged in `ts` order,
/// page after page, with and without filters.
pub async fn ordering_across_batches_and_late_arrivals<S: Store>(store: &S) {
    let mut all = Vec::new();
    let mut offsets = [0u64; 2];
    // 12 batches alternating partitions; batch k holds ts around 10·k, plus one late event.
    for k in 0..12i64 {
        let p = (k % 2) as u32;
        let mut rows: Vec<(String, &str, i64)> = (0..6)
            .map(|i| {
                (
                    format!("u{}", (k + i) % 3),
                    TYPES[(i % 2) as usize],
                    T0 + 10 * k + i,
                )
            })
            .collect();
        rows.push(("u0".into(), "login", T0 + 60 - 7 * k)); // late or early, crossing other batches
        let events: Vec<Event> = rows
            .iter()
            .enumerate()
            .map(|(i, (e, t, ts))| event(p, offsets[p as usize] + i as u64, e, t, *ts))
            .collect();
        must_commit(
            store,
            batch(p, offsets[p as usize], events.clone(), Vec::new()),
        )
        .await;
        offsets[p as usize] += events.len() as u64;
        all.extend(events);
    }
    let filters = [
        (None, None),
        (Some("u0"), None),
        (None, Some("login")),
        (Some("u0"), Some("login")),
    ];
    for (entity, event_type) in filters {
        for (from_ts, to_ts) in [(None, None), (Some(T0 + 15), Some(T0 + 75))] {
            let mut want: Vec<Event> = all
                .iter()
                .filter(|e| entity.is_none_or(|x| e.entity == x))
                .filter(|e| event_type.is_none_or(|x| e.event_type == x))
                .filter(|e| from_ts.is_none_or(|x| e.ts >= x) && to_ts.is_none_or(|x| e.ts <= x))
                .cloned()
                .collect();
            newest_first(&mut want);
            for size in [1u32, 3, 7] {
                let mut got = Vec::new();
                for page in 1.. {
                    let q = EventQuery {
                        entity: entity.map(str::to_owned),
                        event_type: event_type.map(str::to_owned),
                        from_ts,
                        to_ts,
                        page,
                        size,
                    };
                    let p = store.events(&q).await.unwrap();
                    assert_eq!(p.total, want.len() as u64, "{q:?}");
                    if p.items.is_empty() {
                        break;
                    }
                    got.extend(p.items);
                }
                assert_eq!(
                    got, want,
                    "{entity:?} {event_type:?} {from_ts:?} size {size}"
                );
            }
        }
    }
}

/// Counts since a time (events by arrival hour, anomalies by detection time) and top-10 lists.
pub async fn stats_counts_and_top_ten<S: Store>(store: &S) {
    // Old events (two hours before T0) must not be counted from T0 on.
    let old: Vec<Event> = (0..5u64)
        .map(|o| {
            let mut e = event(0, o, "e00", "login", T0 - 2 * HOUR);
            e.ingested_at = T0 - 2 * HOUR + o as i64;
            e
        })
        .collect();
    must_commit(store, batch(0, 0, old, Vec::new())).await;
    let per_entity = [5usize, 9, 9, 3, 1, 1, 7, 2, 2, 2, 2, 2];
    let mut events = Vec::new();
    for (i, n) in per_entity.iter().enumerate() {
        for _ in 0..*n {
            let o = 5 + events.len() as u64;
            events.push(event(
                0,
                o,
                &format!("e{i:02}"),
                TYPES[(o % 2) as usize],
                T0,
            ));
        }
    }
    must_commit(store, batch(0, 5, events.clone(), Vec::new())).await;
    let mut raised = Vec::new();
    for (k, e) in events.iter().enumerate() {
        let detected_at = if k % 5 == 0 { T0 - 1 } else { T0 + k as i64 };
        raised.push(anomaly(
            e,
            if k % 2 == 0 { "d_even" } else { "d_odd" },
            Severity::ALL[k % 4],
            detected_at,
        ));
    }
    let mut b = batch(0, 5 + events.len() as u64, Vec::new(), raised.clone());
    b.to_offset += 1;
    must_commit(store, b).await;

    let stats = store.stats(T0).await.unwrap();
    assert_eq!(stats.since_ms, T0);
    assert_eq!(stats.total_events, events.len() as u64);
    assert_eq!(
        stats.events_by_type,
        tally(events.iter().map(|e| e.event_type.as_str()))
    );
    let top: Vec<(String, u64)> = [("e01", 9), ("e02", 9), ("e06", 7), ("e00", 5), ("e03", 3)]
        .into_iter()
        .chain(["e07", "e08", "e09", "e10", "e11"].map(|e| (e, 2)))
        .map(|(e, n)| (e.to_owned(), n))
        .collect();
    assert_eq!(stats.top_entities_by_events, top);

    let recent: Vec<&Anomaly> = raised.iter().filter(|a| a.detected_at >= T0).collect();
    assert_eq!(stats.total_anomalies, recent.len() as u64);
    assert_eq!(
        stats.anomalies_by_detector,
        tally(recent.iter().map(|a| a.detector.as_str()))
    );
    assert_eq!(
        stats.anomalies_by_severity,
        tally(recent.iter().map(|a| a.severity.as_str()))
    );
    let mut by_entity: Vec<(String, u64)> = tally(recent.iter().map(|a| a.entity.as_str()))
        .into_iter()
        .collect();
    by_entity.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_entity.truncate(10);
    assert_eq!(stats.top_entities_by_anomalies, by_entity);

    let everything = store.stats(0).await.unwrap();
    assert_eq!(everything.total_events, events.len() as u64 + 5);
    assert_eq!(everything.total_anomalies, raised.len() as u64);
    let nothing = store.stats(T0 + 10 * HOUR).await.unwrap();
    assert_eq!((nothing.total_events, nothing.total_anomalies), (0, 0));
    assert!(nothing.top_entities_by_events.is_empty() && nothing.events_by_type.is_empty());
}

/// Counts by severity, recent count and the seed's risk score.
pub async fn entity_risk_and_score<S: Store>(store: &S) {
    let e = event(0, 0, "u1", "login", T0);
    let other = event(0, 1, "u2", "login", T0);
    use Severity::*;
    let plan = [
        (Critical, T0),
        (Critical, T0 - 5),
        (High, T0 + 1),
        (Medium, T0 - 9),
        (Medium, T0 - 9),
        (Medium, T0 + 2),
        (Low, T0 - 100),
    ];
    let mut raised: Vec<Anomaly> = plan
        .iter()
        .enumerate()
        .map(|(i, (s, at))| anomaly(&e, &format!("d{i}"), *s, *at))
        .collect();
    raised.push(anomaly(&other, "d0", High, T0));
    must_commit(store, batch(0, 0, vec![e, other], raised)).await;

    let risk = store.entity_risk("u1", T0).await.unwrap();
    assert_eq!(risk.entity, "u1");
    assert_eq!(
        (
            risk.total_anomalies,
            risk.critical,
            risk.high,
            risk.medium,
            risk.low
        ),
        (7, 2, 1, 3, 1)
    );
    assert_eq!(risk.recent_anomalies, 3);
    assert!(
        (risk.risk_score() - 24.0 / 7.0).abs() < 1e-12,
        "{}",
        risk.risk_score()
    );

    let nobody = store.entity_risk("nobody", T0).await.unwrap();
    assert_eq!(
        (
            nobody.entity.as_str(),
            nobody.total_anomalies,
            nobody.recent_anomalies
        ),
        ("nobody", 0, 0)
    );
    assert_eq!(nobody.risk_score(), 0.0);
}

/// Retention deletes events by `ingested_at` and anomalies by `detected_at`, across batches and
/// partitions; event statistics forget hours that ended before the cutoff.
///
/// A backend may purge events by whole commit batches: old events of a batch that straddles the
/// cutoff may be kept (until its newest event is due), never the other way round.
pub async fn purge_deletes_by_arrival_time<S: Store>(store: &S) {
    let cutoff = T0;
    let (mut must_go, mut may_stay, mut must_stay) = (Vec::new(), Vec::new(), Vec::new());
    for partition in 0..3u32 {
        for chunk in 0..4u64 {
            let events: Vec<Event> = (0..25u64)
                .map(|i| {
                    let o = chunk * 25 + i;
                    let mut e = event(partition, o, &format!("u{}", o % 7), "click", T0);
                    // Batches 0-1 are old, 2 straddles the cutoff, 3 is new.
                    e.ingested_at = match chunk {
                        0 | 1 => cutoff - 3 * HOUR + o as i64,
                        2 if i < 10 => cutoff - 1,
                        _ => cutoff + o as i64,
                    };
                    e
                })
                .collect();
            for e in &events {
                match (chunk, e.ingested_at < cutoff) {
                    (0 | 1, _) => must_go.push(e.id),
                    (_, true) => may_stay.push(e.id),
                    (_, false) => must_stay.push(e.clone()),
                }
            }
            must_commit(store, batch(partition, chunk * 25, events, Vec::new())).await;
        }
    }
    let trigger = event(0, 0, "u0", "click", T0);
    let anomalies = vec![
        anomaly(&trigger, "old", Severity::Low, cutoff - 1),
        anomaly(&trigger, "older", Severity::Low, cutoff - 10 * HOUR),
        anomaly(&trigger, "new", Severity::High, cutoff),
    ];
    let mut b = batch(9, 0, Vec::new(), anomalies);
    b.to_offset = 1;
    must_commit(store, b).await;

    let report = store.purge(cutoff).await.unwrap();
    assert_eq!(report.anomalies, 2);
    let page = store
        .events(&EventQuery {
            size: 1000,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, page.items.len() as u64);
    assert_eq!(
        report.events + page.total,
        (must_go.len() + may_stay.len() + must_stay.len()) as u64
    );
    assert!(
        page.items.iter().all(|e| !must_go.contains(&e.id)),
        "an old batch survived"
    );
    newest_first(&mut must_stay);
    let survivors: Vec<Event> = page
        .items
        .iter()
        .filter(|e| !may_stay.contains(&e.id))
        .cloned()
        .collect();
    assert_eq!(survivors, must_stay);
    let left = store.anomalies(&AnomalyQuery::default()).await.unwrap();
    assert_eq!(
        left.items
            .iter()
            .map(|a| a.anomaly.detector.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    // Hours wholly before the cutoff are gone from the statistics.
    let stats = store.stats(cutoff - 5 * HOUR).await.unwrap();
    assert_eq!(stats.total_events, must_stay.len() as u64);
    // Nothing is due any more once the straddling batches are gone too.
    store.purge(cutoff + HOUR).await.unwrap();
    assert_eq!(
        store.purge(cutoff + HOUR).await.unwrap(),
        Default::default()
    );
    assert_eq!(store.events(&EventQuery::default()).await.unwrap().total, 0);
    // Committing continues normally after a purge.
    let next = vec![event(0, 100, "u1", "click", T0)];
    must_commit(store, batch(0, 100, next.clone(), Vec::new())).await;
    assert_eq!(
        store.events(&EventQuery::default()).await.unwrap().items,
        next
    );
}

/// A healthy store answers `ping`.
pub async fn ping_answers<S: Store>(store: &S) {
    store.ping().await.unwrap();
}
