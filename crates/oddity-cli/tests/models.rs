//! Batch-model detectors in the running pipeline: warm-up, fit, detection, stored versions, and a
//! restart that restores the model instead of refitting it.

// Test helpers outside #[test] functions: a failed expectation panics.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{Value, json};

use common::{TestServer, client, get_json, wait_until_caught_up};

const T0: i64 = 1_750_000_000_000;

const CONFIG: &str = r#"
[log]
partitions = 2

[[detectors]]
id = "host_outlier"
kind = "isolation_forest"
types = ["host_metrics"]
features = ["fields.cpu", "fields.mem"]
warm_up = 500
window = 2000
refit_every = "10m"
severity = { medium = 0.8, high = 0.9, critical = 0.97 }
description = "{entity} looks unlike the last {trained_rows} rows"
"#;

/// Ordinary host metrics: cpu follows a slow wave, mem follows cpu, a little noise; 40 hosts
/// (both partitions get some), one event per second.
fn ordinary(i: i64) -> Value {
    let noise = ((i * 7919) % 101) as f64 / 101.0;
    let cpu = 40.0 + 10.0 * (i as f64 * 0.05).sin() + 3.0 * noise;
    json!({
        "entity": format!("host-{}", i % 40),
        "type": "host_metrics",
        "ts": T0 + i * 1_000,
        "fields": {"cpu": cpu, "mem": cpu * 0.5 + 20.0 + noise},
    })
}

fn outlier(i: i64, entity: &str) -> Value {
    json!({
        "entity": entity,
        "type": "host_metrics",
        "ts": T0 + i * 1_000,
        "fields": {"cpu": 97.0, "mem": 3.0},
    })
}

async fn post(http: &reqwest::Client, server: &TestServer, events: &[Value]) {
    let resp = http
        .post(server.url("/v1/events"))
        .json(events)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
}

async fn anomalies(http: &reqwest::Client, server: &TestServer) -> Vec<Value> {
    let found = get_json(
        http,
        &server.url("/v1/anomalies?detector=host_outlier&size=1000"),
    )
    .await;
    found["anomalies"].as_array().unwrap().clone()
}

async fn models(http: &reqwest::Client, server: &TestServer) -> Vec<(String, u64)> {
    let listed = get_json(http, &server.url("/v1/detectors/host_outlier/models")).await;
    listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn isolation_forest_fits_detects_stores_versions_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("models.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = TestServer::start(&data, &args);
    let http = client();

    // The configured detectors; before any fit, an empty list of models.
    let listed = get_json(&http, &server.url("/v1/detectors")).await;
    assert_eq!(
        listed["detectors"],
        json!([{"id": "host_outlier", "kind": "isolation_forest", "key": "type",
                "types": ["host_metrics"], "features": ["fields.cpu", "fields.mem"]}])
    );
    assert!(models(&http, &server).await.is_empty());
    for (path, status, message) in [
        (
            "/v1/detectors/nope/models",
            404,
            "unknown detector `nope` (configured: host_outlier)",
        ),
        (
            "/v1/detectors/host_outlier/models/latest",
            404,
            "still in its warm-up",
        ),
    ] {
        let resp = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), status, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(message),
            "{path}: {body}"
        );
    }

    // 3,000 ordinary rows (about 1,500 per partition: a fit after 500, refits every 10 minutes
    // of event time and 500 new rows), then one outlier.
    let events: Vec<Value> = (0..3_000).map(ordinary).collect();
    for chunk in events.chunks(1_000) {
        post(&http, &server, chunk).await;
    }
    post(&http, &server, &[outlier(3_000, "host-7")]).await;
    wait_until_caught_up(&http, &server).await;

    let found = anomalies(&http, &server).await;
    let flagged: Vec<&Value> = found
        .iter()
        .filter(|a| a["event"]["fields"]["cpu"] == 97.0)
        .collect();
    assert_eq!(flagged.len(), 1, "the outlier is flagged once: {found:?}");
    let a = flagged[0];
    assert_eq!(a["kind"], "isolation_forest");
    assert!(a["score"].as_f64().unwrap() > 0.8, "{a}");
    let details = &a["explanation"]["details"];
    assert!(details["model_version"].as_u64().unwrap() >= 2, "{a}");
    assert_eq!(
        details["outside_training_range"],
        json!(["fields.cpu", "fields.mem"])
    );
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .starts_with("host-7 looks unlike the last "),
        "{a}"
    );
    // Threshold 0.8 over ~1,500 training rows per key: a handful of ordinary rows at most.
    assert!(
        found.len() <= 1 + 15,
        "{} ordinary rows flagged",
        found.len() - 1
    );

    // One key per partition (per type), several versions each.
    let before = models(&http, &server).await;
    let keys: std::collections::BTreeSet<&str> = before.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["[0,\"host_metrics\"]", "[1,\"host_metrics\"]"].into(),
        "{before:?}"
    );
    assert!(before.iter().any(|(_, v)| *v >= 2), "{before:?}");

    // One version, with the model itself.
    let (key, version) = before.last().unwrap().clone();
    let url = server.url(&format!(
        "/v1/detectors/host_outlier/models/{version}?key={}",
        urlencode(&key)
    ));
    let model = get_json(&http, &url).await;
    assert_eq!(model["version"], version);
    assert_eq!(
        model["model"]["features"],
        json!(["fields.cpu", "fields.mem"])
    );
    assert_eq!(model["model"]["members"][0]["name"], "isolation_forest");
    let resp = http
        .get(server.url("/v1/detectors/host_outlier/models/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "two keys: the key is required");
    let resp = http
        .get(server.url("/v1/detectors/host_outlier/models/v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Restart: the state names its model version, the model comes back from the store, and
    // nothing is refitted (no new version) until a refit is due.
    assert!(server.terminate().success());
    let server = TestServer::start(&data, &args);
    wait_until_caught_up(&http, &server).await;
    post(&http, &server, &[outlier(3_001, "host-8")]).await;
    wait_until_caught_up(&http, &server).await;
    assert_eq!(models(&http, &server).await, before, "no refit at restart");
    let found = anomalies(&http, &server).await;
    assert!(
        found.iter().any(|a| a["entity"] == "host-8"
            && a["event"]["fields"]["cpu"] == 97.0
            && a["explanation"]["details"]["model_version"]
                .as_u64()
                .unwrap()
                >= 2),
        "the restored model flags the next outlier: {found:?}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
