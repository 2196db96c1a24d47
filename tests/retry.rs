//! Behaviour of `pacer::retry` through a scripted service, with paused tokio time.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, StreamBody};
use pacer::body::ReplayBody;
use pacer::retry::{
    Backoff, BoxError, DeadlineExceeded, Idempotent, Jitter, RetryAfterExceeded, RetryAfterMode,
    RetryInfo, RetryLayer, RetryPolicy,
};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

/// One scripted answer.
#[derive(Clone)]
enum Step {
    Status(u16, Option<&'static str>),
    Refused,
    Timeout,
    Reset,
    /// Never answers.
    Hang,
    /// A response with a body whose end is observed.
    Tracked(u16, usize, Arc<AtomicBool>),
}

fn st(code: u16) -> Step {
    Step::Status(code, None)
}

fn ra(code: u16, retry_after: &'static str) -> Step {
    Step::Status(code, Some(retry_after))
}

#[derive(Debug)]
struct Sent {
    method: Method,
    at: Duration,
    body: Bytes,
}

/// A scripted server: answers with the steps in order, repeating the last one forever, and
/// records each request's method, time (since creation) and body.
#[derive(Clone)]
struct Scripted {
    steps: Arc<Mutex<VecDeque<Step>>>,
    last: Arc<Mutex<Option<Step>>>,
    log: Arc<Mutex<Vec<Sent>>>,
    epoch: Instant,
    /// `poll_ready` stays pending forever once this many calls were made.
    ready_limit: usize,
    calls: Arc<AtomicUsize>,
}

impl Scripted {
    fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: Arc::new(Mutex::new(steps.into_iter().collect())),
            last: Arc::new(Mutex::new(None)),
            log: Arc::default(),
            epoch: Instant::now(),
            ready_limit: usize::MAX,
            calls: Arc::default(),
        }
    }

    fn never_ready_after(mut self, calls: usize) -> Self {
        self.ready_limit = calls;
        self
    }

    fn sends(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn times(&self) -> Vec<Duration> {
        self.log.lock().unwrap().iter().map(|s| s.at).collect()
    }

    fn bodies(&self) -> Vec<Bytes> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.body.clone())
            .collect()
    }

    fn next_step(&self) -> Step {
        let mut last = self.last.lock().unwrap();
        let step = self
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| last.clone())
            .unwrap();
        *last = Some(step.clone());
        step
    }
}

type ResBody = http_body_util::Either<Full<Bytes>, TrackedBody>;

impl<B> Service<Request<B>> for Scripted
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.calls.load(Ordering::SeqCst) >= self.ready_limit {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let at = self.epoch.elapsed();
        let step = self.next_step();
        let log = Arc::clone(&self.log);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map_err(Into::into)?.to_bytes();
            log.lock().unwrap().push(Sent {
                method: parts.method,
                at,
                body,
            });
            let n = log.lock().unwrap().len();
            match step {
                Step::Status(code, retry_after) => {
                    let mut res = Response::builder()
                        .status(code)
                        .header("x-attempt", n.to_string());
                    if let Some(v) = retry_after {
                        res = res.header("retry-after", v);
                    }
                    Ok(res
                        .body(http_body_util::Either::Left(Full::new(Bytes::new())))
                        .unwrap())
                }
                Step::Tracked(code, len, done) => Ok(Response::builder()
                    .status(code)
                    .body(http_body_util::Either::Right(TrackedBody {
                        left: len,
                        done,
                    }))
                    .unwrap()),
                Step::Refused => Err(Box::new(Wrapped(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                ))) as BoxError),
                Step::Timeout => Err(Box::new(tower::timeout::error::Elapsed::new()) as BoxError),
                Step::Hang => std::future::pending().await,
                Step::Reset => Err(Box::new(Wrapped(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                ))) as BoxError),
            }
        })
    }
}

/// An error that wraps its cause, as clients do.
#[derive(Debug)]
struct Wrapped(std::io::Error);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("client error")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A response body of `left` bytes, one byte per frame, that flags when it was read to the end.
#[derive(Debug)]
struct TrackedBody {
    left: usize,
    done: Arc<AtomicBool>,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            self.done.store(true, Ordering::SeqCst);
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left as u64)
    }
}

/// A deterministic policy: no jitter, 1 s base, no budget.
fn policy() -> RetryPolicy {
    RetryPolicy::new()
        .backoff(Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jitter(Jitter::None))
        .without_budget()
}

fn req(method: Method) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri("http://api.invalid/v1/items")
        .body(Full::from("payload"))
        .unwrap()
}

async fn run<B>(
    policy: RetryPolicy,
    server: &Scripted,
    req: Request<B>,
) -> (Result<Response<ResBody>, BoxError>, Duration)
where
    B: Body<Data = Bytes> + Send + 'static + pacer::body::TryCloneBody,
    B::Error: Into<BoxError>,
{
    let svc = RetryLayer::new(policy).layer(server.clone());
    let start = Instant::now();
    let out = svc.oneshot(req).await;
    (out, start.elapsed())
}

fn info(res: &Response<ResBody>) -> RetryInfo {
    *res.extensions().get::<RetryInfo>().unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_after_5s_then_200_takes_exactly_5s() {
    let server = Scripted::new([ra(429, "5"), st(200)]);
    let (res, took) = run(policy(), &server, req(Method::GET)).await;
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(took, Duration::from_secs(5));
    assert_eq!(server.times(), [Duration::ZERO, Duration::from_secs(5)]);
    assert_eq!(info(&res).attempts, 2);
    assert_eq!(info(&res).last_retry_after, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn first_attempt_success_is_untouched() {
    let server = Scripted::new([st(200)]);
    let (res, took) = run(RetryPolicy::new(), &server, req(Method::GET)).await;
    let res = res.unwrap();
    assert_eq!(took, Duration::ZERO);
    assert!(res.extensions().get::<RetryInfo>().is_none());
    assert_eq!(server.sends(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_above_cap_is_clamped_to_60s() {
    let server = Scripted::new([ra(503, "120"), st(200)]);
    let (res, took) = run(policy(), &server, req(Method::GET)).await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(took, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn retry_after_fail_fast_carries_requested_delay() {
    let server = Scripted::new([ra(429, "120"), st(200)]);
    let policy = policy().retry_after_mode(RetryAfterMode::FailFast);
    let (res, took) = run(policy, &server, req(Method::GET)).await;
    let err = res.unwrap_err();
    let exceeded = err.downcast_ref::<RetryAfterExceeded>().unwrap();
    assert_eq!(exceeded.requested(), Duration::from_secs(120));
    assert_eq!(exceeded.cap(), Duration::from_secs(60));
    assert_eq!(took, Duration::ZERO);
    assert_eq!(server.sends(), 1);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_within_cap_waits_as_asked() {
    let server = Scripted::new([ra(429, "60"), st(200)]);
    let policy = policy().retry_after_mode(RetryAfterMode::FailFast);
    let (res, took) = run(policy, &server, req(Method::GET)).await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(took, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn garbage_retry_after_falls_back_to_backoff() {
    for garbage in ["soon", "1.5", "-5", "", "5s", "0x10", "५"] {
        let server = Scripted::new([ra(429, garbage), st(200)]);
        let (res, took) = run(policy(), &server, req(Method::GET)).await;
        let res = res.unwrap();
        assert_eq!(res.status(), 200, "{garbage:?}");
        assert_eq!(took, Duration::from_secs(1), "{garbage:?}: backoff base");
        assert_eq!(info(&res).last_retry_after, None);
    }
}

#[tokio::test(start_paused = true)]
async fn exhaustion_after_max_retries_plus_one_sends_returns_last_response() {
    let server = Scripted::new([st(503)]);
    let (res, took) = run(policy(), &server, req(Method::GET)).await;
    let res = res.unwrap();
    assert_eq!(server.sends(), 6);
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.headers()["x-attempt"],
        "6",
        "the last response, unchanged"
    );
    assert_eq!(
        info(&res),
        info(&res),
        "RetryInfo is attached: attempts {}",
        info(&res).attempts
    );
    assert_eq!(info(&res).attempts, 6);
    let secs: Vec<u64> = server.times().iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [0, 1, 3, 7, 15, 31], "1 s * 2^n between sends");
    assert_eq!(took, Duration::from_secs(31));

    let server = Scripted::new([st(500)]);
    let (res, _) = run(policy().max_retries(2), &server, req(Method::GET)).await;
    assert_eq!(server.sends(), 3);
    assert_eq!(info(&res.unwrap()).attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn post_retried_on_429() {
    let server = Scripted::new([st(429), st(200)]);
    let (res, _) = run(policy(), &server, req(Method::POST)).await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(server.sends(), 2);
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.method == Method::POST)
    );
}

#[tokio::test(start_paused = true)]
async fn post_not_retried_on_503_nor_timeout_nor_reset() {
    for (step, code) in [
        (ra(503, "1"), Some(503)),
        (st(502), Some(502)),
        (Step::Timeout, None),
        (Step::Reset, None),
    ] {
        let server = Scripted::new([step, st(200)]);
        let (res, took) = run(policy(), &server, req(Method::POST)).await;
        assert_eq!(
            server.sends(),
            1,
            "a POST that may have been processed is sent once"
        );
        assert_eq!(took, Duration::ZERO);
        match code {
            Some(code) => {
                let res = res.unwrap();
                assert_eq!(res.status(), code);
                assert_eq!(info(&res).attempts, 1);
            }
            None => assert!(res.is_err()),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn get_retried_on_timeout_and_reset() {
    for step in [Step::Timeout, Step::Reset, st(408), st(504)] {
        let server = Scripted::new([step, st(200)]);
        let (res, _) = run(policy(), &server, req(Method::GET)).await;
        assert_eq!(res.unwrap().status(), 200);
        assert_eq!(server.sends(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_exhaustion_returns_the_error_unchanged() {
    let server = Scripted::new([Step::Timeout]);
    let (res, _) = run(policy().max_retries(1), &server, req(Method::GET)).await;
    assert!(res.unwrap_err().is::<tower::timeout::error::Elapsed>());
    assert_eq!(server.sends(), 2);
}

#[tokio::test(start_paused = true)]
async fn post_retried_when_connection_refused() {
    let server = Scripted::new([Step::Refused, Step::Refused, st(201)]);
    let (res, took) = run(policy(), &server, req(Method::POST)).await;
    assert_eq!(res.unwrap().status(), 201);
    assert_eq!(server.sends(), 3);
    assert_eq!(took, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn post_with_idempotency_key_or_extension_retried_on_503() {
    let server = Scripted::new([st(503), st(200)]);
    let mut r = req(Method::POST);
    r.headers_mut().insert(
        "idempotency-key",
        "8e03978e-40d5-43e8-bc93-6894a57f9324".parse().unwrap(),
    );
    let (res, _) = run(policy(), &server, r).await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(server.sends(), 2);

    let server = Scripted::new([st(503), st(200)]);
    let mut r = req(Method::PATCH);
    r.extensions_mut().insert(Idempotent);
    let (res, _) = run(policy(), &server, r).await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(server.sends(), 2);
}

#[tokio::test(start_paused = true)]
async fn deadline_no_sleep_that_cannot_end_before_it() {
    // Backoff 1, 2, 4, 8 s: sends at 0, 1, 3, 7; the next sleep (8 s) would end at 15 s > 10 s.
    let server = Scripted::new([st(503)]);
    let (res, took) = run(
        policy().deadline(Duration::from_secs(10)),
        &server,
        req(Method::GET),
    )
    .await;
    let res = res.unwrap();
    assert_eq!(server.sends(), 4);
    assert_eq!(
        took,
        Duration::from_secs(7),
        "returned at once, no doomed sleep"
    );
    assert_eq!(info(&res).attempts, 4);

    // A server delay that cannot fit is not waited for either.
    let server = Scripted::new([ra(429, "30"), st(200)]);
    let (res, took) = run(
        policy().deadline(Duration::from_secs(10)),
        &server,
        req(Method::GET),
    )
    .await;
    assert_eq!(res.unwrap().status(), 429);
    assert_eq!(took, Duration::ZERO);
    assert_eq!(server.sends(), 1);

    // A sleep ending exactly at the deadline leaves no time to send: not started.
    let server = Scripted::new([ra(429, "10"), st(200)]);
    let (res, _) = run(
        policy().deadline(Duration::from_secs(10)),
        &server,
        req(Method::GET),
    )
    .await;
    assert_eq!(res.unwrap().status(), 429);
    let server = Scripted::new([ra(429, "9"), st(200)]);
    let (res, took) = run(
        policy().deadline(Duration::from_secs(10)),
        &server,
        req(Method::GET),
    )
    .await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(took, Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn dropped_future_stops_retrying_at_once() {
    let server = Scripted::new([st(503)]);
    let svc = RetryLayer::new(policy()).layer(server.clone());
    let fut = svc.oneshot(req(Method::GET));
    // Sends at 0 s and 1 s; dropped at 1.5 s while sleeping before the third.
    let out = tokio::time::timeout(Duration::from_millis(1500), fut).await;
    assert!(out.is_err());
    assert_eq!(server.sends(), 2);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(server.sends(), 2, "no send after the drop");
}

#[tokio::test(start_paused = true)]
async fn dropped_future_polled_by_hand_stops_retrying() {
    let server = Scripted::new([st(503)]);
    let svc = RetryLayer::new(policy()).layer(server.clone());
    let mut task = tokio_test::task::spawn(svc.oneshot(req(Method::GET)));
    assert!(task.poll().is_pending(), "sleeping before the first retry");
    assert_eq!(server.sends(), 1);
    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(!task.is_woken());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(task.is_woken());
    drop(task);
    tokio::time::advance(Duration::from_secs(600)).await;
    assert_eq!(server.sends(), 1);
}

#[tokio::test(start_paused = true)]
async fn full_body_replayed_byte_identical() {
    let payload = Bytes::from((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
    let server = Scripted::new([st(503), st(502), st(200)]);
    let r = Request::put("http://api.invalid/v1/items/7")
        .body(Full::new(payload.clone()))
        .unwrap();
    let (res, _) = run(policy(), &server, r).await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(server.bodies(), [payload.clone(), payload.clone(), payload]);
}

fn stream_body(
    chunks: usize,
    size: usize,
) -> ReplayBody<impl Body<Data = Bytes, Error = std::io::Error> + Send + 'static> {
    let frames = (0..chunks).map(move |i| Ok(Frame::data(Bytes::from(vec![i as u8; size]))));
    ReplayBody::with_limit(StreamBody::new(futures_util::stream::iter(frames)), 2048)
}

#[tokio::test(start_paused = true)]
async fn streaming_body_under_cap_is_replayed() {
    let server = Scripted::new([st(503), st(200)]);
    let r = Request::put("http://api.invalid/v1/items/7")
        .body(stream_body(4, 500))
        .unwrap();
    let (res, _) = run(policy(), &server, r).await;
    assert_eq!(res.unwrap().status(), 200);
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0].len(), 2000);
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test(start_paused = true)]
async fn streaming_body_over_cap_is_sent_once() {
    let server = Scripted::new([st(503), st(200)]);
    let r = Request::put("http://api.invalid/v1/items/7")
        .body(stream_body(3, 1024))
        .unwrap();
    let (res, took) = run(policy(), &server, r).await;
    let res = res.unwrap();
    assert_eq!(
        res.status(),
        503,
        "not retried: the body cannot be replayed"
    );
    assert_eq!(info(&res).attempts, 1);
    assert_eq!(took, Duration::ZERO);
    assert_eq!(server.bodies()[0].len(), 3072, "sent once, in full");
}

#[tokio::test(start_paused = true)]
async fn small_failed_response_body_is_drained_large_one_is_not() {
    let small = Arc::new(AtomicBool::new(false));
    let server = Scripted::new([Step::Tracked(503, 100, Arc::clone(&small)), st(200)]);
    let (res, _) = run(policy(), &server, req(Method::GET)).await;
    assert_eq!(res.unwrap().status(), 200);
    assert!(
        small.load(Ordering::SeqCst),
        "read to the end before the retry"
    );

    let large = Arc::new(AtomicBool::new(false));
    let server = Scripted::new([
        Step::Tracked(503, 64 * 1024 + 1, Arc::clone(&large)),
        st(200),
    ]);
    let (res, _) = run(policy(), &server, req(Method::GET)).await;
    assert_eq!(res.unwrap().status(), 200);
    assert!(
        !large.load(Ordering::SeqCst),
        "too large: dropped, not read"
    );
}

/// Runs `n` logical GETs arriving at 100 per second against a server that always fails.
async fn amplification(policy: RetryPolicy, n: u32) -> f64 {
    let server = Scripted::new([st(503)]);
    let svc = RetryLayer::new(policy).layer(server.clone());
    let done = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let svc = svc.clone();
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let res = svc.oneshot(req(Method::GET)).await.unwrap();
            assert_eq!(res.status(), 503);
            done.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), n);
    server.sends() as f64 / f64::from(n)
}

#[tokio::test(start_paused = true)]
async fn budget_caps_amplification_under_total_outage() {
    let with_budget = amplification(RetryPolicy::new().seed(1), 1000).await;
    let without = amplification(RetryPolicy::new().seed(1).without_budget(), 1000).await;
    eprintln!("sends per logical request: budget {with_budget:.3}, none {without:.3}");
    assert!(with_budget <= 1.25, "budget: {with_budget}");
    assert!(with_budget > 1.0, "the floor still allows some retries");
    assert_eq!(
        without, 6.0,
        "without a budget every request is sent max_retries + 1 times"
    );
}

#[tokio::test(start_paused = true)]
async fn budget_refills_from_successes() {
    let budget = pacer::retry::RetryBudget::builder()
        .min_retries_per_sec(0)
        .build();
    let policy = policy().budget(budget.clone());
    let server = Scripted::new([st(200)]);
    for _ in 0..10 {
        run(policy.clone(), &server, req(Method::GET))
            .await
            .0
            .unwrap();
    }
    assert!((budget.balance() - 2.0).abs() < 1e-9, "10 successes * 0.2");
    let server = Scripted::new([st(503)]);
    let (res, _) = run(policy, &server, req(Method::GET)).await;
    assert_eq!(
        server.sends(),
        3,
        "two banked retries, then the budget says no"
    );
    assert_eq!(info(&res.unwrap()).attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn zero_delay_retry_still_drains_small_body() {
    let small = Arc::new(AtomicBool::new(false));
    let server = Scripted::new([Step::Tracked(429, 10, Arc::clone(&small)), st(200)]);
    let r = req(Method::GET);
    let (res, took) = run(
        policy().backoff(Backoff::new(Duration::ZERO, Duration::ZERO)),
        &server,
        r,
    )
    .await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(took, Duration::ZERO);
    assert!(small.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn huge_retry_after_with_unbounded_cap_does_not_panic() {
    let huge = "99999999999999999999999999999";
    let unbounded = || policy().retry_after_cap(Duration::MAX);
    // With a deadline: cannot fit, returned at once.
    let server = Scripted::new([ra(429, huge), st(200)]);
    let (res, took) = run(
        unbounded().deadline(Duration::from_secs(10)),
        &server,
        req(Method::GET),
    )
    .await;
    let res = res.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(took, Duration::ZERO);
    assert_eq!(
        info(&res).last_retry_after,
        Some(Duration::from_secs(u64::MAX))
    );
    // Without: it sleeps (practically forever) instead of overflowing.
    let server = Scripted::new([ra(429, huge), st(200)]);
    let svc = RetryLayer::new(unbounded()).layer(server.clone());
    let mut task = tokio_test::task::spawn(svc.oneshot(req(Method::GET)));
    assert!(task.poll().is_pending());
    tokio::time::advance(Duration::from_secs(86_400 * 365)).await;
    assert!(task.poll().is_pending());
    assert_eq!(server.sends(), 1);
}

#[tokio::test(start_paused = true)]
async fn seeded_full_jitter_is_reproducible_and_bounded() {
    let run_once = || async {
        let server = Scripted::new([st(503)]);
        let policy = RetryPolicy::new().without_budget().seed(42);
        let (res, _) = run(policy, &server, req(Method::GET)).await;
        assert_eq!(info(&res.unwrap()).attempts, 6);
        server.times()
    };
    let a = run_once().await;
    let b = run_once().await;
    assert_eq!(a, b, "same seed, same delays");
    for (n, pair) in a.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(
            gap <= Duration::from_millis(500) * (1 << n),
            "retry {n}: {gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn deadline_cancels_an_attempt_in_flight() {
    // The second attempt (at 1 s) never answers: cut at exactly 10 s.
    let server = Scripted::new([st(503), Step::Hang]);
    let (res, took) = run(
        policy().deadline(Duration::from_secs(10)),
        &server,
        req(Method::GET),
    )
    .await;
    let err = res.unwrap_err();
    let exceeded = err.downcast_ref::<DeadlineExceeded>().unwrap();
    assert_eq!(exceeded.deadline(), Duration::from_secs(10));
    assert_eq!(exceeded.attempts(), 2);
    assert_eq!(took, Duration::from_secs(10));
    assert_eq!(server.sends(), 2);

    // Without a deadline the same request would wait forever.
    let server = Scripted::new([st(503), Step::Hang]);
    let svc = RetryLayer::new(policy()).layer(server.clone());
    let out = tokio::time::timeout(Duration::from_secs(3600), svc.oneshot(req(Method::GET))).await;
    assert!(out.is_err());
}

#[tokio::test(start_paused = true)]
async fn deadline_covers_waiting_for_the_inner_service_to_be_ready() {
    // After the first call the inner service (think: a rate limiter) is never ready again.
    let server = Scripted::new([st(503), st(200)]).never_ready_after(1);
    let (res, took) = run(
        policy().deadline(Duration::from_secs(5)),
        &server,
        req(Method::GET),
    )
    .await;
    assert!(res.unwrap_err().is::<DeadlineExceeded>());
    assert_eq!(took, Duration::from_secs(5));
    assert_eq!(server.sends(), 1);
}
