//! `pacer::auth::BearerAuthLayer` over pacer's real stack (`Retry -> RetryAfter -> RateLimit`)
//! and a scripted token endpoint and API, in paused tokio time: single flight, shared
//! failure, namespaces, cancellation, 401 replays, renewal inside the margin, hostile
//! answers and bounds, secrets.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use pacer::auth::{
    AuthError, BearerAuthLayer, ExposeSecret, Grant, InvalidAnswer, SecretString, TokenSource,
};
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use pacer::retry::{Backoff, Idempotent, Jitter, RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use pacer::{BoxError, Namespace};
use pacer_testbed::support::LogCapture;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tracing_subscriber::filter::LevelFilter;

const PASSWORD: &str = "hunter2-pa55word";
const TOKEN_PREFIX: &str = "tok-SECRET-";
const REFRESH_PREFIX: &str = "refresh-SECRET-";

/// A request the scripted upstream saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    namespace: Option<String>,
    idempotent: bool,
    authorization: Option<String>,
    at: Duration,
}

/// How the upstream answers one request.
enum Answer {
    Now(u16, String),
    After(Duration, u16, String),
    Never,
}

type Handler = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

/// The token endpoint (`/token`, `/refresh`) and the API (`/api`) in one scripted service:
/// `handler` gets each request and how many came to the same path before it (`clear` does
/// not reset that count).
#[derive(Clone)]
struct Upstream {
    log: Arc<Mutex<Vec<Seen>>>,
    per_path: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    epoch: Instant,
    handler: Arc<Handler>,
}

impl Upstream {
    fn new(handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Self {
        Upstream {
            log: Arc::default(),
            per_path: Arc::default(),
            epoch: Instant::now(),
            handler: Arc::new(handler),
        }
    }

    fn service(
        &self,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = BoxError,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        let upstream = self.clone();
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let seen = Seen {
                path: request.uri().path().to_owned(),
                namespace: request
                    .extensions()
                    .get::<Namespace>()
                    .map(|n| n.as_str().to_owned()),
                idempotent: request.extensions().get::<Idempotent>().is_some(),
                authorization: request
                    .headers()
                    .get(AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_owned()),
                at: upstream.epoch.elapsed(),
            };
            let before = {
                let mut per_path = upstream.per_path.lock().unwrap();
                let count = per_path.entry(seen.path.clone()).or_default();
                *count += 1;
                *count - 1
            };
            upstream.log.lock().unwrap().push(seen.clone());
            let answer = (upstream.handler)(&seen, before);
            async move {
                let (status, body) = match answer {
                    Answer::Now(status, body) => (status, body),
                    Answer::After(delay, status, body) => {
                        tokio::time::sleep(delay).await;
                        (status, body)
                    }
                    Answer::Never => std::future::pending().await,
                };
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                Ok::<_, BoxError>(response)
            }
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn token_json(n: usize, expires_in: u64) -> String {
    format!(r#"{{"access_token":"{TOKEN_PREFIX}{n}","expires_in":{expires_in}}}"#)
}

fn bearer(n: usize) -> String {
    format!("Bearer {TOKEN_PREFIX}{n}")
}

/// `/api` answers 200 to `accepted`'s bearer (any bearer when `None`), 401 otherwise.
fn api(seen: &Seen, accepted: Option<&str>) -> Answer {
    match (&seen.authorization, accepted) {
        (Some(_), None) => Answer::Now(200, "ok".into()),
        (Some(got), Some(want)) if got == want => Answer::Now(200, "ok".into()),
        _ => Answer::Now(401, r#"{"error":"invalid_token"}"#.into()),
    }
}

/// The test API's grant: `POST /token` with the password, `POST /refresh` with the refresh
/// token as bearer.
struct Source {
    repeatable: bool,
    password: SecretString,
}

impl Source {
    fn new(repeatable: bool) -> Self {
        Source {
            repeatable,
            password: SecretString::from(PASSWORD),
        }
    }
}

impl TokenSource for Source {
    fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError> {
        let request = match grant {
            Grant::Refresh(refresh) => Request::post("http://auth.test/refresh")
                .header(AUTHORIZATION, format!("Bearer {}", refresh.expose_secret()))
                .body(Bytes::new()),
            _ => Request::post("http://auth.test/token")
                .body(format!("password={}", self.password.expose_secret()).into()),
        };
        request.map_err(|_| AuthError::request("bad URI"))
    }

    fn is_repeatable(&self, _: &Grant<'_>) -> bool {
        self.repeatable
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(3)
        .backoff(Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jitter(Jitter::None))
        .without_budget()
}

fn limiter(per_namespace: Quota) -> RateLimiter {
    RateLimiter::builder()
        .global(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
        .per_namespace(per_namespace)
        .max_wait(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn roomy() -> RateLimiter {
    limiter(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
}

/// `auth` over pacer's stack over `upstream`.
fn stack(
    auth: BearerAuthLayer,
    limiter: RateLimiter,
    upstream: &Upstream,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = BoxError,
    Future = impl Send + 'static,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(auth)
        .layer(RetryLayer::new(policy()))
        .layer(RetryAfterLayer::new())
        .layer(RateLimitLayer::new(limiter))
        .service(upstream.service())
}

fn call(namespace: &str) -> Request<Full<Bytes>> {
    let mut request = Request::get("http://api.test/api")
        .body(Full::default())
        .unwrap();
    request
        .extensions_mut()
        .insert(Namespace::new(namespace.to_owned()));
    request
}

fn auth_error(error: &BoxError) -> &AuthError {
    error
        .downcast_ref::<AuthError>()
        .unwrap_or_else(|| panic!("not an AuthError: {error}"))
}

/// Sends `n` calls at once, each in its own task; their outcomes and when each ended.
async fn concurrently<S>(
    service: &S,
    n: usize,
) -> Vec<(Result<Response<Full<Bytes>>, BoxError>, Duration)>
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move {
                let result = service.oneshot(call(&format!("team-{i}"))).await;
                (result, start.elapsed())
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(n);
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

// 1.
#[tokio::test(start_paused = true)]
async fn a_hundred_callers_at_expiry_cause_exactly_one_token_request() {
    let upstream = Upstream::new(|seen, n| match seen.path.as_str() {
        // The token endpoint takes 200 ms, so every caller arrives while it works.
        "/token" => Answer::After(Duration::from_millis(200), 200, token_json(n, 60)),
        _ => api(seen, None),
    });
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
    service.clone().oneshot(call("warm-up")).await.unwrap();
    assert_eq!(upstream.count("/token"), 1);

    tokio::time::advance(Duration::from_secs(61)).await;
    let outcomes = concurrently(&service, 100).await;
    for (result, took) in &outcomes {
        assert_eq!(result.as_ref().unwrap().status(), StatusCode::OK);
        assert_eq!(
            *took,
            Duration::from_millis(200),
            "all waited for the one request"
        );
    }
    assert_eq!(
        upstream.count("/token"),
        2,
        "exactly one token request for 100 callers"
    );
    let renewed = bearer(1);
    let api_calls: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.path == "/api" && s.at >= Duration::from_secs(61))
        .collect();
    assert_eq!(api_calls.len(), 100);
    assert!(
        api_calls
            .iter()
            .all(|s| s.authorization.as_deref() == Some(&renewed))
    );
}

#[tokio::test(start_paused = true)]
async fn callers_inside_the_margin_never_wait_for_the_renewal() {
    let upstream = Upstream::new(|seen, n| match seen.path.as_str() {
        "/token" if n == 0 => Answer::Now(200, token_json(n, 100)),
        // The renewal takes 5 s.
        "/token" => Answer::After(Duration::from_secs(5), 200, token_json(n, 100)),
        _ => api(seen, None),
    });
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
    service.clone().oneshot(call("warm-up")).await.unwrap();
    // Renewed 30 s ahead: at 75 s the token is due but valid.
    tokio::time::advance(Duration::from_secs(75)).await;
    let outcomes = concurrently(&service, 20).await;
    for (result, took) in &outcomes {
        assert_eq!(result.as_ref().unwrap().status(), StatusCode::OK);
        assert_eq!(*took, Duration::ZERO, "the cached token, at once");
    }
    assert_eq!(
        upstream.count("/token"),
        2,
        "one early renewal for 20 callers"
    );
    // The renewal finishes on its own (5 s after it left); then callers use the new token.
    tokio::time::sleep(Duration::from_secs(6)).await;
    service.clone().oneshot(call("later")).await.unwrap();
    let last = upstream.seen().pop().unwrap();
    assert_eq!(last.authorization, Some(bearer(1)));
    assert_eq!(upstream.count("/token"), 2);
}

// 2.
#[tokio::test(start_paused = true)]
async fn a_failing_token_endpoint_fails_every_waiter_at_once_after_one_retry_cycle() {
    let upstream = Upstream::new(|seen, _| match seen.path.as_str() {
        "/token" => Answer::Now(503, "down".into()),
        _ => api(seen, None),
    });
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
    let outcomes = concurrently(&service, 50).await;
    // One retry cycle: 1 s + 2 s + 4 s of backoff between the four sends.
    for (result, took) in &outcomes {
        let error = result.as_ref().unwrap_err();
        let error = auth_error(error);
        assert!(
            matches!(error, AuthError::Status { status } if *status == StatusCode::SERVICE_UNAVAILABLE),
            "{error:?}"
        );
        assert!(!error.is_refused());
        assert_eq!(
            *took,
            Duration::from_secs(7),
            "all fail at the same instant"
        );
    }
    let tokens: Vec<_> = upstream.seen().into_iter().map(|s| s.at).collect();
    assert_eq!(
        tokens,
        [0, 1, 3, 7].map(Duration::from_secs),
        "1 + 3 retries of the one token request, nothing else"
    );
}

#[tokio::test(start_paused = true)]
async fn a_grant_that_is_not_repeatable_is_sent_once() {
    let upstream = Upstream::new(|seen, _| match seen.path.as_str() {
        "/token" => Answer::Now(503, "down".into()),
        _ => api(seen, None),
    });
    let service = stack(BearerAuthLayer::new(Source::new(false)), roomy(), &upstream);
    let error = service.oneshot(call("team-a")).await.unwrap_err();
    assert!(matches!(auth_error(&error), AuthError::Status { .. }));
    let seen = upstream.seen();
    assert_eq!(
        seen.len(),
        1,
        "a 503 to a POST that is not idempotent is not retried"
    );
    assert!(!seen[0].idempotent);
}

// 3.
#[tokio::test(start_paused = true)]
async fn an_exhausted_tenant_bucket_does_not_delay_another_tenants_first_call() {
    let upstream = Upstream::new(|seen, n| match seen.path.as_str() {
        "/token" => Answer::Now(200, token_json(n, 300)),
        _ => api(seen, None),
    });
    // One request per 10 s per tenant.
    let limiter = limiter(Quota::every(Duration::from_secs(10)).unwrap());
    limiter.try_acquire(&Namespace::new("team-a")).unwrap();
    assert!(
        limiter.try_acquire(&Namespace::new("team-a")).is_err(),
        "team-a is empty"
    );
    let service = stack(
        BearerAuthLayer::builder(Source::new(true))
            .namespace(Namespace::new("token-endpoint"))
            .build(),
        limiter,
        &upstream,
    );
    let start = Instant::now();
    // team-a's call comes first and starts the token request; team-b's needs the token too.
    let a = tokio::spawn(service.clone().oneshot(call("team-a")));
    tokio::task::yield_now().await;
    let b = tokio::spawn(service.clone().oneshot(call("team-b")));
    b.await.unwrap().unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "team-b did not wait for team-a's bucket"
    );
    a.await.unwrap().unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "team-a waited for its own bucket"
    );

    let seen = upstream.seen();
    assert_eq!(seen[0].path, "/token");
    assert_eq!(seen[0].namespace.as_deref(), Some("token-endpoint"));
    assert!(
        seen[0].idempotent,
        "the source says its grant may be repeated"
    );
    let b = seen
        .iter()
        .find(|s| s.namespace.as_deref() == Some("team-b"))
        .unwrap();
    assert_eq!(b.at, Duration::ZERO);
    let a = seen
        .iter()
        .find(|s| s.namespace.as_deref() == Some("team-a"))
        .unwrap();
    assert_eq!(a.at, Duration::from_secs(10));
}

// 4.
#[tokio::test(start_paused = true)]
async fn dropping_the_caller_that_started_a_renewal_does_not_fail_the_others() {
    let upstream = Upstream::new(|seen, n| match seen.path.as_str() {
        "/token" => Answer::After(Duration::from_secs(1), 200, token_json(n, 300)),
        _ => api(seen, None),
    });
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);

    let mut starter = tokio_test::task::spawn(service.clone().oneshot(call("team-a")));
    assert!(starter.poll().is_pending(), "started the token request");
    let mut waiter = tokio_test::task::spawn(service.clone().oneshot(call("team-b")));
    assert!(waiter.poll().is_pending(), "waits for it");
    drop(starter);
    // The token request runs in a task of its own: let it send.
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(waiter.poll().is_pending());
    tokio::time::advance(Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    let response = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("the waiter ends")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.count("/token"), 1);
    assert_eq!(upstream.count("/api"), 1, "only the waiter's call went out");

    // Every caller may give up: the token request still fills the cache.
    tokio::time::advance(Duration::from_secs(301)).await;
    let mut gone = tokio_test::task::spawn(service.clone().oneshot(call("team-a")));
    assert!(gone.poll().is_pending());
    drop(gone);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(upstream.count("/token"), 2);
    let start = Instant::now();
    service.clone().oneshot(call("team-c")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "the cached token");
    assert_eq!(upstream.count("/token"), 2);
    assert_eq!(
        upstream.seen().pop().unwrap().authorization,
        Some(bearer(1))
    );
}

// 5.
#[tokio::test(start_paused = true)]
async fn a_401_renews_once_and_replays_once_and_a_second_401_is_returned() {
    let accepted = Arc::new(Mutex::new(None::<String>));
    let upstream = {
        let accepted = Arc::clone(&accepted);
        Upstream::new(move |seen, n| match seen.path.as_str() {
            "/token" => {
                *accepted.lock().unwrap() = Some(bearer(n));
                Answer::Now(200, token_json(n, 300))
            }
            // 100 ms per call, so that ten callers are all out with the old token at once.
            _ => match api(seen, accepted.lock().unwrap().as_deref()) {
                Answer::Now(status, body) => {
                    Answer::After(Duration::from_millis(100), status, body)
                }
                other => other,
            },
        })
    };
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
    service.clone().oneshot(call("team-a")).await.unwrap();

    // The server revokes the token: ten callers meet a 401 with it, one renewal serves all.
    *accepted.lock().unwrap() = Some("revoked".into());
    upstream.clear();
    let outcomes = concurrently(&service, 10).await;
    for (result, _) in &outcomes {
        assert_eq!(
            result.as_ref().unwrap().status(),
            StatusCode::OK,
            "replayed"
        );
    }
    let seen = upstream.seen();
    assert_eq!(upstream.count("/token"), 1, "one renewal for ten 401s");
    assert_eq!(upstream.count("/api"), 20, "each call sent twice");
    let replays = seen.iter().filter(|s| s.authorization == Some(bearer(1)));
    assert_eq!(replays.count(), 10);

    // A server that refuses every token: one renewal, one replay, the second 401 returned.
    *accepted.lock().unwrap() = None;
    let refusing = {
        let upstream = Upstream::new(|seen, n| match seen.path.as_str() {
            "/token" => Answer::Now(200, token_json(n, 300)),
            _ => api(seen, Some("nothing")),
        });
        let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
        let response = service.clone().oneshot(call("team-a")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        upstream
    };
    let paths: Vec<_> = refusing.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/token", "/api", "/token", "/api"]);
}

// 6.
#[tokio::test(start_paused = true)]
async fn a_renewal_failing_inside_the_margin_keeps_the_valid_token_until_it_expires() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let upstream = {
        let healthy = Arc::clone(&healthy);
        Upstream::new(move |seen, n| match seen.path.as_str() {
            "/token" if healthy.load(Ordering::SeqCst) => Answer::Now(200, token_json(n, 100)),
            "/token" => Answer::Now(400, r#"{"error":"temporarily_unavailable"}"#.into()),
            _ => api(seen, None),
        })
    };
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
    service.clone().oneshot(call("team-a")).await.unwrap();
    healthy.store(false, Ordering::SeqCst);

    // Inside the margin (renewal due at 70 s): the renewal fails, callers keep the token.
    tokio::time::advance(Duration::from_secs(75)).await;
    for _ in 0..3 {
        let response = service.clone().oneshot(call("team-a")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        tokio::task::yield_now().await;
    }
    assert_eq!(
        upstream.count("/token"),
        2,
        "one failed renewal, not one per call"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    service.clone().oneshot(call("team-a")).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(
        upstream.count("/token"),
        3,
        "asked again after renew_retry_interval"
    );
    let api_bearers: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.path == "/api")
        .map(|s| s.authorization)
        .collect();
    assert!(api_bearers.iter().all(|b| *b == Some(bearer(0))));

    // Expired: now callers need a token and share the failure.
    tokio::time::advance(Duration::from_secs(25)).await;
    let before = upstream.count("/token");
    let outcomes = concurrently(&service, 10).await;
    for (result, took) in &outcomes {
        let error = result.as_ref().unwrap_err();
        let error = auth_error(error);
        assert!(error.is_refused(), "{error:?}");
        assert_eq!(
            error.refusal().unwrap().error(),
            Some("temporarily_unavailable")
        );
        assert_eq!(*took, Duration::ZERO);
    }
    assert_eq!(upstream.count("/token"), before + 1, "one shared failure");

    // The endpoint recovers: the next caller gets a token.
    healthy.store(true, Ordering::SeqCst);
    let response = service.clone().oneshot(call("team-a")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

// 7.
#[tokio::test(start_paused = true)]
async fn hostile_lifetimes_are_capped_or_mean_until_refused() {
    let max = u64::MAX;
    let answer = format!(
        r#"{{"access_token":"{TOKEN_PREFIX}0","expires_in":{max},"refresh_token":"{REFRESH_PREFIX}0","refresh_expires_in":{max}}}"#
    );
    let upstream = Upstream::new(move |seen, _| match seen.path.as_str() {
        "/token" | "/refresh" => Answer::Now(200, answer.clone()),
        _ => api(seen, None),
    });
    let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
    service.clone().oneshot(call("a")).await.unwrap();
    // Capped at a day, renewed 30 s before.
    tokio::time::advance(pacer::auth::MAX_TOKEN_LIFETIME - Duration::from_secs(31)).await;
    service.clone().oneshot(call("a")).await.unwrap();
    assert_eq!(upstream.count("/token") + upstream.count("/refresh"), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    let start = Instant::now();
    service.clone().oneshot(call("a")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "still valid: no wait");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The early renewal went out with the credentials: the refresh token's capped life ended
    // at the same time.
    assert_eq!(upstream.count("/token"), 2);
    assert_eq!(upstream.count("/refresh"), 0);

    // 0 and absent: no stated lifetime, the token is used until refused.
    for answer in [
        format!(r#"{{"access_token":"{TOKEN_PREFIX}0","expires_in":0,"refresh_expires_in":0}}"#),
        format!(r#"{{"access_token":"{TOKEN_PREFIX}0"}}"#),
    ] {
        let upstream = Upstream::new(move |seen, _| match seen.path.as_str() {
            "/token" => Answer::Now(200, answer.clone()),
            _ => api(seen, None),
        });
        let service = stack(BearerAuthLayer::new(Source::new(true)), roomy(), &upstream);
        service.clone().oneshot(call("a")).await.unwrap();
        tokio::time::advance(Duration::from_secs(10 * 24 * 3600)).await;
        service.clone().oneshot(call("a")).await.unwrap();
        assert_eq!(upstream.count("/token"), 1);
    }
}

/// A token endpoint answering `bad` first, then a good token.
async fn bad_then_good(bad: Answer, check: impl Fn(&AuthError)) {
    let bad = Mutex::new(Some(bad));
    let upstream = Upstream::new(move |seen, n| match seen.path.as_str() {
        "/token" => bad
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| Answer::Now(200, token_json(n, 300))),
        _ => api(seen, None),
    });
    let auth = BearerAuthLayer::builder(Source::new(false))
        .token_timeout(Duration::from_secs(5))
        .max_response_bytes(1024)
        .build();
    let service = stack(auth, roomy(), &upstream);
    let error = service.clone().oneshot(call("a")).await.unwrap_err();
    check(auth_error(&error));
    assert_eq!(upstream.count("/api"), 0);
    let response = service.clone().oneshot(call("a")).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a later call still works"
    );
    assert_eq!(upstream.count("/token"), 2);
}

#[tokio::test(start_paused = true)]
async fn hostile_token_answers_are_typed_errors_and_a_later_call_works() {
    let not_a_header = format!(r#"{{"access_token":"{TOKEN_PREFIX}\n0","expires_in":300}}"#);
    bad_then_good(Answer::Now(200, not_a_header), |e| {
        assert!(
            matches!(e, AuthError::InvalidAnswer(InvalidAnswer::NotAHeaderValue)),
            "{e:?}"
        );
    })
    .await;
    bad_then_good(Answer::Now(200, r#"{"access_token":""}"#.into()), |e| {
        assert!(
            matches!(e, AuthError::InvalidAnswer(InvalidAnswer::NotAHeaderValue)),
            "{e:?}"
        );
    })
    .await;
    bad_then_good(
        Answer::Now(200, r#"{"token":"x","expires_in":300}"#.into()),
        |e| {
            assert!(
                matches!(
                    e,
                    AuthError::InvalidAnswer(InvalidAnswer::WrongShape { .. })
                ),
                "{e:?}"
            );
        },
    )
    .await;
    bad_then_good(
        Answer::Now(200, r#"{"access_token":"x","expires_in":"300"}"#.into()),
        |e| {
            assert!(
                matches!(
                    e,
                    AuthError::InvalidAnswer(InvalidAnswer::WrongShape { .. })
                ),
                "{e:?}"
            );
        },
    )
    .await;
    bad_then_good(Answer::Now(200, "<html>".into()), |e| {
        assert!(
            matches!(e, AuthError::InvalidAnswer(InvalidAnswer::NotJson { .. })),
            "{e:?}"
        );
    })
    .await;
    bad_then_good(Answer::Now(200, "x".repeat(1025)), |e| {
        assert!(
            matches!(
                e,
                AuthError::InvalidAnswer(InvalidAnswer::TooLarge { limit: 1024 })
            ),
            "{e:?}"
        );
    })
    .await;
    bad_then_good(
        Answer::Now(
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#.into(),
        ),
        |e| {
            assert!(e.is_refused());
            assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED));
            assert_eq!(e.refusal().unwrap().error(), Some("invalid_client"));
            assert_eq!(e.refusal().unwrap().description(), Some("bad secret"));
        },
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_never_answers_is_bounded_by_token_timeout() {
    let start = Instant::now();
    bad_then_good(Answer::Never, |e| {
        assert!(
            matches!(e, AuthError::TimedOut { after } if *after == Duration::from_secs(5)),
            "{e:?}"
        );
    })
    .await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    // A waiter that gives up first does not cancel it for the others.
    let upstream = Upstream::new(|seen, n| match seen.path.as_str() {
        "/token" => Answer::After(Duration::from_secs(3), 200, token_json(n, 300)),
        _ => api(seen, None),
    });
    let service = stack(
        BearerAuthLayer::builder(Source::new(true))
            .token_timeout(Duration::from_secs(5))
            .build(),
        roomy(),
        &upstream,
    );
    let impatient =
        tokio::time::timeout(Duration::from_secs(1), service.clone().oneshot(call("a"))).await;
    assert!(impatient.is_err(), "gave up after 1 s");
    let start = Instant::now();
    service.clone().oneshot(call("b")).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "the same request, 3 s after it left"
    );
    assert_eq!(upstream.count("/token"), 1);
}

#[tokio::test(start_paused = true)]
async fn refresh_tokens_are_used_and_a_refused_one_falls_back_to_the_credentials() {
    let refresh_ok = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let grants = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let refresh_ok = Arc::clone(&refresh_ok);
        let grants = Arc::clone(&grants);
        Upstream::new(move |seen, _| match seen.path.as_str() {
            "/token" => {
                let n = grants.fetch_add(1, Ordering::SeqCst);
                Answer::Now(
                    200,
                    format!(
                        r#"{{"access_token":"{TOKEN_PREFIX}{n}","expires_in":60,"refresh_token":"{REFRESH_PREFIX}{n}","refresh_expires_in":600}}"#
                    ),
                )
            }
            // Infrahub-style: a refresh answers only a new access token.
            "/refresh" if refresh_ok.load(Ordering::SeqCst) => {
                let n = grants.fetch_add(1, Ordering::SeqCst);
                Answer::Now(
                    200,
                    format!(r#"{{"access_token":"{TOKEN_PREFIX}{n}","expires_in":60}}"#),
                )
            }
            "/refresh" => Answer::Now(401, r#"{"detail":"expired"}"#.into()),
            _ => api(seen, None),
        })
    };
    let service = stack(BearerAuthLayer::new(Source::new(false)), roomy(), &upstream);
    service.clone().oneshot(call("a")).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    service.clone().oneshot(call("a")).await.unwrap();
    let refresh = upstream
        .seen()
        .into_iter()
        .find(|s| s.path == "/refresh")
        .unwrap();
    assert_eq!(
        refresh.authorization,
        Some(format!("Bearer {REFRESH_PREFIX}0")),
        "the refresh token as bearer"
    );
    assert_eq!(
        refresh.namespace.as_deref(),
        Some(pacer::auth::DEFAULT_TOKEN_NAMESPACE)
    );
    assert_eq!(
        upstream.seen().pop().unwrap().authorization,
        Some(bearer(1))
    );

    // The refresh answer had no refresh token: the old one is kept; when it is refused, the
    // same token request falls back to the credentials.
    refresh_ok.store(false, Ordering::SeqCst);
    upstream.clear();
    tokio::time::advance(Duration::from_secs(61)).await;
    service.clone().oneshot(call("a")).await.unwrap();
    let paths: Vec<_> = upstream.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/refresh", "/token", "/api"]);
    assert_eq!(
        upstream.seen().pop().unwrap().authorization,
        Some(bearer(2))
    );
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, TOKEN_PREFIX, REFRESH_PREFIX] {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

// 8.
#[tokio::test(start_paused = true)]
async fn secrets_stay_out_of_debug_errors_and_tracing() {
    // The global default, not a thread-local one: with other tests of this binary running on
    // other threads, a scoped subscriber can miss events whose callsites those threads
    // registered first (tracing's interest cache), and the test then fails for want of logs.
    // The other tests' logs land in the buffer too, which only widens what is checked.
    let captured = LogCapture::install_global(LevelFilter::TRACE);

    let phase = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let phase = Arc::clone(&phase);
        Upstream::new(
            move |seen, n| {
                match (seen.path.as_str(), phase.load(Ordering::SeqCst)) {
            ("/token", 0) => Answer::After(
                Duration::from_secs(1),
                200,
                format!(
                    r#"{{"access_token":"{TOKEN_PREFIX}{n}","expires_in":60,"refresh_token":"{REFRESH_PREFIX}{n}"}}"#
                ),
            ),
            ("/refresh", _) => Answer::Now(
                400,
                format!(r#"{{"error":"invalid_grant","error_description":"no {REFRESH_PREFIX}"}}"#),
            ),
            ("/token", _) => Answer::Now(
                401,
                r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#.into(),
            ),
            _ => api(seen, Some(&bearer(0))),
        }
            },
        )
    };
    let auth = BearerAuthLayer::new(Source::new(true));
    assert_no_secret("the layer's Debug", &format!("{auth:?}"));
    let service = stack(auth.clone(), roomy(), &upstream);

    let mut pending = tokio_test::task::spawn(service.clone().oneshot(call("a")));
    assert!(pending.poll().is_pending());
    tokio::time::sleep(Duration::from_secs(1)).await;
    pending.await.unwrap();

    // The future of a call with a cached token, and the service around it.
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, BoxError>(Response::new(Full::<Bytes>::default()))
    });
    let mut direct = tower::Layer::layer(&auth, inner);
    let service_debug = format!("{direct:?}");
    assert!(service_debug.contains("BearerAuth"), "{service_debug}");
    assert_no_secret("the service's Debug", &service_debug);
    std::future::poll_fn(|cx| direct.poll_ready(cx))
        .await
        .unwrap();
    let future = direct.call(call("a"));
    let future_debug = format!("{future:?}");
    assert!(future_debug.contains("ResponseFuture"), "{future_debug}");
    assert_no_secret("the future's Debug", &future_debug);
    future.await.unwrap();

    // A refusal whose description echoes the password, after a refused refresh token.
    phase.store(1, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(61)).await;
    let error = service.clone().oneshot(call("a")).await.unwrap_err();
    let auth_error = auth_error(&error);
    assert!(auth_error.is_refused());
    assert_eq!(upstream.count("/refresh"), 1);
    assert_no_secret("the error's Display", &error.to_string());
    assert_no_secret("the error's Debug", &format!("{error:?}"));

    let logs = captured.text();
    assert!(logs.contains("token request"), "{logs}");
    assert!(logs.contains("token obtained"), "{logs}");
    assert!(logs.contains("token request failed"), "{logs}");
    assert_no_secret("tracing", &logs);
}
