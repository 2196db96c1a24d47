//! The time bounds of the ready client: the `read_timeout_secs` setting and the idle-read
//! timeout of streaming bodies (real sockets, against the hostile server), the default total
//! deadline, and `Debug` of futures and errors without the query string.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use pacer::client::{BufferBody, Client, ReadTimeout};
use pacer::config::{Config, ConfigError};
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer_testbed::hostile::{Behaviour, HostileServer, Rule};
use tower::{Layer, Service, ServiceExt};

const SLACK: Duration = Duration::from_secs(2);
const HANG: Duration = Duration::from_secs(20);

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

fn names(error: &ConfigError, name: &str) {
    assert!(error.to_string().contains(name), "{error}");
}

#[test]
fn read_timeout_secs_defaults_to_30_s_and_reads_from_files_and_the_environment() {
    let valid = Config::default().validate().unwrap();
    assert_eq!(valid.read_timeout(), Some(Duration::from_secs(30)));
    let config = Config::from_toml_str("read_timeout_secs = 2.5").unwrap();
    assert_eq!(
        config.validate().unwrap().read_timeout(),
        Some(Duration::from_millis(2500))
    );
    let config = Config::from_json_str(r#"{"read_timeout_secs": null}"#).unwrap();
    assert_eq!(config.validate().unwrap().read_timeout(), None);
    let config = Config::default()
        .merge_env_vars(
            "MY_API",
            [("MY_API_READ_TIMEOUT_SECS".to_owned(), "7".to_owned())],
        )
        .unwrap();
    assert_eq!(config.read_timeout_secs, Some(7.0));
    let config = Config::default()
        .merge_env_vars(
            "MY_API",
            [("MY_API_READ_TIMEOUT_SECS".to_owned(), "off".to_owned())],
        )
        .unwrap();
    assert_eq!(config.read_timeout_secs, None);
}

#[test]
fn a_bad_read_timeout_is_a_config_error_naming_it() {
    for bad in ["-1", "NaN", "inf", "0", "1e300", "soon"] {
        let error = Config::default()
            .merge_env_vars(
                "MY_API",
                [("MY_API_READ_TIMEOUT_SECS".to_owned(), bad.to_owned())],
            )
            .unwrap_err();
        names(&error, "MY_API_READ_TIMEOUT_SECS");
    }
    for bad in ["-1", "0", "1e300", "nan", "inf"] {
        let error = Config::from_toml_str(&format!("read_timeout_secs = {bad}")).unwrap_err();
        names(&error, "read_timeout_secs");
    }
    for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let config = Config {
            read_timeout_secs: Some(bad),
            ..Config::default()
        };
        names(&config.validate().unwrap_err(), "read_timeout_secs");
        match Client::from_config(&config).unwrap_err() {
            pacer::client::ClientError::Config(error) => names(&error, "read_timeout_secs"),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn the_default_total_deadline_is_300_s() {
    let valid = Config::default().validate().unwrap();
    assert_eq!(valid.deadline(), Some(Duration::from_secs(300)));
    let policy = format!("{:?}", valid.retry_policy());
    assert!(policy.contains("deadline: Some(300s)"), "{policy}");
}

fn streaming_config() -> Config {
    Config {
        timeout_secs: Some(1.0),
        deadline_secs: Some(3.0),
        read_timeout_secs: Some(1.0),
        ..Config::default()
    }
}

async fn stream_from(behaviour: Behaviour) -> (Result<Bytes, pacer::BoxError>, Duration) {
    let server = HostileServer::builder()
        .rule(Rule::new("/stream", behaviour))
        .start()
        .await
        .unwrap();
    let client = Client::from_config(&streaming_config()).unwrap();
    let response = client
        .send(get(&format!("{}/stream", server.url())))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    let read = tokio::time::timeout(HANG, response.into_body().collect())
        .await
        .expect("the body read hangs");
    (read.map(|c| c.to_bytes()), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_streaming_body_ends_with_read_timeout() {
    let (read, elapsed) = stream_from(Behaviour::StallBody).await;
    let error = read.unwrap_err();
    let timeout = error
        .downcast_ref::<ReadTimeout>()
        .unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(timeout.timeout(), Duration::from_secs(1));
    assert!(pacer::retry::is_timeout(&*error));
    assert!(elapsed < Duration::from_secs(1) + SLACK, "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_body_that_keeps_sending_is_not_cut_by_the_read_timeout() {
    // 2 bytes every 400 ms for ever: each frame restarts the 1 s read timeout.
    let server = HostileServer::builder()
        .rule(Rule::new(
            "/stream",
            Behaviour::ChunkedDrip {
                interval: Duration::from_millis(400),
            },
        ))
        .start()
        .await
        .unwrap();
    let client = Client::from_config(&streaming_config()).unwrap();
    let response = client
        .send(get(&format!("{}/stream", server.url())))
        .await
        .unwrap();
    let mut body = response.into_body();
    let started = Instant::now();
    let mut received = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let frame = tokio::time::timeout(HANG, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        received += frame.into_data().map_or(0, |d| d.len());
    }
    assert!(received >= 8, "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_body_request_gets_its_body_in_memory() {
    let server = HostileServer::builder()
        .rule(Rule::new(
            "/small",
            Behaviour::Respond {
                status: http::StatusCode::OK,
                headers: Vec::new(),
                body: Bytes::from_static(b"whole"),
            },
        ))
        .start()
        .await
        .unwrap();
    let client = Client::from_config(&streaming_config()).unwrap();
    let mut request = get(&format!("{}/small", server.url()));
    request.extensions_mut().insert(BufferBody::new(16));
    let response: Response<_> = client.send(request).await.unwrap();
    assert_eq!(http_body::Body::size_hint(response.body()).exact(), Some(5));
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_of_futures_and_errors_shows_no_query_string() {
    let server = HostileServer::builder()
        .rule(Rule::new("/secret", Behaviour::StallHead))
        .start()
        .await
        .unwrap();
    let url = format!("{}/secret?api_key=canary-query", server.url());
    let mut client = Client::from_config(&streaming_config()).unwrap();
    let future = client.ready().await.unwrap().call(get(&url));
    let shown = format!("{future:?}");
    assert!(!shown.contains("canary"), "{shown}");
    let error = future.await.unwrap_err();
    for text in [format!("{error:?}"), error.to_string()] {
        assert!(!text.contains("canary"), "{text}");
    }

    // The retry layer's future holds the request head: it shows the path, not the query.
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut retry = RetryLayer::new(RetryPolicy::new()).layer(inner);
    let future = retry
        .ready()
        .await
        .unwrap()
        .call(get("http://user:canary-pass@h.invalid/p?q=canary-query"));
    let shown = format!("{future:?}");
    assert!(shown.contains("\"/p\""), "{shown}");
    assert!(!shown.contains("canary"), "{shown}");
    future.await.unwrap();
}
