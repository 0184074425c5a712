//! Crash safety: `kill -9` while acknowledged batches stream in; after a restart on the same data
//! directory every acknowledged event is stored exactly once and no anomaly is stored twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use common::{TestServer, client, get_json, wait_until_caught_up};

const BATCH: u64 = 200;

/// Batch `b`: events with sequence numbers `b*BATCH..`, every 10th a high-value purchase.
fn batch(b: u64) -> String {
    (b * BATCH..(b + 1) * BATCH)
        .map(|seq| {
            let (kind, amount) = if seq % 10 == 0 { ("purchase", 5000.0) } else { ("click", 1.0) };
            let event = json!({ "user_id": seq % 97, "type": kind, "timestamp": 1_754_654_400_000_i64 + seq as i64,
                                "payload": { "seq": seq, "amount": amount } });
            format!("{event}\n")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let url = server.url("/v1/events");
    let stop = Arc::new(AtomicBool::new(false));
    // Two concurrent writers, each recording which of its batches were acknowledged.
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let (url, stop) = (url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let http = client();
            let mut acked = Vec::new();
            let mut b = w;
            while !stop.load(Ordering::Relaxed) {
                let sent = http
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(batch(b))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status() == 202 => acked.push(b),
                    _ => break,
                }
                b += 2;
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = BTreeSet::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() >= 4,
        "too few acknowledged batches to test anything: {}",
        acked.len()
    );

    let server = TestServer::start(dir.path(), &[]);
    let http = client();
    wait_until_caught_up(&http, &server).await;

    // Every stored event, by sequence number.
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let mut page = 1;
    loop {
        let body = get_json(
            &http,
            &server.url(&format!("/v1/events?size=1000&page={page}")),
        )
        .await;
        let events = body["events"].as_array().unwrap();
        for e in events {
            *seen.entry(e["attrs"]["seq"].as_u64().unwrap()).or_default() += 1;
        }
        if body["pagination"]["has_next"] != true {
            break;
        }
        page += 1;
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "events stored twice: {duplicated:?}");
    for b in &acked {
        for seq in b * BATCH..(b + 1) * BATCH {
            assert!(
                seen.contains_key(&seq),
                "acknowledged event {seq} (batch {b}) was lost"
            );
        }
    }

    // One anomaly per stored purchase, never two for the same event.
    let purchases = seen.keys().filter(|s| **s % 10 == 0).count();
    let mut by_event: BTreeMap<u64, u32> = BTreeMap::new();
    let mut page = 1;
    loop {
        let body = get_json(
            &http,
            &server.url(&format!(
                "/v1/anomalies?detector=high_value_purchase&size=1000&page={page}"
            )),
        )
        .await;
        for a in body["anomalies"].as_array().unwrap() {
            *by_event.entry(a["event_id"].as_u64().unwrap()).or_default() += 1;
        }
        if body["pagination"]["has_next"] != true {
            break;
        }
        page += 1;
    }
    assert!(
        by_event.values().all(|n| *n == 1),
        "an anomaly was stored twice"
    );
    assert_eq!(by_event.len(), purchases, "one anomaly per stored purchase");
    let stats: Value = get_json(&http, &server.url("/v1/stats")).await;
    assert_eq!(stats["lag"], 0);
}
