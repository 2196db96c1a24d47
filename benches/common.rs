//! Shared by the benches: the request, the bare upstream, one poll, a limiter that never
//! binds, the four pacer layers, and a hyper server and client on 127.0.0.1.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{BenchmarkGroup, measurement::WallTime};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pacer::Namespace;
use pacer::events::Events;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::{RateLimitLayer, RateLimiter};
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use tower::layer::util::{Identity, Stack};
use tower::{Service, ServiceBuilder, ServiceExt};

/// Polls a future that must complete on its first poll.
pub(crate) fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the happy path must not wait"),
    }
}

/// [`request`] without a namespace.
pub(crate) fn plain_request() -> Request<Full<Bytes>> {
    Request::post(
        "https://keycloak.example.invalid/admin/realms/tenant-a/users?briefRepresentation=true",
    )
    .header("content-type", "application/json")
    .header("accept", "application/json")
    .header(
        "authorization",
        "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl",
    )
    .header("user-agent", "pacer-bench/0.1")
    .header("x-request-id", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736")
    .body(Full::new(Bytes::from_static(
        br#"{"username":"alice","email":"alice@example.invalid","enabled":true,"firstName":"Alice","lastName":"Liddell","attributes":{"tenant":["a"]}}"#,
    )))
    .expect("valid request")
}

/// A realistic API call: POST, five headers (a bearer token among them), a 150-byte JSON
/// body, a query, and the tenant's namespace.
pub(crate) fn request() -> Request<Full<Bytes>> {
    let mut request = plain_request();
    request.extensions_mut().insert(Namespace::new("tenant-a"));
    request
}

/// The bare upstream: a ready `200` with a small body, at once.
pub(crate) fn ok(req: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    black_box(req);
    ready(Ok(Response::new(Full::new(Bytes::from_static(b"{}")))))
}

/// One request through `svc`: made ready, called, its future polled once. The response (and
/// with it any metrics guard in its body) is dropped inside the measurement.
pub(crate) fn call_once<S, B>(svc: &mut S, req: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let ready = now(svc.ready()).expect("ready");
    let response = now(ready.call(req)).expect("response");
    black_box(response.status());
    drop(black_box(response));
}

/// tower's retry with the simplest policy that can retry: copy the request, never retry.
#[derive(Clone)]
pub(crate) struct CloneOnly;

impl<Res, E> tower::retry::Policy<Request<Full<Bytes>>, Res, E> for CloneOnly {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _: &mut Request<Full<Bytes>>,
        _: &mut Result<Res, E>,
    ) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, req: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        Some(req.clone())
    }
}

/// Whether criterion runs in its quick `--test` mode (CI): then the paired comparisons only
/// check that they run.
pub(crate) fn quick() -> bool {
    std::env::args().any(|arg| arg == "--test" || arg == "--profile-time")
}

/// A paired comparison that holds up on a busy machine: `rounds` rounds, each timing a batch
/// of `batch` calls through `base` and then through `with` (the order alternating between
/// rounds), so that both sides of a round see the same background load. Prints the medians
/// of the per-call times, of the per-round difference and of the per-round ratio.
pub(crate) fn paired(
    name: &str,
    rounds: usize,
    batch: usize,
    base: impl FnMut(usize),
    with: impl FnMut(usize),
) -> Paired {
    paired_on(Clock::Wall, name, rounds, batch, base, with)
}

/// What [`paired_on`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// Elapsed time.
    Wall,
    /// CPU time of the calling thread (Linux `/proc/thread-self/schedstat`, nanoseconds):
    /// what the calls cost this thread, without the time it waited for a busy CPU or for a
    /// peer on another thread.
    ThreadCpu,
}

impl Clock {
    fn now_ns(self, wall_origin: std::time::Instant) -> Option<f64> {
        match self {
            Clock::Wall => Some(wall_origin.elapsed().as_secs_f64() * 1e9),
            Clock::ThreadCpu => std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok(),
        }
    }
}

/// [`paired`] on the given clock; prints nothing and returns `None` when the clock cannot be
/// read (thread CPU time off Linux).
pub(crate) fn paired_on(
    clock: Clock,
    name: &str,
    rounds: usize,
    batch: usize,
    mut base: impl FnMut(usize),
    mut with: impl FnMut(usize),
) -> Paired {
    let (rounds, batch) = if quick() { (2, 2) } else { (rounds, batch) };
    let origin = std::time::Instant::now();
    let time = |f: &mut dyn FnMut(usize)| {
        let start = clock.now_ns(origin).unwrap_or(f64::NAN);
        f(batch);
        (clock.now_ns(origin).unwrap_or(f64::NAN) - start) / batch as f64
    };
    base(batch); // warm up both
    with(batch);
    let mut bases = Vec::with_capacity(rounds);
    let mut withs = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (b, w) = if round % 2 == 0 {
            let b = time(&mut base);
            (b, time(&mut with))
        } else {
            let w = time(&mut with);
            (time(&mut base), w)
        };
        bases.push(b);
        withs.push(w);
    }
    let mut diffs: Vec<f64> = bases.iter().zip(&withs).map(|(b, w)| w - b).collect();
    let mut ratios: Vec<f64> = bases.iter().zip(&withs).map(|(b, w)| w / b).collect();
    let result = Paired {
        base: median(&mut bases),
        with: median(&mut withs),
        added: median(&mut diffs),
        ratio: median(&mut ratios),
    };
    println!(
        "paired {name} ({}): base {:.0} ns, with {:.0} ns, added {:.0} ns, ratio {:.3} (medians of {rounds} rounds x {batch} calls)",
        match clock {
            Clock::Wall => "wall",
            Clock::ThreadCpu => "client thread cpu",
        },
        result.base,
        result.with,
        result.added,
        result.ratio
    );
    result
}

/// Medians of a [`paired`] comparison, in nanoseconds per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paired {
    pub(crate) base: f64,
    pub(crate) with: f64,
    pub(crate) added: f64,
    pub(crate) ratio: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `n` requests (clones of `template`) through `svc`, one at a time.
pub(crate) fn calls<S, B>(svc: &mut S, template: &Request<Full<Bytes>>, n: usize)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        call_once(svc, template.clone());
    }
}

/// A limiter that never makes anyone wait at benchmark rates.
pub(crate) fn open_limiter(events: Events) -> RateLimiter {
    pacer_testbed::support::open_limiter(events).expect("an open quota is valid")
}

/// Benches one call of `svc` per iteration with a clone of the shared request.
pub(crate) fn bench<S, B>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut svc: S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let template = request();
    group.bench_function(name, |b| {
        b.iter(|| call_once(&mut svc, template.clone()));
    });
}

pub(crate) type PacerLayers =
    Stack<RateLimitLayer, Stack<RetryAfterLayer, Stack<RetryLayer, Stack<MetricsLayer, Identity>>>>;

/// Metrics -> Retry -> RetryAfter -> RateLimit, every layer reporting to `metrics` when
/// `observe` is set (as a user with metrics would configure them).
pub(crate) fn pacer_layers(metrics: &Metrics, observe: bool) -> ServiceBuilder<PacerLayers> {
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

/// A hyper HTTP/1 server on 127.0.0.1 answering every request with a small body, on its own
/// thread and current-thread runtime.
pub(crate) fn start_server() -> SocketAddr {
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

pub(crate) fn loopback_request(addr: SocketAddr) -> Request<Full<Bytes>> {
    let template = request();
    let (mut parts, body) = template.into_parts();
    parts.uri = format!("http://{addr}/admin/realms/tenant-a/users?briefRepresentation=true")
        .parse()
        .unwrap();
    Request::from_parts(parts, body)
}

/// A hyper server on 127.0.0.1 ([`start_server`]), a current-thread runtime for the client,
/// the client ([`loopback_client`]) and the request to send it ([`loopback_request`]).
pub(crate) fn loopback_setup() -> (
    tokio::runtime::Runtime,
    Client<HttpConnector, Full<Bytes>>,
    Request<Full<Bytes>>,
) {
    let addr = start_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (rt, loopback_client(), loopback_request(addr))
}

/// hyper-util's legacy client over plain HTTP, with `TCP_NODELAY` as the server has it.
pub(crate) fn loopback_client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// `n` requests through `svc` on `rt`, one after the other, each body read to the end.
pub(crate) fn loopback_calls<S, B>(
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
