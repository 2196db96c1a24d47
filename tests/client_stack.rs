//! `pacer::client` built from a `Config`, against the in-process testbed: real sockets, so
//! real time; the tests assert counts and outcomes, never durations.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use pacer::Namespace;
use pacer::client::{Client, Layers, ResponseBody};
use pacer::config::Config;
use pacer::rate_limit::{Quota, RateLimiter};
use pacer_testbed::Testbed;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

/// A client-credentials token from the testbed's fake Keycloak, fetched with `client`.
async fn token(client: &Client, testbed: &Testbed) -> String {
    let creds = testbed.credentials();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        creds.keycloak_client_id, creds.keycloak_client_secret
    );
    let request = Request::post(format!(
        "{}/realms/master/protocol/openid-connect/token",
        testbed.keycloak_url()
    ))
    .header("content-type", "application/x-www-form-urlencoded")
    .body(Full::from(form))
    .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["access_token"].as_str().unwrap().to_owned()
}

fn get(url: String, token: &str, namespace: &str) -> Request<Full<Bytes>> {
    let mut request = Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    request
        .extensions_mut()
        .insert(Namespace::new(namespace.to_owned()));
    request
}

#[tokio::test]
async fn from_config_talks_to_the_testbed_and_records_metrics() {
    let testbed = Testbed::builder().start().await.unwrap();
    let config = Config::from_toml_str("[metrics]\nprefix = \"kc\"\n").unwrap();
    let mut registry = Registry::default();
    let metrics = config.metrics_builder().register(&mut registry);
    let client = Client::builder(&config).metrics(metrics).build().unwrap();

    let token = token(&client, &testbed).await;
    let response = client
        .clone()
        .oneshot(get(
            format!("{}/admin/realms/master", testbed.keycloak_url()),
            &token,
            "team-a",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let realm: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(realm["realm"], "master");

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"kc_requests_total{method="GET",status_class="2xx",namespace="team-a"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"kc_requests_total{method="POST",status_class="2xx",namespace="default"} 1"#
        ),
        "{text}"
    );
    assert_eq!(client.rate_limiter().global_quota().rate(), 50.0);
    assert_eq!(testbed.stats().requests(), 2);
}

#[test]
fn blocking_client_drives_the_same_stack() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let testbed = runtime.block_on(Testbed::builder().start()).unwrap();
    let client = pacer::client::blocking::Client::from_config(&Config::default()).unwrap();
    let response = client
        .send(
            Request::get(format!("{}/admin/serverinfo", testbed.keycloak_url()))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .unwrap();
    // No token: the fake Keycloak refuses, and a 401 is not retried.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(testbed.stats().requests(), 1);

    // Inside an async context the blocking client refuses instead of blocking a runtime thread.
    let error = runtime
        .block_on(async {
            client.send(
                Request::get(format!("{}/admin/serverinfo", testbed.keycloak_url()))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
        })
        .unwrap_err();
    assert!(error.to_string().contains("async runtime"), "{error}");
    // Dropping the last clone inside an async context must not panic either.
    runtime.block_on(async move { drop(client) });
}

#[tokio::test]
async fn credentials_are_marked_sensitive_and_absent_from_debug_output() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let seen = Arc::clone(&seen);
            async move {
                let flags: Vec<(String, bool)> = request
                    .headers()
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.is_sensitive()))
                    .collect();
                seen.lock().unwrap().push(flags);
                Ok::<_, std::convert::Infallible>(Response::new(ResponseBody::from("ok")))
            }
        })
    };
    let config = Config::default();
    let mut registry = Registry::default();
    let layers =
        Layers::from_config(&config, config.metrics_builder().register(&mut registry)).unwrap();
    let client = Client::from_layers(layers, recorder);
    let request = Request::builder()
        .method(Method::GET)
        .uri("http://api.test/x")
        .header("authorization", "Bearer s3cr3t-token")
        .header("x-infrahub-key", "s3cr3t-key")
        .header("cookie", "session=s3cr3t-cookie")
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let flags = seen.lock().unwrap().pop().unwrap();
    for (name, sensitive) in &flags {
        assert_eq!(*sensitive, name != "accept", "{name}");
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let debug = format!("{client:?} {response:?}");
    for output in [text, debug] {
        assert!(!output.contains("s3cr3t"), "{output}");
    }
}

/// A testbed whose server-side limit (pacer's reject mode, one bucket for everyone) is
/// `rate` requests per second with a burst of `burst`.
async fn limited_testbed(rate: f64, burst: u32) -> Testbed {
    let quota = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
    let limiter = RateLimiter::builder()
        .global(quota)
        .per_namespace(quota)
        .build()
        .unwrap();
    Testbed::builder()
        .rate_limit(limiter)
        .start()
        .await
        .unwrap()
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Sends `count` GETs of `path` at once, spread over `namespaces` tenants; returns their
/// statuses.
async fn burst(
    client: &Client,
    url: &str,
    token: &str,
    count: usize,
    namespaces: usize,
) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let client = client.clone();
        let request = get(url.to_owned(), token, &format!("ns-{}", i % namespaces));
        tasks.spawn(async move { client.send(request).await.map(|r| r.status()) });
    }
    let mut statuses = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        statuses.push(joined.unwrap().unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_resets_and_slow_responses_lose_nothing_and_respect_the_server_limit() {
    // The server admits 40/s (burst 10); the client allows itself 20/s (burst 10).
    let testbed = limited_testbed(40.0, 10).await;
    let config = Config::from_toml_str(
        r#"
        timeout_secs = 1
        [rate_limit]
        global_rate = 20
        global_burst = 10
        namespace_rate = 10
        namespace_burst = 5
        [retry]
        backoff_base_secs = 0.05
        backoff_max_secs = 0.2
        budget = false
        "#,
    )
    .unwrap();
    let mut registry = Registry::default();
    let metrics = config.metrics_builder().register(&mut registry);
    let client = Client::builder(&config).metrics(metrics).build().unwrap();
    let token = token(&client, &testbed).await;
    let url = format!("{}/admin/realms/master", testbed.keycloak_url());
    let path = "/admin/realms/master";

    // A 429 storm asking for a second of quiet, and connections reset mid-request.
    testbed.faults().storm(20, Some(Duration::from_secs(1)));
    testbed.faults().reset_connections(4);
    let statuses = burst(&client, &url, &token, 120, 6).await;
    assert_eq!(statuses.len(), 120);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let stats = testbed.stats();
    assert_eq!(
        stats.count(path, 200),
        120,
        "exactly one success per request"
    );
    assert_eq!(stats.injected(), 20);
    assert_eq!(stats.resets(), 4);
    assert_eq!(
        stats.rate_limited(),
        0,
        "the server's own limit never refused"
    );

    // Slow responses: every attempt arriving in the next 1.5 s takes 3 s, beyond the 1 s
    // per-attempt timeout; the retries after that get through.
    testbed.faults().set_latency(Duration::from_secs(3));
    let faults = testbed.faults().clone();
    let healer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        faults.set_latency(Duration::ZERO);
    });
    let statuses = burst(&client, &url, &token, 12, 3).await;
    healer.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        stats.rate_limited(),
        0,
        "the server's own limit never refused"
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert_eq!(
        metric(&text, r#"pacer_retries_total{reason="throttled"}"#),
        20,
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"pacer_retries_total{reason="transport"}"#),
        4,
        "{text}"
    );
    assert!(
        metric(&text, r#"pacer_retries_total{reason="timeout"}"#) >= 12,
        "{text}"
    );
    assert!(metric(&text, "pacer_timeouts_total") >= 12, "{text}");
    assert_eq!(metric(&text, "pacer_retries_exhausted_total"), 0, "{text}");
    // The storm's Retry-After paused every request to the upstream, not only the retried ones,
    // and every pause has ended by now.
    assert!(metric(&text, "pacer_pauses_total") >= 1, "{text}");
    assert_eq!(metric(&text, "pacer_paused_upstreams"), 0, "{text}");
    let ok: u64 = (0..6)
        .map(|ns| {
            metric(
                &text,
                &format!(
                    r#"pacer_requests_total{{method="GET",status_class="2xx",namespace="ns-{ns}"}}"#
                ),
            )
        })
        .sum();
    assert_eq!(ok, 132, "{text}");
}

/// The request sequence of one scripted run against a fresh testbed: a token, then (with a
/// reset, two 429s and a 503 queued) a GET, a PUT, a POST and a GET with a query.
fn script() -> Vec<Request<Full<Bytes>>> {
    let realm = "/admin/realms/master";
    vec![
        Request::get(realm).body(Full::new(Bytes::new())).unwrap(),
        Request::put(realm)
            .header("content-type", "application/json")
            .body(Full::from(r#"{"displayName":"Scripted"}"#))
            .unwrap(),
        Request::post(format!("{realm}/clients"))
            .header("content-type", "application/json")
            .body(Full::from(r#"{"clientId":"scripted"}"#))
            .unwrap(),
        Request::get(format!("{realm}/clients?clientId=scripted"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    ]
}

fn scripted_config() -> Config {
    Config::from_toml_str(
        r#"
        [retry]
        backoff_base_secs = 0.01
        backoff_max_secs = 0.05
        jitter = "none"
        budget = false
        "#,
    )
    .unwrap()
}

/// Points a scripted request at `base`, with the token.
fn aim(request: Request<Full<Bytes>>, base: &str, token: &str) -> Request<Full<Bytes>> {
    let (mut parts, body) = request.into_parts();
    parts.uri = format!("{base}{}", parts.uri).parse().unwrap();
    parts
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    Request::from_parts(parts, body)
}

fn queue_faults(testbed: &Testbed) {
    testbed.faults().reset_connections(1);
    testbed.faults().storm(2, Some(Duration::ZERO));
    testbed.faults().unavailable(1, None);
}

#[test]
fn async_and_blocking_clients_send_identical_request_sequences() {
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // The async client.
    let async_log = runtime.block_on(async {
        let testbed = Testbed::builder().start().await.unwrap();
        let client = Client::from_config(&scripted_config()).unwrap();
        let token = token(&client, &testbed).await;
        queue_faults(&testbed);
        let mut statuses = Vec::new();
        for request in script() {
            let request = aim(request, testbed.keycloak_url(), &token);
            statuses.push(client.send(request).await.unwrap().status());
        }
        (statuses, testbed.stats().log())
    });

    // The blocking client, against a fresh testbed with the same script.
    let testbed = runtime.block_on(Testbed::builder().start()).unwrap();
    let client = pacer::client::blocking::Client::from_config(&scripted_config()).unwrap();
    let creds = testbed.credentials().clone();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        creds.keycloak_client_id, creds.keycloak_client_secret
    );
    let response = client
        .send(
            Request::post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                testbed.keycloak_url()
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::from(form))
            .unwrap(),
        )
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let token = json["access_token"].as_str().unwrap().to_owned();
    queue_faults(&testbed);
    let mut statuses = Vec::new();
    for request in script() {
        let request = aim(request, testbed.keycloak_url(), &token);
        statuses.push(client.send(request).unwrap().status());
    }
    let blocking_log = (statuses, testbed.stats().log());

    assert_eq!(async_log, blocking_log);
    let (statuses, log) = async_log;
    assert_eq!(
        statuses,
        [200, 204, 201, 200].map(|s| StatusCode::from_u16(s).unwrap())
    );
    let seen: Vec<(String, String, Option<u16>)> = log
        .into_iter()
        .map(|e| (e.method, e.path, e.status))
        .collect();
    let realm = "/admin/realms/master".to_owned();
    let expected = vec![
        (
            "POST".to_owned(),
            "/realms/master/protocol/openid-connect/token".to_owned(),
            Some(200),
        ),
        ("GET".to_owned(), realm.clone(), None),
        ("GET".to_owned(), realm.clone(), Some(429)),
        ("GET".to_owned(), realm.clone(), Some(429)),
        ("GET".to_owned(), realm.clone(), Some(503)),
        ("GET".to_owned(), realm.clone(), Some(200)),
        ("PUT".to_owned(), realm.clone(), Some(204)),
        ("POST".to_owned(), format!("{realm}/clients"), Some(201)),
        ("GET".to_owned(), format!("{realm}/clients"), Some(200)),
    ];
    assert_eq!(seen, expected);
}

/// The README's axum example: the client as shared state, the tenant from the path.
#[tokio::test]
async fn client_as_axum_state() {
    use axum::extract::{Path, State};
    use axum::{Router, routing::post};

    async fn reconcile(
        State((client, base)): State<(Client, String)>,
        Path(tenant): Path<String>,
    ) -> StatusCode {
        let mut request = Request::get(format!("{base}/admin/realms/{tenant}"))
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        request.extensions_mut().insert(Namespace::new(tenant));
        match client.send(request).await {
            Ok(response) => response.status(),
            Err(_) => StatusCode::BAD_GATEWAY,
        }
    }

    let testbed = Testbed::builder().start().await.unwrap();
    let mut registry = Registry::default();
    let config = Config::default();
    let client = Client::builder(&config)
        .metrics(config.metrics_builder().register(&mut registry))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/reconcile/{tenant}", post(reconcile))
        .with_state((client, testbed.keycloak_url().to_owned()));
    let response = app
        .oneshot(
            Request::post("/reconcile/team-a")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    // No token: the fake Keycloak's 401 comes back through the app.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"pacer_requests_total{method="GET",status_class="4xx",namespace="team-a"} 1"#
        ),
        "{text}"
    );
}

#[test]
fn blocking_client_clones_work_from_many_threads_at_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let testbed = runtime.block_on(Testbed::builder().start()).unwrap();
    let client = pacer::client::blocking::Client::from_config(&Config::default()).unwrap();
    let url = format!("{}/admin/serverinfo", testbed.keycloak_url());
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let client = client.clone();
            let url = url.clone();
            scope.spawn(move || {
                for _ in 0..5 {
                    let mut request = Request::get(url.as_str())
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    request
                        .extensions_mut()
                        .insert(Namespace::new(format!("thread-{thread}")));
                    let response = client.send(request).unwrap();
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                }
            });
        }
    });
    assert_eq!(testbed.stats().count("/admin/serverinfo", 401), 20);
}
