//! Reject mode end to end: an axum server behind `RateLimitLayer::reject`, on a real socket,
//! called by a hyper client.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderName, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pacer::rate_limit::{FromHeader, Quota, RateLimitLayer, RateLimiter};

async fn serve(limiter: RateLimiter) -> SocketAddr {
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(
            RateLimitLayer::reject(limiter)
                .with_extractor(FromHeader::new(HeaderName::from_static("x-tenant"))),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    policy: Option<String>,
    state: Option<String>,
}

async fn get_as(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    tenant: &str,
) -> Answer {
    let request = Request::get(format!("http://{addr}/hello"))
        .header("x-tenant", tenant)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status(),
        retry_after: header("retry-after"),
        policy: header("ratelimit-policy"),
        state: header("ratelimit"),
    }
}

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[tokio::test]
async fn namespace_limit_answers_429_with_retry_after_and_ratelimit_fields() {
    // One request every 10 s, burst 3: slow enough that the test's own run time cannot refill.
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(50).unwrap().with_burst(100).unwrap())
        .per_namespace(Quota::per_minute(6).unwrap().with_burst(3).unwrap())
        .build()
        .unwrap();
    let addr = serve(limiter).await;
    let client = client();

    for _ in 0..3 {
        let answer = get_as(&client, addr, "team-a").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.retry_after, None);
    }
    let refused = get_as(&client, addr, "team-a").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.retry_after.as_deref(), Some("10"));
    assert_eq!(
        refused.policy.as_deref(),
        Some("\"namespace\";q=3;w=30, \"global\";q=100;w=2")
    );
    assert_eq!(refused.state.as_deref(), Some("\"namespace\";r=0;t=10"));

    // Other tenants keep their own buckets.
    assert_eq!(get_as(&client, addr, "team-b").await.status, StatusCode::OK);
}

#[tokio::test]
async fn global_limit_answers_429_naming_the_global_bucket() {
    let limiter = RateLimiter::builder()
        .global(Quota::per_minute(12).unwrap().with_burst(4).unwrap())
        .per_namespace(Quota::per_second(5).unwrap().with_burst(10).unwrap())
        .build()
        .unwrap();
    let addr = serve(limiter).await;
    let client = client();
    for tenant in ["a", "b", "c", "d"] {
        assert_eq!(get_as(&client, addr, tenant).await.status, StatusCode::OK);
    }
    let refused = get_as(&client, addr, "e").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.retry_after.as_deref(), Some("5"));
    assert_eq!(refused.state.as_deref(), Some("\"global\";r=0;t=5"));
    assert_eq!(
        refused.policy.as_deref(),
        Some("\"namespace\";q=10;w=2, \"global\";q=4;w=20")
    );
}

#[tokio::test]
async fn hostile_tenant_headers_share_the_default_bucket() {
    let limiter = RateLimiter::builder()
        .per_namespace(Quota::per_minute(6).unwrap().with_burst(2).unwrap())
        .build()
        .unwrap();
    let addr = serve(limiter.clone()).await;
    let client = client();
    // Oversized or malformed names cannot mint new buckets: they all land in "default".
    let long = "x".repeat(4096);
    assert_eq!(get_as(&client, addr, &long).await.status, StatusCode::OK);
    assert_eq!(get_as(&client, addr, "a b").await.status, StatusCode::OK);
    let refused = get_as(&client, addr, "").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limiter.tracked_namespaces(), 1);
}
