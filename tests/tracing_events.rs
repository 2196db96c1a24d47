//! `events::TracingObserver` through a real subscriber (tracing-subscriber's fmt layer writing
//! into a buffer): one WARN per throttled retry naming the path, attempt and delay, the other
//! events at their documented levels, and no credential ever in the log, while `Metrics`
//! receives the same events (the pair `(Metrics, TracingObserver)`).
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use pacer::Namespace;
use pacer::events::TracingObserver;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::{PauseGate, RetryAfterLayer};
use pacer_testbed::support::LogCapture;
use prometheus_client::registry::Registry;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tracing_subscriber::filter::LevelFilter;

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

const TOKEN: &str = "s3cr3t-bearer-token";
const QUERY_KEY: &str = "q-s3cr3t-api-key";
const PASSWORD: &str = "b0dy-s3cr3t-password";
const USER_INFO: &str = "u1nfo-s3cr3t";

/// Log lines at `level` whose message is `message`.
fn lines_with<'a>(lines: &'a [String], level: &str, message: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|line| line.trim_start().starts_with(level) && line.contains(message))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn throttled_retries_log_one_warn_each_without_secrets_and_metrics_see_the_same() {
    let captured = LogCapture::default();
    // Thread-local; the paused-time runtime runs every task (the pause timer too) here.
    let _default = tracing::subscriber::set_default(captured.subscriber(LevelFilter::DEBUG));

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let observer = Arc::new((metrics.clone(), TracingObserver));
    let limiter = RateLimiter::builder()
        .per_namespace(Quota::per_second(1).unwrap().with_burst(4).unwrap())
        .max_wait(Duration::from_millis(1_500))
        .observer(Arc::clone(&observer))
        .build()
        .unwrap();
    // `/users`: 429 with `Retry-After: 2`, then 429 with `Retry-After: 1`, then 201.
    // `/flaky`: 502 forever.
    let user_calls = Arc::new(AtomicU32::new(0));
    let upstream = {
        let user_calls = Arc::clone(&user_calls);
        service_fn(move |req: Request<String>| {
            let status = if req.uri().path().ends_with("/users") {
                match user_calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::CREATED,
                }
            } else {
                StatusCode::BAD_GATEWAY
            };
            let wait = if user_calls.load(Ordering::SeqCst) == 1 {
                "2"
            } else {
                "1"
            };
            async move {
                let mut response = Response::new(String::from("{}"));
                *response.status_mut() = status;
                if status == StatusCode::TOO_MANY_REQUESTS {
                    response
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from_static(wait));
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .layer(RetryLayer::new(
            RetryPolicy::new()
                .max_retries(2)
                .without_budget()
                .seed(1)
                .observer(Arc::clone(&observer)),
        ))
        .layer(
            RetryAfterLayer::new()
                .with_gate(PauseGate::builder().seed(1).build())
                .observer(Arc::clone(&observer)),
        )
        .layer(RateLimitLayer::new(limiter))
        .service(upstream);

    // A POST carrying a bearer token, an API key in the query, user info in the authority and
    // a password in the body. 429 is retried for every method.
    let mut create = Request::builder()
        .method(Method::POST)
        .uri(format!(
            "http://admin:{USER_INFO}@kc.test/admin/realms/acme/users?api_key={QUERY_KEY}"
        ))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(format!(r#"{{"username":"ann","password":"{PASSWORD}"}}"#))
        .unwrap();
    create.extensions_mut().insert(Namespace::new("team-a"));
    let response = client.clone().oneshot(create).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.into_body().collect().await.unwrap();

    // A GET that fails with 502 three times: two retries (INFO) and the give-up (WARN).
    let mut flaky = Request::get("http://kc.test/admin/realms/acme/flaky")
        .body(String::new())
        .unwrap();
    flaky.extensions_mut().insert(Namespace::new("team-a"));
    let response = client.clone().oneshot(flaky).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    response.into_body().collect().await.unwrap();

    // Once the namespace's bucket (burst 4, 1/s) is full again, six requests at once: four go,
    // the fifth waits 1 s and the sixth is refused (it would wait 2 s > `max_wait`).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let burst: Vec<_> = (0..6)
        .map(|i| {
            let mut request = Request::get(format!("http://kc.test/burst/{i}/users"))
                .body(String::new())
                .unwrap();
            request.extensions_mut().insert(Namespace::new("team-a"));
            tokio::spawn(client.clone().oneshot(request))
        })
        .collect();
    let mut refused = 0;
    for request in burst {
        if request.await.unwrap().is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 1);
    tokio::time::sleep(Duration::from_secs(5)).await;

    let lines = captured.lines();
    let log = lines.join("\n");
    for secret in [TOKEN, QUERY_KEY, PASSWORD, USER_INFO, "api_key", "Bearer"] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
    assert!(!log.to_ascii_lowercase().contains("authorization"), "{log}");

    // One WARN per throttled retry, with method, path, attempt and the server's delay.
    let throttled = lines_with(&lines, "WARN", "throttled by the server, retrying");
    assert_eq!(throttled.len(), 2, "{log}");
    for (line, attempt, delay) in [(throttled[0], 1, "2s"), (throttled[1], 2, "1s")] {
        assert!(line.contains("method=POST"), "{line}");
        assert!(
            line.contains(r#"path="/admin/realms/acme/users""#),
            "{line}"
        );
        assert!(line.contains("namespace=team-a"), "{line}");
        assert!(line.contains(&format!("attempt={attempt}")), "{line}");
        assert!(line.contains(&format!("delay={delay}")), "{line}");
        assert!(line.contains("from_server=true"), "{line}");
        assert!(line.contains("pacer::events"), "{line}");
    }
    // The other events, at their documented levels.
    let retrying = lines_with(&lines, "INFO", "retrying");
    assert_eq!(retrying.len(), 2, "{log}");
    assert!(
        retrying.iter().all(|l| l.contains("reason=server_error")
            && l.contains(r#"path="/admin/realms/acme/flaky""#))
    );
    let exhausted = lines_with(&lines, "WARN", "retries exhausted");
    assert_eq!(exhausted.len(), 1, "{log}");
    assert!(exhausted[0].contains("attempts=3"), "{}", exhausted[0]);
    let pauses = lines_with(&lines, "INFO", "upstream asked for a pause");
    assert_eq!(pauses.len(), 2, "{log}");
    assert!(pauses[0].contains(r#"upstream="http://kc.test""#) && pauses[0].contains("delay=2s"));
    assert!(pauses[1].contains("delay=1s") && pauses[1].contains("extended=false"));
    assert_eq!(lines_with(&lines, "DEBUG", "pause ended").len(), 2, "{log}");
    let refused = lines_with(&lines, "INFO", "rate limited");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("level=namespace") && refused[0].contains("namespace=team-a"));
    let waits = lines_with(&lines, "DEBUG", "rate limit wait");
    assert!(!waits.is_empty(), "{log}");
    // Nothing else at WARN.
    let warns = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("WARN"))
        .count();
    assert_eq!(warns, 3, "{log}");

    // The metrics counted the very same events.
    let text = encode(&registry);
    assert_eq!(
        sample(&text, r#"pacer_retries_total{reason="throttled"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"pacer_retries_total{reason="server_error"}"#),
        Some(2.0)
    );
    assert_eq!(sample(&text, "pacer_retries_exhausted_total"), Some(1.0));
    assert_eq!(sample(&text, "pacer_retry_after_seconds_count"), Some(2.0));
    assert_eq!(sample(&text, "pacer_retry_after_seconds_sum"), Some(3.0));
    assert_eq!(sample(&text, "pacer_pauses_total"), Some(2.0));
    assert_eq!(sample(&text, "pacer_paused_upstreams"), Some(0.0));
    assert_eq!(
        sample(
            &text,
            r#"pacer_rate_limit_refusals_total{namespace="team-a",level="namespace"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"pacer_rate_limit_wait_seconds_count{namespace="team-a",level="namespace"}"#
        ),
        Some(waits.len() as f64)
    );
    assert!(!text.contains(TOKEN) && !text.contains(QUERY_KEY) && !text.contains(USER_INFO));
}
