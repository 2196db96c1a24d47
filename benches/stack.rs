//! The whole pacer stack on the happy path, in DESIGN.md's order
//! `Metrics -> Retry -> RetryAfter -> RateLimit -> Timeout -> service`, against the same
//! service bare, in one run:
//!
//! - `stack/*`: over a bare service that answers at once (a future polled once, no executor),
//!   so the difference is the stack's own cost per request. The limiter's quotas are so high
//!   that nobody ever waits. Also the stack without tower's `Timeout` (which arms a tokio
//!   timer per attempt) and `Timeout` alone, to show where the time goes.
//! - `loopback/*`: a real request with hyper-util's client to a hyper server on 127.0.0.1
//!   (its own thread and runtime, as another process would be), bare and through the stack.
//!
//! `flock /tmp/pacer-bench.lock cargo bench -p benches --bench stack`
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Clock, bench, calls, ok, open_limiter, paired, paired_on, request};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pacer::events::Events;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::RateLimitLayer;
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use prometheus_client::registry::Registry;
use tower::layer::util::{Identity, Stack};
use tower::timeout::TimeoutLayer;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

type PacerLayers =
    Stack<RateLimitLayer, Stack<RetryAfterLayer, Stack<RetryLayer, Stack<MetricsLayer, Identity>>>>;

/// Metrics -> Retry -> RetryAfter -> RateLimit, every layer reporting to `metrics` when
/// `observe` is set (as a user with metrics would configure them).
fn pacer_layers(metrics: &Metrics, observe: bool) -> ServiceBuilder<PacerLayers> {
    let events = if observe {
        Events::new(metrics.clone())
    } else {
        Events::none()
    };
    ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .layer(RetryLayer::new(RetryPolicy::new().observer(events.clone())))
        .layer(RetryAfterLayer::new().observer(events.clone()))
        .layer(RateLimitLayer::new(open_limiter(events)))
}

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

fn happy_path(c: &mut Criterion) {
    // tower's Timeout arms a tokio timer: run inside a runtime context, as users do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let bare = tower::service_fn(ok);
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);

    // Paired comparisons first (same process, same load), then criterion's own figures.
    let template = request();
    let mut base = bare;
    let mut full = pacer_layers(&metrics, true)
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(bare);
    let mut no_observers = pacer_layers(&metrics, false)
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(bare);
    let mut without_timeout = pacer_layers(&metrics, true).service(bare);
    let mut timeout = TimeoutLayer::new(ATTEMPT_TIMEOUT).layer(bare);
    let mut metrics_only = MetricsLayer::new(metrics.clone()).layer(bare);
    let mut retry_only = RetryLayer::new(RetryPolicy::new()).layer(bare);
    let mut retry_after_only = RetryAfterLayer::new().observer(metrics.clone()).layer(bare);
    let mut rate_limit_only = RateLimitLayer::new(open_limiter(Events::none())).layer(bare);
    let (rounds, batch) = (400, 1_000);
    let mut run = |name: &str, svc: &mut dyn FnMut(usize)| {
        paired(name, rounds, batch, |n| calls(&mut base, &template, n), svc);
    };
    run("stack/full", &mut |n| calls(&mut full, &template, n));
    run("stack/full_no_observers", &mut |n| {
        calls(&mut no_observers, &template, n)
    });
    run("stack/pacer_layers_without_timeout", &mut |n| {
        calls(&mut without_timeout, &template, n)
    });
    run("stack/tower_timeout_alone", &mut |n| {
        calls(&mut timeout, &template, n)
    });
    run("stack/metrics_alone", &mut |n| {
        calls(&mut metrics_only, &template, n)
    });
    run("stack/retry_alone", &mut |n| {
        calls(&mut retry_only, &template, n)
    });
    run("stack/retry_after_alone", &mut |n| {
        calls(&mut retry_after_only, &template, n)
    });
    run("stack/rate_limit_alone", &mut |n| {
        calls(&mut rate_limit_only, &template, n)
    });

    let mut group = c.benchmark_group("stack");
    bench(&mut group, "bare", bare);
    bench(
        &mut group,
        "full",
        pacer_layers(&metrics, true)
            .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
            .service(bare),
    );
    bench(
        &mut group,
        "full_no_observers",
        pacer_layers(&metrics, false)
            .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
            .service(bare),
    );
    bench(
        &mut group,
        "pacer_layers_without_timeout",
        pacer_layers(&metrics, true).service(bare),
    );
    bench(
        &mut group,
        "tower_timeout_alone",
        TimeoutLayer::new(ATTEMPT_TIMEOUT).layer(bare),
    );
    group.finish();
}

/// A hyper HTTP/1 server on 127.0.0.1 answering every request with a small body, on its own
/// thread and current-thread runtime.
fn start_server() -> SocketAddr {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        req.into_body().collect().await?;
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(
                            b"{\"id\":\"4bf92f35\"}",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr_rx.recv().unwrap()
}

fn loopback_request(addr: SocketAddr) -> Request<Full<Bytes>> {
    let template = request();
    let (mut parts, body) = template.into_parts();
    parts.uri = format!("http://{addr}/admin/realms/tenant-a/users?briefRepresentation=true")
        .parse()
        .unwrap();
    Request::from_parts(parts, body)
}

/// A client stack with its types erased (the body read to the end inside), so that the
/// variants fit in one array. Boxing adds one allocation per request to these variants.
type BoxedClient = tower::util::BoxCloneSyncService<Request<Full<Bytes>>, (), pacer::BoxError>;

fn boxed<S, B>(svc: S) -> BoxedClient
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<pacer::BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<pacer::BoxError>,
{
    tower::util::BoxCloneSyncService::new(svc.map_err(Into::into).and_then(
        |response: Response<B>| async move {
            response.into_body().collect().await.map_err(Into::into)?;
            Ok(())
        },
    ))
}

/// `n` requests through a [`BoxedClient`] on `rt`, one after the other.
fn boxed_calls(
    rt: &tokio::runtime::Runtime,
    svc: &BoxedClient,
    template: &Request<Full<Bytes>>,
    n: usize,
) {
    rt.block_on(async {
        for _ in 0..n {
            svc.clone().oneshot(template.clone()).await.unwrap();
        }
    });
}

/// `n` requests through `svc` on `rt`, one after the other, each body read to the end.
fn loopback_calls<S, B>(
    rt: &tokio::runtime::Runtime,
    svc: &S,
    template: &Request<Full<Bytes>>,
    n: usize,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        for _ in 0..n {
            let response = svc.clone().oneshot(template.clone()).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
    });
}

fn loopback(c: &mut Criterion) {
    let addr = start_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let stack = pacer_layers(&metrics, true)
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(client.clone());
    let template = loopback_request(addr);

    let bare = |n| loopback_calls(&rt, &client, &template, n);
    for clock in [Clock::Wall, Clock::ThreadCpu] {
        paired_on(clock, "loopback/full_stack", 200, 50, bare, |n| {
            loopback_calls(&rt, &stack, &template, n)
        });
    }
    // Where the time goes: each part of the stack alone over the same client.
    let parts: [(&str, BoxedClient); 7] = [
        // The control: boxing alone, the bias of every variant below.
        ("loopback/boxed_client_alone", boxed(client.clone())),
        (
            "loopback/pacer_layers_without_timeout",
            boxed(pacer_layers(&metrics, true).service(client.clone())),
        ),
        (
            "loopback/tower_timeout_alone",
            boxed(TimeoutLayer::new(ATTEMPT_TIMEOUT).layer(client.clone())),
        ),
        (
            "loopback/metrics_alone",
            boxed(MetricsLayer::new(metrics.clone()).layer(client.clone())),
        ),
        (
            "loopback/retry_alone",
            boxed(RetryLayer::new(RetryPolicy::new()).layer(client.clone())),
        ),
        (
            "loopback/retry_after_alone",
            boxed(
                RetryAfterLayer::new()
                    .observer(metrics.clone())
                    .layer(client.clone()),
            ),
        ),
        (
            "loopback/rate_limit_alone",
            boxed(RateLimitLayer::new(open_limiter(Events::none())).layer(client.clone())),
        ),
    ];
    for (name, svc) in parts {
        paired_on(Clock::ThreadCpu, name, 100, 50, bare, |n| {
            boxed_calls(&rt, &svc, &template, n)
        });
    }

    let mut group = c.benchmark_group("loopback");
    group.bench_function("bare_hyper_client", |b| {
        b.to_async(&rt).iter(|| {
            let client = client.clone();
            let req = template.clone();
            async move {
                let response = client.oneshot(req).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    group.bench_function("full_stack", |b| {
        b.to_async(&rt).iter(|| {
            let stack = stack.clone();
            let req = template.clone();
            async move {
                let response = stack.oneshot(req).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    group.finish();
}

criterion_group!(benches, happy_path, loopback);
criterion_main!(benches);
