//! The `Retry-After` pause gate holds a request for a bounded total time: a pause pushed back
//! again and again (a server answering every probe with a fresh `Retry-After`) does not hold a
//! waiting request past `max_delay`, nor past the retry deadline. It then fails with the error
//! a too-long `Retry-After` gives, [`RetryAfterExceeded`].

#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use pacer::BoxError;
use pacer::retry::{Backoff, DeadlineExceeded, RetryAfterExceeded, RetryLayer, RetryPolicy};
use pacer::retry_after::{PauseGate, PauseKey, RetryAfterLayer};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

const MAX_DELAY: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(1);

/// A server that answers every request with `429` and `Retry-After: 10`, counting requests.
fn always_busy() -> (
    Arc<AtomicU32>,
    impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<Empty<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Empty<Bytes>>, Infallible>> + Send,
    > + Clone
    + Send
    + 'static,
) {
    let sent = Arc::new(AtomicU32::new(0));
    let count = sent.clone();
    let svc = service_fn(move |_req: Request<Full<Bytes>>| {
        count.fetch_add(1, Ordering::SeqCst);
        let res = Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", "10")
            .body(Empty::new())
            .unwrap();
        async move { Ok::<_, Infallible>(res) }
    });
    (sent, svc)
}

fn gate() -> PauseGate {
    PauseGate::builder().seed(3).release_window(WINDOW).build()
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/items")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(1_000)
        .backoff(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
        ))
        .retry_after_cap(MAX_DELAY)
        .without_budget()
        .seed(1)
}

#[tokio::test(start_paused = true)]
async fn a_pause_extended_again_and_again_does_not_hold_a_request_past_max_delay() {
    let (sent, upstream) = always_busy();
    let stack = RetryLayer::new(policy()).layer(
        RetryAfterLayer::new()
            .with_gate(gate())
            .max_delay(MAX_DELAY)
            .layer(upstream),
    );
    // The prober: retries its 429s for ever, each answer pushing the shared pause back 10 s.
    let prober = tokio::spawn(stack.clone().oneshot(get()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(sent.load(Ordering::SeqCst) >= 1);

    // A caller arriving while the upstream is paused is held; the pause keeps moving.
    let t0 = Instant::now();
    let error = stack.clone().oneshot(get()).await.unwrap_err();
    let held = t0.elapsed();
    let exceeded = error
        .downcast_ref::<RetryAfterExceeded>()
        .unwrap_or_else(|| panic!("not a RetryAfterExceeded: {error}"));
    assert_eq!(exceeded.cap(), MAX_DELAY);
    assert!(exceeded.requested() > MAX_DELAY, "{exceeded:?}");
    assert_eq!(exceeded.attempts(), 0, "refused before it was sent");
    assert!(held <= MAX_DELAY + WINDOW, "held {held:?}");
    // It was held for more than one pause: the extensions were honoured up to the bound.
    assert!(held > Duration::from_secs(10), "held {held:?}");
    // The server kept pushing the pause back meanwhile.
    assert!(sent.load(Ordering::SeqCst) >= 3);
    prober.abort();
}

#[tokio::test(start_paused = true)]
async fn the_retry_deadline_ends_the_hold_earlier() {
    let (_sent, upstream) = always_busy();
    let deadline = Duration::from_secs(15);
    let stack = RetryLayer::new(policy().deadline(deadline)).layer(
        RetryAfterLayer::new()
            .with_gate(gate())
            .max_delay(MAX_DELAY)
            .layer(upstream),
    );
    let prober = tokio::spawn(
        RetryLayer::new(policy())
            .layer(stack.get_ref().clone())
            .oneshot(get()),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    let error = stack.clone().oneshot(get()).await.unwrap_err();
    assert!(
        error.downcast_ref::<DeadlineExceeded>().is_some(),
        "not a DeadlineExceeded: {error}"
    );
    assert_eq!(t0.elapsed(), deadline);
    prober.abort();
}

#[tokio::test(start_paused = true)]
async fn a_shared_pause_longer_than_the_cap_refuses_at_once() {
    let gate = gate();
    let key = PauseKey::authority("api.test");
    // Another layer on the same gate, with a longer cap, paused the upstream for 2 minutes.
    gate.pause(key, Duration::from_secs(120));
    let upstream = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let svc = RetryAfterLayer::new()
        .with_gate(gate)
        .max_delay(MAX_DELAY)
        .layer(upstream);
    let t0 = Instant::now();
    let error: BoxError = svc
        .oneshot(Request::get("http://api.test/").body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), Duration::ZERO);
    let exceeded = error.downcast_ref::<RetryAfterExceeded>().unwrap();
    assert_eq!(exceeded.requested(), Duration::from_secs(120));
    assert_eq!(exceeded.cap(), MAX_DELAY);
}

#[tokio::test(start_paused = true)]
async fn a_pause_within_the_cap_still_lets_the_request_through() {
    let gate = gate();
    gate.pause(PauseKey::authority("api.test"), MAX_DELAY);
    let upstream = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let svc = RetryAfterLayer::new()
        .with_gate(gate)
        .max_delay(MAX_DELAY)
        .layer(upstream);
    let t0 = Instant::now();
    svc.oneshot(Request::get("http://api.test/").body(()).unwrap())
        .await
        .unwrap();
    let held = t0.elapsed();
    assert!(held >= MAX_DELAY && held < MAX_DELAY + WINDOW, "{held:?}");
}
