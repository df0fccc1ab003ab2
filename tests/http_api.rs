//! The HTTP API explains itself: every error is JSON with a stable `code`, parameters are checked
//! (missing, malformed, oversize, non-finite), unknown paths answer JSON 404, and the health
//! endpoints answer. Served by the real router over TCP, on an in-process store (no Kafka needed).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use learn_stream::config::Config;
use learn_stream::encode::ContentEncoder;
use learn_stream::metrics::Stats;
use learn_stream::service::{JsonListener, Shared};
use learn_stream::store::{HistoryPolicy, MemoryStore};

fn get(url: &str) -> (u16, serde_json::Value) {
    let mut response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// The router over TCP on an in-process store: (base URL, the shared state).
async fn start(config: Config) -> (String, Arc<Shared<MemoryStore>>) {
    let encoder = Arc::new(ContentEncoder::from_config(&config.encoder).expect("model"));
    let store = MemoryStore::new(HistoryPolicy::from(&config.history));
    let shared = Arc::new(Shared::new(config, store, encoder, Arc::new(Stats::default())).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn({
        let shared = shared.clone();
        async move {
            axum::serve(
                JsonListener(listener),
                learn_stream::service::router(shared),
            )
            .await
            .unwrap()
        }
    });
    (base, shared)
}

/// One raw HTTP/1.1 exchange over TCP (for requests no client library sends): `head` written
/// while the answer is read, so a server that answers before reading all of it is heard.
/// Returns (status, JSON body).
fn raw_exchange(base: &str, head: Vec<u8>) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        // The server may close before it has read everything: a failed write is expected then.
        let _ = writer.write_all(&head);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) if !answer.is_empty() => break,
            Err(e) => panic!("no answer: {e}"),
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    drop(stream);
    let _ = sending.join();
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    (status, body)
}

/// A validator for `#/components/schemas/<name>` of the served OpenAPI document.
fn component(doc: &serde_json::Value, name: &str) -> jsonschema::Validator {
    let schema = serde_json::json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn conforms(validator: &jsonschema::Validator, body: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:?} in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_a_code() {
    let Some(model_dir) = common::model_dir() else {
        return;
    };
    let config = common::config("unused:9092", "redis://unused/", &model_dir);
    let (base, shared) = start(config).await;
    let doc = {
        let url = format!("{base}/openapi.json");
        tokio::task::spawn_blocking(move || get(&url))
            .await
            .unwrap()
            .1
    };
    let error_schema = component(&doc, "Error");

    // Not ready until the catalogue was synced once and the published model is loaded.
    let readyz = format!("{base}/readyz");
    let fetch = |url: String| tokio::task::spawn_blocking(move || get(&url));
    let (status, body) = fetch(readyz.clone()).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        (body["store"].as_str(), body["catalogue_synced"].as_bool()),
        (Some("ok"), Some(false)),
        "{body}"
    );
    shared
        .warmup
        .catalogue_synced
        .store(true, Ordering::Relaxed);
    shared.warmup.model_loaded.store(true, Ordering::Relaxed);
    let (status, body) = fetch(readyz).await.unwrap();
    assert_eq!(
        (status, body["ready"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    let checks: Vec<(String, u16, &str)> = vec![
        (format!("{base}/v1/recommend"), 400, "invalid_query"),
        (
            format!("{base}/v1/recommend?user_id=u&k=ten"),
            400,
            "invalid_query",
        ),
        (
            format!("{base}/v1/recommend?user_id=u&k=0"),
            400,
            "invalid_parameter",
        ),
        (
            format!("{base}/v1/recommend?user_id=%20"),
            400,
            "invalid_parameter",
        ),
        (
            format!("{base}/v1/recommend?user_id={}", "x".repeat(300)),
            400,
            "invalid_parameter",
        ),
        (
            format!("{base}/v1/recommend?user_id=u&popularity_weight=NaN"),
            400,
            "invalid_parameter",
        ),
        (format!("{base}/v1/nothing"), 404, "not_found"),
    ];
    for (url, status, code) in checks {
        let (got, body) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || get(&url)
        })
        .await
        .unwrap();
        assert_eq!(got, status, "{url}: {body}");
        assert_eq!(body["code"], code, "{url}: {body}");
        conforms(&error_schema, &body, &url);
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{url}: {body}"
        );
    }
    let (status, body) = {
        let url = format!("{base}/v1/recommend?user_id=u");
        tokio::task::spawn_blocking(move || {
            let mut response = ureq::post(&url)
                .config()
                .http_status_as_error(false)
                .build()
                .send_empty()
                .unwrap();
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap();
            (
                status,
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
            )
        })
        .await
        .unwrap()
    };
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
    conforms(&error_schema, &body, "POST /v1/recommend");
    let (ok, body) = tokio::task::spawn_blocking(move || {
        get(&format!("{base}/v1/recommend?user_id=new-user&k=3"))
    })
    .await
    .unwrap();
    assert_eq!(ok, 200, "{body}");
    assert_eq!(body["cold_user"], true, "{body}");
    conforms(&component(&doc, "Recommendation"), &body, "/v1/recommend");
}

/// `schemas/openapi.json` (served at `/openapi.json`) describes exactly the routes the router
/// serves, and real answers conform to its schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_api() {
    let Some(model_dir) = common::model_dir() else {
        return;
    };
    let config = common::config("unused:9092", "redis://unused/", &model_dir);
    let (base, shared) = start(config).await;
    shared
        .warmup
        .catalogue_synced
        .store(true, Ordering::Relaxed);
    shared.warmup.model_loaded.store(true, Ordering::Relaxed);
    let answers = tokio::task::spawn_blocking(move || {
        let (status, doc) = get(&format!("{base}/openapi.json"));
        assert_eq!(status, 200);
        let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
        let answers: Vec<(String, u16, serde_json::Value)> = paths
            .iter()
            .map(|path| {
                let query = if path == "/v1/recommend" {
                    "?user_id=someone"
                } else {
                    ""
                };
                let (status, body) = get(&format!("{base}{path}{query}"));
                (path.clone(), status, body)
            })
            .collect();
        (doc, answers)
    })
    .await
    .unwrap();
    let (doc, answers) = answers;
    let described: Vec<&str> = answers.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut expected = [
        "/v1/recommend",
        "/v1/status",
        "/metrics",
        "/livez",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ];
    expected.sort_unstable();
    let mut described_sorted = described.clone();
    described_sorted.sort_unstable();
    assert_eq!(
        described_sorted, expected,
        "every route described, nothing else"
    );
    for (path, status, body) in &answers {
        assert_eq!(*status, 200, "{path}: {body}");
        let schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next());
        if let Some(name) = schema {
            conforms(&component(&doc, name), body, path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_guards_the_api_but_not_the_probes() {
    let Some(model_dir) = common::model_dir() else {
        return;
    };
    let mut config = common::config("unused:9092", "redis://unused/", &model_dir);
    let token = "0123456789abcdef-test";
    config.serving.auth_token = Some(token.into());
    let (base, _) = start(config).await;
    let results = tokio::task::spawn_blocking(move || {
        let with = |path: &str, header: Option<String>| {
            let mut request = ureq::get(format!("{base}{path}"))
                .config()
                .http_status_as_error(false)
                .build();
            if let Some(h) = header {
                request = request.header("Authorization", h);
            }
            request.call().unwrap().status().as_u16()
        };
        [
            with("/v1/status", None),
            with(
                "/v1/status",
                Some("Bearer wrong-token-of-some-length".into()),
            ),
            with("/metrics", None),
            with("/v1/status", Some(format!("Bearer {token}"))),
            with("/metrics", Some(format!("Bearer {token}"))),
            with("/livez", None),
        ]
    })
    .await
    .unwrap();
    assert_eq!(results, [401, 401, 401, 200, 200, 200]);
}

/// The HTTP layer's own answers are JSON with a `code` too (a URI over 64 KiB, a request head
/// over hyper's buffer), and user ids are decoded strictly: not UTF-8, or with a control
/// character, is refused rather than turned into another id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_layers_edges_are_json_too() {
    let Some(model_dir) = common::model_dir() else {
        return;
    };
    let config = common::config("unused:9092", "redis://unused/", &model_dir);
    let (base, _shared) = start(config).await;
    let error_schema = {
        let url = format!("{base}/openapi.json");
        let doc = tokio::task::spawn_blocking(move || get(&url))
            .await
            .unwrap()
            .1;
        component(&doc, "Error")
    };
    let long_uri = format!(
        "GET /v1/recommend?user_id={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(100_000)
    );
    let long_line = format!(
        "GET /v1/recommend?user_id=u&pad={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "b".repeat(2 << 20)
    );
    for (head, status, code) in [
        (long_uri, 414, "uri_too_long"),
        (long_line, 431, "request_head_too_large"),
    ] {
        let base = base.clone();
        let (got, body) =
            tokio::task::spawn_blocking(move || raw_exchange(&base, head.into_bytes()))
                .await
                .unwrap();
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        conforms(&error_schema, &body, code);
    }
    for query in [
        "user_id=%ff%fe",
        "user_id=%fe%ff",
        "user_id=a%00b",
        "user_id=a%0Ab",
    ] {
        let url = format!("{base}/v1/recommend?{query}");
        let (got, body) = tokio::task::spawn_blocking(move || get(&url))
            .await
            .unwrap();
        assert_eq!(
            (got, body["code"].as_str()),
            (400, Some("invalid_parameter")),
            "{query}: {body}"
        );
        conforms(&error_schema, &body, query);
    }
    let url = format!("{base}/v1/recommend?user_id=caf%C3%A9&k=2");
    let (ok, body) = tokio::task::spawn_blocking(move || get(&url))
        .await
        .unwrap();
    assert_eq!(
        (ok, body["user_id"].as_str()),
        (200, Some("café")),
        "{body}"
    );
}
