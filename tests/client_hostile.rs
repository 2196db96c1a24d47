//! The ready client against the hostile server, on real sockets: the async
//! `pacer::client::Client` read through `collect_responses` (as pacer-admin and
//! pacer-inventory read it) and `pacer::client::blocking::Client`. Each call ends with a
//! typed error (or, for endless throttling, the last `429`) within its configured bound:
//! `timeout_secs` 1 s, `deadline_secs` 3 s, checked against `std::time::Instant` with 2 s
//! of slack, since these are real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use pacer::BoxError;
use pacer::client::{Client, ReadTimeout, collect_responses};
use pacer::config::Config;
use pacer::retry::DeadlineExceeded;
use pacer_testbed::hostile::{Behaviour, HostileServer, Rule};
use tower::ServiceExt;

const DEADLINE: Duration = Duration::from_secs(3);
const SLACK: Duration = Duration::from_secs(2);
/// Past this the call is taken to hang (today's code, for the body cases).
const HANG: Duration = Duration::from_secs(20);
/// The cap of the async buffered reads (the blocking client's is 64 MiB).
const CAP: usize = 1024 * 1024;
const PATH: &str = "/api/items";

fn config() -> Config {
    let mut config = Config {
        timeout_secs: Some(1.0),
        deadline_secs: Some(DEADLINE.as_secs_f64()),
        read_timeout_secs: Some(1.0),
        pool_idle_timeout_secs: Some(0.0),
        ..Config::default()
    };
    config.retry.backoff_base_secs = 0.05;
    config.retry.backoff_max_secs = 0.2;
    config.retry_after.max_secs = 10.0;
    config
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// What the caller got, in a form the tests compare.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// `DeadlineExceeded`, the attempt's `Elapsed`, or a `ReadTimeout`.
    Timeout,
    /// hyper's error (a truncated, reset or refused message).
    Hyper,
    /// The length limit of the buffered read.
    TooLong,
    /// A response (the last one, when retries gave up).
    Status(StatusCode),
    Other(String),
}

fn outcome(result: Result<Response<Bytes>, BoxError>) -> Outcome {
    let error = match result {
        Ok(response) => return Outcome::Status(response.status()),
        Err(error) => error,
    };
    // Nothing holding the request's query string leaks into the error.
    for text in [format!("{error:?}"), error.to_string()] {
        assert!(!text.contains("canary"), "{text}");
    }
    let e: &(dyn StdError + 'static) = &*error;
    if chain(e).any(|e| {
        e.is::<DeadlineExceeded>()
            || e.is::<ReadTimeout>()
            || e.is::<tower::timeout::error::Elapsed>()
    }) {
        Outcome::Timeout
    } else if chain(e).any(|e| e.is::<http_body_util::LengthLimitError>()) {
        Outcome::TooLong
    } else if chain(e).any(|e| e.is::<hyper::Error>()) {
        Outcome::Hyper
    } else {
        Outcome::Other(format!("{error:?}"))
    }
}

fn url(server: &HostileServer) -> String {
    format!("{}{PATH}?api_key=canary", server.url())
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

/// One call of the async client through `collect_responses`; (outcome, elapsed, requests
/// the server read).
async fn call_async(behaviour: Behaviour, config: Config) -> (Outcome, Duration, u64) {
    let server = HostileServer::builder()
        .rule(Rule::new(PATH, behaviour))
        .start()
        .await
        .unwrap();
    let client = Client::from_config(&config).unwrap();
    let service = collect_responses(client, CAP);
    let started = Instant::now();
    let result = tokio::time::timeout(HANG, service.oneshot(get(&url(&server))))
        .await
        .expect("the call hangs");
    let elapsed = started.elapsed();
    (outcome(result), elapsed, server.count(PATH))
}

/// One call of the blocking client, from a thread of its own, the server on a runtime
/// of the test's.
fn call_blocking(behaviour: Behaviour, config: Config) -> (Outcome, Duration, u64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(
            HostileServer::builder()
                .rule(Rule::new(PATH, behaviour))
                .start(),
        )
        .unwrap();
    let client = pacer::client::blocking::Client::from_config(&config).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let target = url(&server);
    let started = Instant::now();
    std::thread::spawn(move || {
        let result = client.send(get(&target));
        let _ = tx.send((outcome(result), started.elapsed()));
    });
    let (outcome, elapsed) = rx.recv_timeout(HANG).expect("the call hangs");
    (outcome, elapsed, server.count(PATH))
}

fn within(elapsed: Duration, bound: Duration) {
    assert!(elapsed < bound + SLACK, "took {elapsed:?}, bound {bound:?}");
}

macro_rules! both {
    ($name:ident, $behaviour:expr, $config:expr, |$outcome:ident, $elapsed:ident, $requests:ident| $check:block) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_client() {
                let ($outcome, $elapsed, $requests) = call_async($behaviour, $config).await;
                $check
            }

            #[test]
            fn blocking_client() {
                let ($outcome, $elapsed, $requests) = call_blocking($behaviour, $config);
                $check
            }
        }
    };
}

// A body dripping a byte every 200 ms (1000 bytes: 200 s) outlasts every 1 s attempt; the
// retries end at the 3 s deadline. Today the read outside the stack waits the 200 s.
both!(
    dripping_body,
    Behaviour::DripBody {
        interval: Duration::from_millis(200)
    },
    config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::Timeout);
        within(elapsed, DEADLINE);
        assert!(requests >= 2, "an idempotent GET is retried: {requests}");
    }
);

// 10 bytes, then silence: today it hangs forever.
both!(
    stalled_body,
    Behaviour::StallBody,
    config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::Timeout);
        within(elapsed, DEADLINE);
        assert!(requests >= 2, "an idempotent GET is retried: {requests}");
    }
);

// 100 of 1000 announced bytes, then FIN: an incomplete body, a failed attempt retried (today
// it is not retried, the read being outside the retry layer).
both!(
    truncated_body,
    Behaviour::TruncatedBody,
    config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::Hyper);
        within(elapsed, DEADLINE);
        assert_eq!(requests, 6, "every attempt of the GET was made");
    }
);

// 100 bytes, then RST.
both!(
    reset_mid_body,
    Behaviour::ResetInBody,
    config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::Hyper);
        within(elapsed, DEADLINE);
        assert_eq!(requests, 6, "every attempt of the GET was made");
    }
);

both!(
    stalled_head,
    Behaviour::StallHead,
    config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::Timeout);
        within(elapsed, DEADLINE);
        assert!(requests >= 2, "{requests}");
    }
);

// One 8 MiB header line: hyper refuses the head at its size bound.
both!(
    gigantic_headers,
    Behaviour::HugeHeader {
        bytes: 8 * 1024 * 1024
    },
    config(),
    |outcome, elapsed, _requests| {
        assert_eq!(outcome, Outcome::Hyper);
        within(elapsed, DEADLINE);
    }
);

// `Content-Length` 10 GiB streamed at full speed: refused at the cap, and not retried
// (a second attempt would not be shorter).
both!(
    body_larger_than_the_cap,
    Behaviour::HugeBody,
    config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::TooLong);
        within(elapsed, DEADLINE);
        assert_eq!(requests, 1);
    }
);

// `429` with `Retry-After` 1, 2, 4, ... s: the waits stop at the deadline; the caller gets
// the last 429 (the retry layer never starts a sleep that cannot end before the deadline)
// or the deadline error.
both!(
    endless_429_with_growing_retry_after,
    Behaviour::ThrottleGrowing,
    config(),
    |outcome, elapsed, requests| {
        assert!(
            matches!(
                outcome,
                Outcome::Timeout | Outcome::Status(StatusCode::TOO_MANY_REQUESTS)
            ),
            "{outcome:?}"
        );
        within(elapsed, DEADLINE);
        assert!(requests <= 3, "{requests}");
    }
);

fn slow_config() -> Config {
    let mut config = config();
    // The attempt timeout alone would let the body finish: only the deadline ends it.
    config.timeout_secs = Some(30.0);
    config
}

// A byte every 10 ms: 1000 bytes take 10 s, every byte is progress (no read timeout), the
// attempt timeout is 30 s: only the 3 s deadline ends the call. Today the read outside the
// stack runs the 10 s and answers 200.
both!(
    slow_drip_past_the_deadline,
    Behaviour::DripBody {
        interval: Duration::from_millis(10)
    },
    slow_config(),
    |outcome, elapsed, requests| {
        assert_eq!(outcome, Outcome::Timeout);
        within(elapsed, DEADLINE);
        assert_eq!(requests, 1);
    }
);
