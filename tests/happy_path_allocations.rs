//! What the layers allocate on the happy path, counted by a global allocator: `MetricsLayer`,
//! `RetryAfterLayer` and `RateLimitLayer` nothing; `RetryLayer` only its copy of the request
//! head (method, URI, headers, extensions), which it needs to send the request again. On a
//! real request every allocation is a cache miss or two in the allocator, so this is part of
//! what keeps the stack cheap (README, *Benchmarks*).
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use pacer::Namespace;
use pacer::events::Events;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::RateLimitLayer;
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use pacer_testbed::support::open_limiter;
use prometheus_client::registry::Registry;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

mod counting_alloc {
    //! Counts the allocations of the current thread.
    // Implementing `GlobalAlloc` takes `unsafe` (an unsafe trait whose methods are unsafe fns),
    // which the workspace lints deny. This module only forwards to `System` and counts.
    #![allow(unsafe_code)]

    use std::alloc::{GlobalAlloc, Layout, System};

    use super::Cell;

    thread_local! {
        // `const`: reading it never allocates, so the allocator may use it.
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// Allocations made by this thread so far.
    pub(crate) fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    struct Counting;

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    fn count() {
        // `try_with`: the slot may be gone while the thread exits.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

use counting_alloc::allocations;

/// A POST with five headers (a bearer token among them), a JSON body and a namespace.
fn request() -> Request<Full<Bytes>> {
    let mut request = Request::post("https://api.example.invalid/admin/realms/a/users?brief=true")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        .header("user-agent", "pacer-test/0.1")
        .header("x-request-id", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736")
        .body(Full::new(Bytes::from_static(br#"{"username":"alice"}"#)))
        .unwrap();
    request.extensions_mut().insert(Namespace::new("tenant-a"));
    request
}

fn ok(req: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    drop(req);
    ready(Ok(Response::new(Full::new(Bytes::from_static(b"{}")))))
}

/// Polls a future that must complete on its first poll (nothing on the happy path waits).
fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the happy path must not wait"),
    }
}

/// Allocations per request through `svc`, beyond those of building the request (clones of
/// one template, made before counting), after a warm-up that fills the layers' caches.
fn allocations_per_request<S, B>(svc: &mut S) -> u64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    const REQUESTS: u64 = 1_000;
    let template = request();
    let send = |svc: &mut S, req| {
        let response = now(now(svc.ready()).unwrap().call(req)).unwrap();
        drop(response);
    };
    for _ in 0..10 {
        send(svc, template.clone());
    }
    let requests: Vec<_> = (0..REQUESTS).map(|_| template.clone()).collect();
    let before = allocations();
    for req in requests {
        send(svc, req);
    }
    let spent = allocations() - before;
    assert_eq!(
        spent % REQUESTS,
        0,
        "every request should allocate the same: {spent} for {REQUESTS}"
    );
    spent / REQUESTS
}

/// Allocations of one copy of the request head, as the retry layer makes it of a request
/// cloned from a template (the first clone of a header value built from a `&str` moves its
/// bytes to a shared buffer; later clones only count references).
fn head_copy() -> u64 {
    let template = request();
    let (parts, _) = template.clone().into_parts();
    let before = allocations();
    let copy = parts.clone();
    let spent = allocations() - before;
    drop(copy);
    spent
}

#[test]
fn only_the_retry_layer_allocates_and_only_its_copy_of_the_request_head() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let events = Events::new(metrics.clone());
    let bare = tower::service_fn(ok);
    assert_eq!(allocations_per_request(&mut bare.clone()), 0);

    let copy = head_copy();
    assert!(
        copy > 0,
        "the request head has headers and extensions to copy"
    );

    let mut metrics_only = MetricsLayer::new(metrics.clone()).layer(bare);
    assert_eq!(
        allocations_per_request(&mut metrics_only),
        0,
        "MetricsLayer"
    );
    let mut retry_after = RetryAfterLayer::new().observer(events.clone()).layer(bare);
    assert_eq!(
        allocations_per_request(&mut retry_after),
        0,
        "RetryAfterLayer"
    );
    let mut rate_limit = RateLimitLayer::new(open_limiter(events.clone()).unwrap()).layer(bare);
    assert_eq!(
        allocations_per_request(&mut rate_limit),
        0,
        "RateLimitLayer"
    );
    let mut retry = RetryLayer::new(RetryPolicy::new().observer(events.clone())).layer(bare);
    assert_eq!(allocations_per_request(&mut retry), copy, "RetryLayer");

    let mut stack = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .layer(RetryLayer::new(RetryPolicy::new().observer(events.clone())))
        .layer(RetryAfterLayer::new().observer(events.clone()))
        .layer(RateLimitLayer::new(open_limiter(events).unwrap()))
        .service(bare);
    assert_eq!(allocations_per_request(&mut stack), copy, "the four layers");
}
