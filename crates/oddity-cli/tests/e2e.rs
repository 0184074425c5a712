//! End to end: the real binary, seed payloads over HTTP, anomalies read back through the API.

mod common;

use serde_json::{Value, json};

use common::{TestServer, client, get_json, wait_until_caught_up};

/// 2025-08-08T00:00:00Z.
const DAY: i64 = 1_754_611_200_000;
const NOON: i64 = DAY + 12 * 3_600_000;
const MIN: i64 = 60_000;

fn signal(user: i64, kind: &str, ts: i64, payload: Value) -> Value {
    json!({ "user_id": user, "type": kind, "timestamp": ts, "payload": payload })
}

/// Signals that trigger each of the seven seed-002 anomaly types once (or a few times), and
/// ordinary users who must stay quiet.
fn seed_signals() -> Vec<Value> {
    let mut s = Vec::new();
    // high_frequency_login: 12 logins in a minute from user 101.
    for i in 0..12 {
        s.push(signal(
            101,
            "login",
            NOON + i * 1000,
            json!({"success": true, "location": "US"}),
        ));
    }
    // repeated_login_failures: three failed logins in a row from user 102.
    for i in 0..3 {
        s.push(signal(
            102,
            "login",
            NOON + i * MIN,
            json!({"success": false, "location": "US"}),
        ));
    }
    // high_value_purchase.
    s.push(signal(
        103,
        "purchase",
        NOON,
        json!({"amount": 1500.0, "currency": "USD"}),
    ));
    // rapid_successive_purchases: five purchases within an hour.
    for i in 0..5 {
        s.push(signal(
            104,
            "purchase",
            NOON + i * 5 * MIN,
            json!({"amount": 20.25}),
        ));
    }
    // high_api_failure_rate: six failed API calls within a minute.
    for i in 0..6 {
        s.push(signal(
            105,
            "api_call",
            NOON + i * 5000,
            json!({"endpoint": "/api/users", "status_code": 500}),
        ));
    }
    // unusual_time_activity: a click at 03:15.
    s.push(signal(
        106,
        "click",
        DAY + 3 * 3_600_000 + 15 * MIN,
        json!({"page": "/home"}),
    ));
    // unusual_location_login: six logins from the US spread over hours, then one from ASIA.
    for i in 0..6 {
        s.push(signal(
            107,
            "login",
            DAY + (5 + i) * 3_600_000,
            json!({"success": true, "location": "US"}),
        ));
    }
    s.push(signal(
        107,
        "login",
        DAY + 20 * 3_600_000,
        json!({"success": true, "location": "ASIA"}),
    ));
    // Ordinary users.
    for user in 201..=210 {
        s.push(signal(
            user,
            "login",
            NOON,
            json!({"success": true, "location": "EU"}),
        ));
        s.push(signal(
            user,
            "click",
            NOON + MIN,
            json!({"page": "/products"}),
        ));
        s.push(signal(
            user,
            "purchase",
            NOON + 2 * MIN,
            json!({"amount": 49.99}),
        ));
        s.push(signal(
            user,
            "api_call",
            NOON + 3 * MIN,
            json!({"endpoint": "/api/orders", "status_code": 200}),
        ));
        s.push(signal(
            user,
            "file_access",
            NOON + 4 * MIN,
            json!({"action": "read"}),
        ));
    }
    s
}

#[tokio::test]
async fn seed_payloads_raise_the_seven_anomaly_types_and_ordinary_users_stay_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let http = client();

    // Half as one JSON array, half as NDJSON, in order.
    let signals = seed_signals();
    let (first, second) = signals.split_at(signals.len() / 2);
    let resp = http
        .post(server.url("/v1/events"))
        .json(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"accepted": first.len(), "rejected": []}));
    let ndjson: String = second.iter().map(|v| format!("{v}\n")).collect();
    let resp = http
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    wait_until_caught_up(&http, &server).await;

    let expected: [(&str, i64, usize, &str); 7] = [
        (
            "high_frequency_login",
            101,
            2,
            "User 101 attempted 11 logins in the last minute",
        ),
        (
            "repeated_login_failures",
            102,
            1,
            "User 102 has 3 recent login failures",
        ),
        (
            "high_value_purchase",
            103,
            1,
            "User 103 made a high-value purchase of $1500.00",
        ),
        (
            "rapid_successive_purchases",
            104,
            1,
            "User 104 made 5 purchases totaling $101.25 in the last hour",
        ),
        (
            "high_api_failure_rate",
            105,
            1,
            "User 105 has 6 API failures in the last minute",
        ),
        (
            "unusual_time_activity",
            106,
            1,
            "User 106 active during unusual hours (3AM)",
        ),
        (
            "unusual_location_login",
            107,
            1,
            "User 107 logged in from unusual location: ASIA",
        ),
    ];
    for (kind, user, count, description) in expected {
        let page = get_json(
            &http,
            &server.url(&format!("/anomalies?anomaly_type={kind}")),
        )
        .await;
        let items = page["anomalies"].as_array().unwrap();
        assert_eq!(items.len(), count, "{kind}: {page}");
        assert_eq!(page["pagination"]["total"], count);
        assert!(items.iter().all(|a| a["user_id"] == user), "{kind}: {page}");
        // Newest first: the last one to fire is the first listed; the earliest is described here.
        let earliest = items.last().unwrap();
        assert_eq!(earliest["description"], description, "{kind}");
        assert_eq!(earliest["original_signal_data"]["user_id"], user);
        assert!(earliest["detection_timestamp"].is_i64());
        let mine = get_json(&http, &server.url(&format!("/users/{user}/anomalies"))).await;
        assert_eq!(mine["pagination"]["total"], count, "{kind}: {mine}");
    }
    let severities = get_json(&http, &server.url("/anomalies?severity=high&size=100")).await;
    assert_eq!(severities["pagination"]["total"], 4, "{severities}");

    for user in 201..=210 {
        let mine = get_json(&http, &server.url(&format!("/users/{user}/anomalies"))).await;
        assert_eq!(
            mine["pagination"]["total"], 0,
            "ordinary user {user} got {mine}"
        );
    }
    let all = get_json(&http, &server.url("/v1/anomalies?size=1000")).await;
    assert_eq!(all["pagination"]["total"], 8);
    let native = &all["anomalies"][0];
    for key in [
        "id",
        "event_id",
        "entity",
        "detector",
        "kind",
        "severity",
        "score",
        "description",
        "explanation",
        "event",
    ] {
        assert!(
            !native[key].is_null(),
            "native anomaly lacks {key}: {native}"
        );
    }
    let score = native["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));

    // Queries, statistics and health.
    let signals_page = get_json(
        &http,
        &server.url("/signals?user_id=101&signal_type=login&size=5"),
    )
    .await;
    assert_eq!(signals_page["pagination"]["total"], 12);
    assert_eq!(signals_page["signals"].as_array().unwrap().len(), 5);
    assert_eq!(
        signals_page["signals"][0]["timestamp"],
        NOON + 11_000,
        "newest first"
    );
    let metrics = get_json(&http, &server.url("/metrics?hours=24")).await;
    assert_eq!(metrics["total_signals"], signals.len());
    assert_eq!(metrics["total_anomalies"], 8);
    assert_eq!(metrics["anomalies_by_type"]["high_frequency_login"], 2);
    assert_eq!(metrics["time_range"], "last_24_hours");
    let risk = get_json(&http, &server.url("/v1/entities/101/risk")).await;
    assert_eq!(risk["total_anomalies"], 2);
    assert_eq!(risk["risk_score"], 5.0, "(3·2 high + 2·2 recent) / 2");
    let health = get_json(&http, &server.url("/health")).await;
    assert_eq!(health["status"], "healthy");
    let ranged = get_json(
        &http,
        &server.url(&format!(
            "/v1/events?entity=101&from={}&to={}",
            NOON + 5000,
            NOON + 6000
        )),
    )
    .await;
    assert_eq!(ranged["pagination"]["total"], 2);

    let status = server.terminate();
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
}

#[tokio::test]
async fn seed_000_ingest_accepts_the_audit_payload_and_validates_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let http = client();
    let payload = json!({
        "id": "123452", "event_id": "52572", "role_id": "role123", "event_type": "CreateInstance",
        "event_timestamp": "1717970237", "affected_assets": ["asset1", "asset2"]
    });
    let resp = http
        .post(server.url("/ingest"))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"data": {"status": "success"}, "metadata": {"request_id": "123452"}})
    );
    // The ISO form of the seed's first example, with numbers where pydantic v1 coerced them.
    let iso = json!({"id": 123452, "event_id": "55555334343", "role_id": "role123", "event_type": "CreateInstance",
                     "event_timestamp": "2023-06-07T12:34:56Z", "affected_assets": null});
    assert_eq!(
        http.post(server.url("/ingest"))
            .json(&iso)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let bad = json!({"id": "12ab", "role_id": "r", "event_type": "X", "event_timestamp": "never"});
    let resp = http
        .post(server.url("/ingest"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    let locs: Vec<String> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"][1].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(locs, ["id", "event_id", "event_timestamp"], "{body}");
    assert_eq!(
        body["detail"][0]["msg"],
        "must be a number with 4-12 digits"
    );
    assert_eq!(body["detail"][1]["msg"], "field required");

    wait_until_caught_up(&http, &server).await;
    let events = get_json(&http, &server.url("/v1/events?entity=role123")).await;
    assert_eq!(events["pagination"]["total"], 2);
    let newest = &events["events"][0];
    assert_eq!(newest["type"], "CreateInstance");
    assert_eq!(newest["ts"], 1_717_970_237_000_i64);
    assert_eq!(
        newest["attrs"]["affected_assets"],
        json!(["asset1", "asset2"])
    );
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_message_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("small.toml");
    std::fs::write(
        &config,
        "[ingest]\nmax_body_bytes = \"4KiB\"\nmax_batch_events = 3\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start(&data, &["--config", config.to_str().unwrap()]);
    let http = client();
    let post = |body: String, ct: &'static str| {
        let http = http.clone();
        let url = server.url("/v1/events");
        async move {
            let resp = http
                .post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "malformed json",
            "{\"entity\": ".into(),
            "application/json",
            400,
            "invalid JSON",
        ),
        (
            "wrong type",
            r#"{"entity": "a", "type": 5.5}"#.into(),
            "application/json",
            400,
            "type: expected a string or an integer",
        ),
        (
            "not an object",
            "42".into(),
            "application/json",
            400,
            "invalid event",
        ),
        (
            "empty body",
            "".into(),
            "application/json",
            400,
            "empty body",
        ),
        (
            "oversized body",
            format!("[{}]", vec![r#"{"entity":"a","type":"t"}"#; 300].join(",")),
            "application/json",
            413,
            "ingest.max_body_bytes (4KiB)",
        ),
        (
            "too many events",
            "{\"entity\":\"a\",\"type\":\"t\"}\n".repeat(4),
            "application/x-ndjson",
            413,
            "ingest.max_batch_events (3)",
        ),
    ];
    for (name, body, ct, status, message) in cases {
        let (got, body) = post(body, ct).await;
        assert_eq!(got, status, "{name}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(message),
            "{name}: {body}"
        );
    }
    // A bad line does not cost the good ones.
    let (status, body) = post("{\"entity\":\"a\",\"type\":\"t\"}\nnope\n{\"entity\":\"b\",\"type\":\"t\",\"ts\":\"later\"}\n".into(), "application/x-ndjson").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["line"], 2);
    assert_eq!(body["rejected"][1]["line"], 3);
    assert!(
        body["rejected"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("ts:")
    );
    // Query parameters are checked too.
    let resp = http
        .get(server.url("/anomalies?severity=urgent"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let resp = http
        .get(server.url("/v1/events?size=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("`size`"), "{body}");
    // Still alive.
    let health = get_json(&http, &server.url("/v1/health")).await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn a_series_of_values_gets_the_default_streaming_detector() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let http = client();
    // Seed 003's producer shape: a sensor around 50 with noise, then one spike.
    let mut records = Vec::new();
    for i in 0..600i64 {
        let noise = ((i * 7919) % 13) as f64 - 6.0;
        let value = if i == 550 { 250.0 } else { 50.0 + noise };
        let ts = oddity_model::time::iso_naive(NOON + i * 60_000);
        records.push(json!({"source": "sensor_01", "metric": "cpu_usage", "value": value, "timestamp": ts, "is_anomaly": i == 550}));
    }
    let resp = http
        .post(server.url("/v1/events"))
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    wait_until_caught_up(&http, &server).await;
    let found = get_json(&http, &server.url("/v1/anomalies?detector=value_anomaly")).await;
    let items = found["anomalies"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["event"]["value"], 250.0);
    assert_eq!(items[0]["kind"], "streaming");
    assert_eq!(items[0]["entity"], "sensor_01");
    assert!(
        items[0]["explanation"]["expected"].is_object(),
        "{}",
        items[0]
    );
}
