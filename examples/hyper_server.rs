//! Plain hyper on both sides, no axum: a `hyper` server built with hyper-util protects itself
//! with pacer's limiter in reject mode, and pacer's stack over hyper-util's client calls it.
//!
//! ```text
//! cargo run -p examples --example hyper_server
//! ```
//!
//! The server (`hyper_util::server::conn::auto`, one task per connection) keys requests by
//! their `x-tenant` header and admits 5 req/s per tenant (burst 5); past that it answers
//! `429 Too Many Requests` with `Retry-After` at once. The client is `pacer::client::Client`
//! built from `Layers` over a plain `hyper_util` HTTP client, allowed twice the server's rate:
//! its first burst meets the server's limit, the `Retry-After` pauses the upstream, and every
//! request still ends `200 OK`. The example prints what each side saw and exits.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pacer::Namespace;
use pacer::client::{Client, Layers, RequestBody};
use pacer::config::Config;
use pacer::metrics::Metrics;
use pacer::rate_limit::{FromHeader, Quota, RateLimitLayer, RateLimiter};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, service_fn};

type BoxError = pacer::BoxError;

const TENANT: HeaderName = HeaderName::from_static("x-tenant");

/// Counts of what the server saw.
#[derive(Default)]
struct Seen {
    arrived: AtomicU64,
    served: AtomicU64,
}

/// The server: reject mode in front of a hello handler, served by hyper-util's auto
/// (HTTP/1.1 or HTTP/2) connection builder. Returns its address.
async fn start_server(seen: Arc<Seen>) -> Result<std::net::SocketAddr, BoxError> {
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(50)?.with_burst(50)?)
        .per_namespace(Quota::per_second(5)?.with_burst(5)?)
        .build()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = Arc::clone(&seen);
            let service = ServiceBuilder::new()
                .map_request({
                    let seen = Arc::clone(&seen);
                    move |request: Request<hyper::body::Incoming>| {
                        seen.arrived.fetch_add(1, Ordering::Relaxed);
                        request
                    }
                })
                .layer(
                    RateLimitLayer::reject(limiter.clone()).with_extractor(FromHeader::new(TENANT)),
                )
                .service(service_fn(
                    move |_request: Request<hyper::body::Incoming>| {
                        seen.served.fetch_add(1, Ordering::Relaxed);
                        async {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"hello\n",
                            ))))
                        }
                    },
                ));
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seen = Arc::new(Seen::default());
    let addr = start_server(Arc::clone(&seen)).await?;

    // The client: pacer's layers from a Config over a plain hyper-util client (no TLS here;
    // `Client::from_config` would bring rustls). Twice the server's per-tenant rate.
    let mut config = Config::default();
    config.rate_limit.namespace_rate = 10.0;
    config.rate_limit.namespace_burst = 10;
    config.retry.backoff_base_secs = 0.05;
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let layers = Layers::from_config(&config, metrics)?;
    let hyper_client = HyperClient::builder(TokioExecutor::new()).build_http::<RequestBody>();
    let client = Client::from_layers(layers, hyper_client);

    println!("hyper server (reject mode, 5 req/s per tenant) on http://{addr}/");
    let requests = 15;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let client = client.clone();
        tasks.spawn(async move {
            let request = Request::get(format!("http://{addr}/"))
                .header(TENANT, "team-a")
                .extension(Namespace::new("team-a"))
                .body(Full::new(Bytes::new()))?;
            let response = client.send(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<StatusCode, BoxError>(status)
        });
    }
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(StatusCode::OK) => ok += 1,
            Ok(status) => println!("  answered {status}"),
            Err(e) => println!("  failed: {e}"),
        }
    }
    let arrived = seen.arrived.load(Ordering::Relaxed);
    let served = seen.served.load(Ordering::Relaxed);
    println!("client: {ok}/{requests} requests ended 200 OK");
    println!(
        "server: {arrived} requests arrived, {served} served, {} refused with 429 + Retry-After",
        arrived - served
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    for line in text.lines().filter(|line| {
        line.starts_with("pacer_retries_total") || line.starts_with("pacer_pauses_total")
    }) {
        println!("  {line}");
    }
    if ok == requests {
        Ok(())
    } else {
        Err(format!("{} requests did not end 200 OK", requests - ok).into())
    }
}
