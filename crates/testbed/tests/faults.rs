//! Fault injection, the server-side rate limit and the counters, over real TCP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::{HeaderName, Method};
use pacer::rate_limit::{Quota, RateLimiter};
use pacer_testbed::{Faults, Testbed};

fn get(url: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    request(Method::GET, url, &[], "")
}

#[tokio::test]
async fn storm_of_429_with_retry_after_for_the_next_requests() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let url = format!("{}/admin/serverinfo", tb.keycloak_url());
    tb.faults().storm(2, Some(Duration::from_millis(1500)));
    for _ in 0..2 {
        let reply = send(&client, get(&url)).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("2")); // whole seconds, rounded up
    }
    // Storm over: the fake answers again (401: no token).
    let reply = send(&client, get(&url)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(tb.stats().too_many_requests(), 2);
    assert_eq!(tb.stats().injected(), 2);
    assert_eq!(tb.stats().rate_limited(), 0);
    assert_eq!(tb.stats().count("/admin/serverinfo", 429), 2);
    assert_eq!(tb.stats().count("/admin/serverinfo", 401), 1);
    assert_eq!(tb.stats().requests(), 3);
}

#[tokio::test]
async fn storm_for_a_window_and_infrahub_shaped_body() {
    let faults = Faults::default();
    let tb = Testbed::builder()
        .faults(faults.clone())
        .start()
        .await
        .unwrap();
    let client = client();
    faults.storm_for(Duration::from_millis(400), Some(Duration::from_secs(1)));
    let url = format!("{}/graphql", tb.infrahub_url());
    let reply = send(&client, request(Method::POST, &url, &[], "{}")).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.json()["errors"][0]["extensions"]["code"], 429);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reply = send(&client, request(Method::POST, &url, &[], "{}")).await;
    assert_eq!(reply.status, 401); // window over: the fake answers (no credentials)
}

#[tokio::test]
async fn injected_503_with_and_without_retry_after() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let url = format!("{}/admin/realms", tb.keycloak_url());
    tb.faults().unavailable(1, None);
    let reply = send(&client, get(&url)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), None);
    tb.faults().unavailable(1, Some(Duration::from_secs(3)));
    let reply = send(&client, get(&url)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("3"));
    assert_eq!(send(&client, get(&url)).await.status, 401);
    assert_eq!(tb.stats().responses(503), 2);
}

#[tokio::test]
async fn added_latency_slows_responses_within_bounds() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let url = format!("{}/admin/serverinfo", tb.keycloak_url());
    // Warm the connection so the measurement is the server's.
    send(&client, get(&url)).await;
    let started = Instant::now();
    send(&client, get(&url)).await;
    let fast = started.elapsed();

    tb.faults().set_latency(Duration::from_millis(300));
    let started = Instant::now();
    send(&client, get(&url)).await;
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    assert!(slow < Duration::from_secs(3), "{slow:?}");
    assert!(slow > fast, "{slow:?} vs {fast:?}");

    tb.faults().set_latency(Duration::ZERO);
    let started = Instant::now();
    send(&client, get(&url)).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn connection_reset_is_a_client_error() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let url = format!("{}/admin/serverinfo", tb.keycloak_url());
    tb.faults().reset_connections(1);
    let result = try_send(&client, get(&url)).await;
    let error = result.expect_err("the connection was reset without a response");
    assert!(
        !error.is_connect(),
        "the connection was established: {error:?}"
    );
    // The server closed with SO_LINGER 0: the client sees a TCP reset, not a clean close.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut reset = false;
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            reset |= io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = current.source();
    }
    assert!(reset, "expected ECONNRESET in {error:?}");
    assert_eq!(tb.stats().resets(), 1);
    // The next request gets a fresh connection and an answer.
    let reply = send(&client, get(&url)).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn faults_can_be_scoped_to_a_path_prefix() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    tb.faults().scope_to(Some("/graphql"));
    tb.faults().storm(1, Some(Duration::from_secs(1)));
    let kc = format!("{}/admin/serverinfo", tb.keycloak_url());
    assert_eq!(send(&client, get(&kc)).await.status, 401);
    let ih = format!("{}/graphql", tb.infrahub_url());
    assert_eq!(
        send(&client, request(Method::POST, &ih, &[], "{}"))
            .await
            .status,
        429
    );
}

#[tokio::test]
async fn server_side_rate_limit_answers_429_with_retry_after() {
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(1).unwrap().with_burst(2).unwrap())
        .per_namespace(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
        .build()
        .unwrap();
    let tb = Testbed::builder()
        .rate_limit(limiter)
        .start()
        .await
        .unwrap();
    let client = client();
    let url = format!("{}/admin/serverinfo", tb.keycloak_url());
    assert_eq!(send(&client, get(&url)).await.status, 401);
    assert_eq!(send(&client, get(&url)).await.status, 401);
    let limited = send(&client, get(&url)).await;
    assert_eq!(limited.status, 429);
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(limited.header("ratelimit-policy").is_some());
    assert!(limited.header("ratelimit").unwrap().contains("\"global\""));
    assert_eq!(tb.stats().too_many_requests(), 1);
    assert_eq!(tb.stats().rate_limited(), 1);
    assert_eq!(tb.stats().injected(), 0);
}

#[tokio::test]
async fn server_side_rate_limit_keyed_by_header() {
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
        .per_namespace(Quota::per_second(1).unwrap().with_burst(1).unwrap())
        .build()
        .unwrap();
    let tb = Testbed::builder()
        .rate_limit(limiter)
        .rate_limit_key(HeaderName::from_static("x-tenant"))
        .start()
        .await
        .unwrap();
    let client = client();
    let url = format!("{}/admin/serverinfo", tb.keycloak_url());
    let as_tenant = |tenant: &'static str| request(Method::GET, &url, &[("x-tenant", tenant)], "");
    assert_eq!(send(&client, as_tenant("a")).await.status, 401);
    let limited = send(&client, as_tenant("a")).await;
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("ratelimit")
            .unwrap()
            .contains("\"namespace\"")
    );
    // Another tenant has its own bucket.
    assert_eq!(send(&client, as_tenant("b")).await.status, 401);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let tb = Testbed::start().await.unwrap();
    let addr = tb.addr();
    tb.shutdown().await;
    let connect = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await;
    assert!(
        matches!(connect, Ok(Err(_))),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn dropping_the_testbed_stops_the_server() {
    let tb = Testbed::start().await.unwrap();
    let addr = tb.addr();
    drop(tb);
    // The accept loop notices the drop at its next poll; wait for that, bounded.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let connect = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await;
        if matches!(connect, Ok(Err(_))) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
