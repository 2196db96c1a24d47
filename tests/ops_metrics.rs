//! The operator files are checked against a real run: the ready `Client` against the
//! in-process testbed with faults (429 storm with `Retry-After`, 503s, slow answers past the
//! timeout, a rate-limit refusal, retry budget exhaustion), its metrics scraped over HTTP, and
//! every `pacer_*` metric name used by `ops/grafana/pacer.json` and
//! `ops/prometheus/pacer-rules.yml` looked up in the scrape. Renaming a metric without
//! updating the dashboard or the rules fails here.
//!
//! Real sockets, so real time: the test asserts counts, never durations.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use pacer::Namespace;
use pacer::client::Client;
use pacer::config::Config;
use pacer_testbed::Testbed;
use prometheus_client::registry::Registry;

fn ops_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ops")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names (identifiers starting with `pacer_`) in a PromQL expression. Recording
/// rule names (`job:pacer_...:rate5m`) are one identifier with colons, so they do not count.
fn metric_names(expr: &str, names: &mut BTreeSet<String>) {
    let mut token = String::new();
    let mut in_string = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_string = !in_string;
            token.clear();
            continue;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            token.push(c);
            continue;
        }
        if token.starts_with("pacer_") {
            names.insert(std::mem::take(&mut token));
        }
        token.clear();
    }
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition" | "query", serde_json::Value::String(s)) => {
                        out.push(s.clone());
                    }
                    _ => dashboard_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(values) => values.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Every `expr:` of a rules file, single-line or a block scalar (`expr: |` and the lines
/// indented below it).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "|" || rest == ">" || rest == "|-" || rest == ">-" {
            let indent = line.len() - trimmed.len();
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next);
                block.push('\n');
                lines.next();
            }
            exprs.push(block);
        } else {
            exprs.push(rest.trim_matches('\'').to_owned());
        }
    }
    exprs
}

/// The metric names the dashboard and the rules use.
fn used_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let dashboard: serde_json::Value =
        serde_json::from_str(&ops_file("grafana/pacer.json")).unwrap();
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let mut in_dashboard = BTreeSet::new();
    exprs
        .iter()
        .for_each(|e| metric_names(e, &mut in_dashboard));
    let mut in_rules = BTreeSet::new();
    rule_exprs(&ops_file("prometheus/pacer-rules.yml"))
        .iter()
        .for_each(|e| metric_names(e, &mut in_rules));
    (in_dashboard, in_rules)
}

/// The names of the samples in a Prometheus text scrape.
fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn serve_metrics(State(registry): State<Arc<Registry>>) -> impl axum::response::IntoResponse {
    let (content_type, text) = pacer::metrics::render(&registry, None).unwrap();
    ([(CONTENT_TYPE, content_type)], text)
}

async fn serve(registry: Registry) -> SocketAddr {
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(Arc::new(registry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn scrape(addr: SocketAddr) -> String {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = Request::get(format!("http://{addr}/metrics"))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

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

/// GETs the master realm as `namespace`, `count` requests at once; the outcomes, `Err` for
/// an error with no response.
async fn burst(
    client: &Client,
    testbed: &Testbed,
    token: &str,
    namespace: &'static str,
    count: usize,
) -> Vec<Result<StatusCode, String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let client = client.clone();
        let url = format!("{}/admin/realms/master", testbed.keycloak_url());
        let token = token.to_owned();
        tasks.spawn(async move {
            let request = Request::get(url)
                .header("authorization", format!("Bearer {token}"))
                .extension(Namespace::new(namespace))
                .body(Full::new(Bytes::new()))
                .unwrap();
            match client.send(request).await {
                Ok(response) => {
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    Ok(status)
                }
                Err(e) => Err(e.to_string()),
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.unwrap());
    }
    outcomes
}

#[test]
fn the_ops_files_use_pacer_metrics() {
    let (in_dashboard, in_rules) = used_names();
    // The parser found the names: a dashboard or rules file with no metric in it is a bug too.
    for name in [
        "pacer_requests_total",
        "pacer_request_duration_seconds_bucket",
        "pacer_rate_limit_wait_seconds_bucket",
        "pacer_rate_limit_refusals_total",
        "pacer_retries_total",
        "pacer_retry_budget_exhausted_total",
        "pacer_paused_upstreams",
        "pacer_timeouts_total",
    ] {
        assert!(
            in_dashboard.contains(name),
            "{name} not in the dashboard: {in_dashboard:?}"
        );
    }
    for name in [
        "pacer_requests_total",
        "pacer_retries_total",
        "pacer_retry_budget_exhausted_total",
        "pacer_rate_limit_refusals_total",
        "pacer_paused_upstreams",
        "pacer_timeouts_total",
    ] {
        assert!(
            in_rules.contains(name),
            "{name} not in the rules: {in_rules:?}"
        );
    }
    let mut names = BTreeSet::new();
    metric_names(
        r#"sum by (job) (rate(pacer_retries_total{reason="pacer_x"}[5m])) / job:pacer_requests:rate5m"#,
        &mut names,
    );
    assert_eq!(names, BTreeSet::from(["pacer_retries_total".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_rules_use_is_in_a_real_scrape() {
    let testbed = Testbed::builder().start().await.unwrap();
    // Fast backoff, a short per-attempt timeout, a budget that only its floor pays into, and
    // a namespace with a tight quota that refuses what would wait past max_wait.
    let config = Config::from_toml_str(
        r#"
        timeout_secs = 0.5
        [rate_limit]
        global_rate = 1000
        global_burst = 1000
        namespace_rate = 1000
        namespace_burst = 1000
        max_wait_secs = 0.3
        [rate_limit.overrides.tight]
        rate = 4
        burst = 1
        [retry]
        max_retries = 3
        backoff_base_secs = 0.01
        backoff_max_secs = 0.05
        jitter = "none"
        budget = true
        budget_ratio = 0
        budget_min_per_sec = 4
        "#,
    )
    .unwrap();
    let mut registry = Registry::default();
    let metrics = config.metrics_builder().register(&mut registry);
    let client = Client::builder(&config).metrics(metrics).build().unwrap();
    let metrics_addr = serve(registry).await;
    let token = token(&client, &testbed).await;
    let faults = testbed.faults().clone();

    // 429s with Retry-After: retried after a shared pause of the upstream.
    faults.storm(2, Some(Duration::from_secs(1)));
    let outcomes = burst(&client, &testbed, &token, "team-a", 1).await;
    assert_eq!(outcomes, [Ok(StatusCode::OK)]);
    // A 503 without Retry-After: retried after the backoff.
    faults.unavailable(1, None);
    let outcomes = burst(&client, &testbed, &token, "team-a", 1).await;
    assert_eq!(outcomes, [Ok(StatusCode::OK)]);
    // Slow answers past the per-attempt timeout, healed while the retries run.
    faults.set_latency(Duration::from_secs(2));
    let healer = {
        let faults = faults.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            faults.set_latency(Duration::ZERO);
        })
    };
    let _ = burst(&client, &testbed, &token, "team-a", 1).await;
    healer.await.unwrap();
    // Four at once in the tight namespace: one goes, one waits, the rest would wait past
    // max_wait and are refused.
    let outcomes = burst(&client, &testbed, &token, "tight", 4).await;
    assert!(outcomes.iter().any(Result::is_err), "{outcomes:?}");
    assert!(outcomes.contains(&Ok(StatusCode::OK)), "{outcomes:?}");
    // An outage: many 503s at once, more than the budget's floor can retry.
    faults.unavailable(40, None);
    let outcomes = burst(&client, &testbed, &token, "team-b", 10).await;
    assert!(
        outcomes.contains(&Ok(StatusCode::SERVICE_UNAVAILABLE)),
        "{outcomes:?}"
    );
    faults.clear();

    let text = scrape(metrics_addr).await;
    // The faults reached the metrics.
    for series in [
        r#"pacer_retries_total{reason="throttled"}"#,
        r#"pacer_retries_total{reason="server_error"}"#,
        r#"pacer_retries_total{reason="timeout"}"#,
        r#"pacer_rate_limit_refusals_total{namespace="tight",level="namespace"}"#,
        "pacer_retry_budget_exhausted_total",
        "pacer_pauses_total",
        "pacer_timeouts_total",
    ] {
        assert!(sample(&text, series) >= 1.0, "{series} is 0 in\n{text}");
    }

    let scraped = scraped_names(&text);
    let (in_dashboard, in_rules) = used_names();
    let missing: Vec<String> = in_dashboard
        .iter()
        .map(|name| format!("{name} (dashboard)"))
        .filter(|n| !scraped.contains(n.split(' ').next().unwrap_or_default()))
        .chain(
            in_rules
                .iter()
                .map(|name| format!("{name} (rules)"))
                .filter(|n| !scraped.contains(n.split(' ').next().unwrap_or_default())),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "metrics used by ops/ but not exported: {missing:?}\nscraped: {scraped:?}"
    );
    testbed.shutdown().await;
}
