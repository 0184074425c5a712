//! End to end: seed 001's per-series model API and `/v1/series` against the real binary.

mod common;

use serde_json::{Value, json};

use common::{TestServer, client, get_json};

/// COMPAT's demo training set.
fn demo() -> Value {
    json!({"data": [
        {"timestamp": 1_693_459_200, "value": 10.0},
        {"timestamp": 1_693_459_260, "value": 10.5},
        {"timestamp": 1_693_459_320, "value": 11.0},
    ]})
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    // Sent without Content-Type, like the seeds' curl examples: the body is JSON regardless.
    let resp = http
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .expect("POST should reach the server");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body should be readable");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("POST {url}: not JSON: {text}"));
    (status, json)
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = http
        .get(url)
        .send()
        .await
        .expect("GET should reach the server");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        ct,
        resp.bytes()
            .await
            .expect("body should be readable")
            .to_vec(),
    )
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Width and height from a PNG's IHDR, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "png too short: {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "png signature");
    assert_eq!(&png[12..16], b"IHDR");
    let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    (w, h)
}

#[tokio::test]
async fn seed_001_demo_errors_plot_and_healthcheck() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let http = client();

    // Healthcheck before anything: zeros, exact shape and key order.
    let health = get_json(&http, &server.url("/healthcheck")).await;
    assert_eq!(
        keys(&health),
        [
            "series_trained",
            "inference_latency_ms",
            "training_latency_ms",
            "throughput",
            "model_usage",
            "system_metrics"
        ]
    );
    assert_eq!(health["series_trained"], 0);
    assert_eq!(health["inference_latency_ms"], json!({"avg": 0, "p95": 0}));
    assert_eq!(
        health["training_latency_ms"].to_string(),
        r#"{"avg":0,"p95":0}"#
    );
    assert_eq!(
        health["throughput"],
        json!({"trainer": {"avg_per_minute": 0}, "predictor": {"avg_per_minute": 0}})
    );
    assert_eq!(health["model_usage"], json!({}));

    // The demo: fit → v1; 10.5 is normal, 22.5 anomalous.
    let (status, fit) = post(&http, &server.url("/fit/sensor_01"), &demo()).await;
    assert_eq!(status, 200, "{fit}");
    assert_eq!(keys(&fit)[..3], ["series_id", "version", "points_used"]);
    assert_eq!(
        (&fit["series_id"], &fit["version"], &fit["points_used"]),
        (&json!("sensor_01"), &json!("v1"), &json!(3))
    );
    let high = fit["summary"]["expected_high"].as_f64().unwrap();
    assert!((high - 11.7247).abs() < 1e-3, "{fit}");

    let (status, p) = post(
        &http,
        &server.url("/predict/sensor_01"),
        &json!({"timestamp": 1_693_459_380, "value": 10.5}),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(keys(&p)[..3], ["series_id", "version", "is_anomaly"]);
    assert_eq!(
        (&p["series_id"], &p["version"], &p["is_anomaly"]),
        (&json!("sensor_01"), &json!("v1"), &json!(false))
    );
    assert_eq!(
        (&p["anomaly"], &p["model_version"]),
        (&json!(false), &json!("v1"))
    );
    let (status, p) = post(
        &http,
        &server.url("/predict/sensor_01"),
        &json!({"timestamp": "1693459440", "value": 22.5}),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["is_anomaly"], true);
    assert!(p["score"].as_f64().unwrap() > 0.9, "{p}");
    assert_eq!(keys(&p["expected_range"]), ["low", "high"]);
    // Two-sided: a low outlier is anomalous too (seed 001 would say false).
    let (_, p) = post(
        &http,
        &server.url("/predict/sensor_01"),
        &json!({"timestamp": 1, "value": 0.0}),
    )
    .await;
    assert_eq!(p["is_anomaly"], true);

    // Refit → v2, which /predict now uses; an id with `_v` and a prefix id get their own v1.
    let (_, fit) = post(&http, &server.url("/fit/sensor_01"), &demo()).await;
    assert_eq!(fit["version"], "v2");
    let (_, p) = post(
        &http,
        &server.url("/predict/sensor_01"),
        &json!({"timestamp": 1, "value": 10.5}),
    )
    .await;
    assert_eq!(p["version"], "v2");
    let (_, fit) = post(&http, &server.url("/fit/sensor_0"), &demo()).await;
    assert_eq!(fit["version"], "v1");
    let (_, fit) = post(&http, &server.url("/fit/temp_v2"), &demo()).await;
    assert_eq!(fit["version"], "v1");
    let (_, fit) = post(&http, &server.url("/fit/temp_v2"), &demo()).await;
    assert_eq!(fit["version"], "v2");

    // 422: timestamps that are not integers, missing fields.
    for bad in [
        json!({"data": [{"timestamp": "now", "value": 1.0}, {"timestamp": 2, "value": 2.0}, {"timestamp": 3, "value": 3.0}]}),
        json!({"data": [{"timestamp": 1.5, "value": 1.0}, {"timestamp": 2, "value": 2.0}, {"timestamp": 3, "value": 3.0}]}),
        json!({"data": [{"value": 1.0}]}),
        json!({}),
    ] {
        let (status, body) = post(&http, &server.url("/fit/sensor_01"), &bad).await;
        assert_eq!(status, 422, "{bad} -> {body}");
        let item = &body["detail"][0];
        assert_eq!(keys(item), ["type", "loc", "msg", "input"], "{body}");
        assert_eq!(item["loc"][0], "body");
    }
    let (status, body) = post(
        &http,
        &server.url("/fit/sensor_01"),
        &json!({"data": [{"timestamp": "now", "value": 1.0}]}),
    )
    .await;
    assert_eq!(
        (status, &body["detail"][0]["loc"]),
        (422, &json!(["body", "data", 0, "timestamp"]))
    );
    let (status, body) = post(
        &http,
        &server.url("/predict/sensor_01"),
        &json!({"value": 1.0}),
    )
    .await;
    assert_eq!(
        (status, &body["detail"][0]["type"]),
        (422, &json!("missing"))
    );
    let resp = http
        .post(server.url("/fit/sensor_01"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    // 400: too few, constant, empty.
    for bad in [
        json!({"data": [{"timestamp": 1, "value": 1.0}, {"timestamp": 2, "value": 2.0}]}),
        json!({"data": [{"timestamp": 1, "value": 5.0}, {"timestamp": 2, "value": 5.0}, {"timestamp": 3, "value": 5.0}]}),
        json!({"data": []}),
    ] {
        let (status, body) = post(&http, &server.url("/fit/sensor_01"), &bad).await;
        assert_eq!(
            (status, body),
            (400, json!({"detail": "Insufficient or constant data"}))
        );
    }

    // 404s.
    let (status, body) = post(
        &http,
        &server.url("/predict/unknown"),
        &json!({"timestamp": 1, "value": 1.0}),
    )
    .await;
    assert_eq!((status, body), (404, json!({"detail": "Model not found"})));
    let no_data = json!({"detail": "No training data found for given series_id and version."});
    for query in [
        "series_id=sensor_01&version=v9",
        "series_id=unknown&version=v1",
        "series_id=sensor_01&version=latest",
    ] {
        let (status, _, body) = get(&http, &server.url(&format!("/plot?{query}"))).await;
        assert_eq!(status, 404, "{query}");
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), no_data);
    }
    // 422: a missing plot parameter.
    let (status, _, body) = get(&http, &server.url("/plot?series_id=sensor_01")).await;
    assert_eq!(status, 422);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["query", "version"]));

    // The plot: an 800×400 PNG.
    let (status, ct, png) = get(&http, &server.url("/plot?series_id=sensor_01&version=v1")).await;
    assert_eq!((status, ct.as_deref()), (200, Some("image/png")));
    assert_eq!(png_size(&png), (800, 400));

    // Healthcheck after the traffic.
    let health = get_json(&http, &server.url("/healthcheck")).await;
    assert_eq!(
        keys(&health),
        [
            "series_trained",
            "inference_latency_ms",
            "training_latency_ms",
            "throughput",
            "model_usage",
            "system_metrics"
        ]
    );
    assert_eq!(health["series_trained"], 3);
    assert_eq!(health["model_usage"], json!({"sensor_01": "4"}));
    assert_eq!(keys(&health["inference_latency_ms"]), ["avg", "p95"]);
    assert!(health["inference_latency_ms"]["avg"].as_f64().unwrap() > 0.0);
    assert_eq!(
        health["inference_latency_ms"]["p95"], 0,
        "fewer than 20 samples"
    );
    assert!(
        health["throughput"]["predictor"]["avg_per_minute"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    assert!(
        health["throughput"]["trainer"]["avg_per_minute"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    for service in ["trainer", "predictor"] {
        let m = &health["system_metrics"][service];
        assert_eq!(keys(m), ["cpu_percent", "memory_percent", "load_avg"]);
        assert_eq!(m["load_avg"].as_array().unwrap().len(), 3);
    }
    // p95 appears from 20 predictions on.
    for i in 0..20 {
        let (status, _) = post(
            &http,
            &server.url("/predict/sensor_0"),
            &json!({"timestamp": i, "value": 10.0}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let health = get_json(&http, &server.url("/healthcheck")).await;
    assert!(
        health["inference_latency_ms"]["p95"].as_f64().unwrap() > 0.0,
        "{health}"
    );
    assert_eq!(
        health["model_usage"],
        json!({"sensor_0": "20", "sensor_01": "4"})
    );

    // Still up after all the bad input.
    assert!(get_json(&http, &server.url("/v1/health")).await.is_object());
    assert!(server.terminate().success());
}

#[tokio::test]
async fn v1_series_versions_activate_rollback_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let http = client();
    let url = |path: &str| server.url(&format!("/v1/series/pump.7{path}"));

    // Three versions with different levels: v1 ~10, v2 ~100, v3 ~1000.
    for (i, level) in [10.0, 100.0, 1000.0].into_iter().enumerate() {
        let data: Vec<Value> = (0..10)
            .map(|t| json!({"timestamp": t, "value": level + f64::from(t % 3)}))
            .collect();
        let (status, body) = post(&http, &url("/fit"), &json!({ "data": data })).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["version"], format!("v{}", i + 1));
        assert_eq!(body["model"]["n"], 10);
    }
    let versions = get_json(&http, &url("/versions")).await;
    assert_eq!(
        (&versions["active"], &versions["pinned"]),
        (&json!("v3"), &Value::Null)
    );
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    assert_eq!(
        keys(&versions["versions"][0]),
        ["version", "created_at", "points", "pinned", "active"]
    );

    // Predict against the active version and a named one.
    let (_, p) = post(&http, &url("/predict"), &json!({"value": 1001.0})).await;
    assert_eq!(
        (&p["model_version"], &p["anomaly"]),
        (&json!("v3"), &json!(false))
    );
    let (_, p) = post(
        &http,
        &url("/predict"),
        &json!({"value": 1001.0, "version": "v1"}),
    )
    .await;
    assert_eq!(
        (&p["model_version"], &p["anomaly"]),
        (&json!("v1"), &json!(true))
    );
    let (status, p) = post(
        &http,
        &url("/predict"),
        &json!({"value": 1.0, "version": "v9"}),
    )
    .await;
    assert_eq!(status, 404, "{p}");
    assert!(p["error"].as_str().unwrap().contains("v9"));

    // Activate (pin) v1: the compat /predict follows it.
    let (status, body) = post(&http, &url("/activate"), &json!({"version": "v1"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["active"], &body["pinned"]),
        (&json!("v1"), &json!("v1"))
    );
    let (_, p) = post(
        &http,
        &server.url("/predict/pump.7"),
        &json!({"timestamp": 1, "value": 11.0}),
    )
    .await;
    assert_eq!(
        (&p["version"], &p["is_anomaly"]),
        (&json!("v1"), &json!(false))
    );
    let (status, _) = post(&http, &url("/activate"), &json!({"version": "v7"})).await;
    assert_eq!(status, 404);
    let (status, _) = post(&http, &url("/activate"), &json!({"version": "latest"})).await;
    assert_eq!(status, 400);

    // Roll back from v1: nothing before it.
    let (status, body) = post(&http, &url("/rollback"), &json!({})).await;
    assert_eq!(status, 400, "{body}");
    // Unpin → v3; roll back → v2, then v1.
    let (_, body) = post(&http, &url("/unpin"), &json!({})).await;
    assert_eq!(body["active"], "v3");
    let (_, body) = post(&http, &url("/rollback"), &json!({})).await;
    assert_eq!(
        (&body["active"], &body["pinned"]),
        (&json!("v2"), &json!("v2"))
    );
    let (_, body) = post(&http, &url("/rollback"), &json!({})).await;
    assert_eq!(body["active"], "v1");
    let (status, body) = post(&http, &server.url("/v1/series/ghost/rollback"), &json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = get(&http, &server.url("/v1/series/ghost/versions")).await;
    assert_eq!(status, 404);

    // Plot: the active version by default, or a named one.
    let (status, ct, png) = get(&http, &url("/plot")).await;
    assert_eq!((status, ct.as_deref()), (200, Some("image/png")));
    assert_eq!(png_size(&png), (800, 400));
    let (status, _, png) = get(&http, &url("/plot?version=v3")).await;
    assert_eq!((status, png_size(&png)), (200, (800, 400)));
    let (status, _, _) = get(&http, &url("/plot?version=v4")).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&http, &url("/plot?version=x")).await;
    assert_eq!(status, 400);

    // Bad input: 400 with a message naming the field.
    let (status, body) = post(
        &http,
        &url("/fit"),
        &json!({"data": [{"timestamp": "soon", "value": 1}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("body.data[0].timestamp"),
        "{body}"
    );
    let (status, body) = post(
        &http,
        &url("/fit"),
        &json!({"data": [{"timestamp": 1, "value": 1}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(get_json(&http, &server.url("/v1/health")).await.is_object());
}
