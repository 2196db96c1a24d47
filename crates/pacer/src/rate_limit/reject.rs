//! The reject mode of [`RateLimit`] (servers): a request without a free slot is answered at
//! once, `429 Too Many Requests` with `Retry-After` and the IETF `RateLimit` fields.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::acquire::Acquire;
use super::extract::ExtractNamespace;
use super::layer::{RateLimit, Reject};
use super::level::{Level, RateLimited};
use super::limiter::RateLimiter;

/// Reject mode. With the in-memory state the decision is synchronous, in `call`; with a shared
/// store it takes a round trip, so the future asks the store first (a clone of the service is
/// called once the slot is granted, hence `S: Clone`, as in wait mode).
impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, Reject, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
    E: ExtractNamespace<ReqBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RejectFuture<S, Request<ReqBody>, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let namespace = self.extractor.extract(&request);
        let kind = match self.limiter.begin_now(namespace) {
            Ok(None) => RejectKind::Inner {
                future: self.inner.call(request),
            },
            Ok(Some(acquire)) => RejectKind::Deciding {
                deciding: Box::new(Deciding {
                    acquire,
                    limiter: self.limiter.clone(),
                    service: self.inner.clone(),
                    request: Some(request),
                }),
            },
            Err(refused) => RejectKind::Rejected {
                response: Some(too_many_requests(&self.limiter, &refused)),
            },
        };
        RejectFuture { kind }
    }
}

pin_project! {
    /// The response future of [`RateLimit`] in reject mode.
    pub struct RejectFuture<S, Req, B>
    where
        S: Service<Req>,
    {
        #[pin]
        kind: RejectKind<S, Req, B>,
    }
}

pin_project! {
    #[project = RejectProj]
    enum RejectKind<S, Req, B>
    where
        S: Service<Req>,
    {
        // Boxed, as in wait mode: only a shared store's round trip needs it.
        Deciding {
            deciding: Box<Deciding<S, Req>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<B>>,
        },
    }
}

/// A request whose slot a shared store is deciding, with what it needs once granted.
struct Deciding<S, Req> {
    acquire: Acquire,
    limiter: RateLimiter,
    service: S,
    request: Option<Req>,
}

impl<S, Req, B> Future for RejectFuture<S, Req, B>
where
    S: Service<Req, Response = Response<B>>,
    B: Default,
{
    type Output = Result<Response<B>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                RejectProj::Deciding { deciding } => {
                    let Deciding {
                        acquire,
                        limiter,
                        service,
                        request,
                    } = &mut **deciding;
                    let next = match ready!(Pin::new(acquire).poll(cx)) {
                        Err(refused) => RejectKind::Rejected {
                            response: Some(too_many_requests(limiter, &refused)),
                        },
                        Ok(()) => {
                            ready!(service.poll_ready(cx))?;
                            match request.take() {
                                Some(request) => RejectKind::Inner {
                                    future: service.call(request),
                                },
                                None => RejectKind::Rejected { response: None },
                            }
                        }
                    };
                    kind.set(next);
                }
                RejectProj::Inner { future } => return future.poll(cx),
                // Polled again after completion: answer another 429 rather than panic.
                RejectProj::Rejected { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(|| status_only(StatusCode::TOO_MANY_REQUESTS))));
                }
            }
        }
    }
}

impl<S: Service<Req>, Req, B> fmt::Debug for RejectFuture<S, Req, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            RejectKind::Deciding { .. } => "RejectFuture::Deciding",
            RejectKind::Inner { .. } => "RejectFuture::Inner",
            RejectKind::Rejected { .. } => "RejectFuture::Rejected",
        })
    }
}

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

fn status_only<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// Whole seconds, rounded up, at least 1: what a client can wait and then find a free slot.
fn whole_seconds(delay: Duration) -> u64 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.max(1)
}

/// The `429` reject mode answers: `Retry-After`, both buckets' policies, and the state of the
/// bucket that refused. A refusal because the shared store is out ([`Level::Store`], fail
/// closed) is not a rate limit: it answers `503 Service Unavailable` with `Retry-After` only.
fn too_many_requests<B: Default>(limiter: &RateLimiter, refused: &RateLimited) -> Response<B> {
    let wait = whole_seconds(refused.retry_after);
    if refused.level == Level::Store {
        let mut response = status_only(StatusCode::SERVICE_UNAVAILABLE);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    let mut response = status_only(StatusCode::TOO_MANY_REQUESTS);
    let namespace = limiter.namespace_quota(&refused.namespace);
    let global = limiter.global_quota();
    let policy = format!(
        "\"namespace\";q={};w={}, \"global\";q={};w={}",
        namespace.burst(),
        whole_seconds(namespace.refill_time()),
        global.burst(),
        whole_seconds(global.refill_time()),
    );
    let state = format!("\"{}\";r=0;t={wait}", refused.level.as_str());
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(wait));
    // Built from numbers and fixed names only: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&state) {
        headers.insert(RATELIMIT, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_up_and_are_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(59)), 59);
    }

    #[test]
    fn level_names_are_the_policy_names() {
        assert_eq!(Level::Global.as_str(), "global");
        assert_eq!(Level::Namespace.as_str(), "namespace");
    }
}
