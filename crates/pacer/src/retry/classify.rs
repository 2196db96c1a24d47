//! Deciding which outcomes are retried.

use std::error::Error;
use std::fmt;
use std::io;

use http::{HeaderMap, Method, StatusCode, request};

use super::reason::RetryReason;
use crate::rate_limit::level::RateLimited;
use crate::retry_after::cap::RetryAfterExceeded;

/// What to do with one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The server handled the request (any status that is not a transient failure, including
    /// most 4xx). Deposits into the [`RetryBudget`](super::RetryBudget).
    Success,
    /// A transient failure that must not be retried, e.g. a `503` answering a `POST` that may
    /// have been processed. Returned as is.
    Failure(RetryReason),
    /// A transient failure worth retrying, if the policy's caps allow it.
    Retry(RetryReason),
}

/// Classifies the outcome of one attempt. Replace the [`DefaultClassifier`] through
/// [`RetryPolicy::classifier`](super::RetryPolicy::classifier).
///
/// Implementations must be cheap: `classify_response` runs for every response.
pub trait Classify: Send + Sync + 'static {
    /// Classifies a response to the request described by `req`.
    fn classify_response(
        &self,
        req: &request::Parts,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Decision;

    /// Classifies an error returned by the inner service for the request described by `req`.
    fn classify_error(&self, req: &request::Parts, error: &(dyn Error + 'static)) -> Decision;
}

/// A request extension marking a request as safe to send twice, whatever its method.
///
/// ```
/// let mut req = http::Request::post("http://example.invalid/orders").body(()).unwrap();
/// req.extensions_mut().insert(pacer::retry::Idempotent);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Idempotent;

/// The default HTTP classification.
///
/// - `429` is retried for every method: the server refused it without processing it.
/// - `408`, `500`, `502`, `503`, `504`, timeouts and other transport errors are retried only for
///   idempotent requests (see [`is_idempotent`]).
/// - An error showing that the connection was never established (see [`is_connect_error`]) is
///   retried for every method.
/// - Everything else is a [`Decision::Success`]: the server handled the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DefaultClassifier;

impl Classify for DefaultClassifier {
    fn classify_response(
        &self,
        req: &request::Parts,
        status: StatusCode,
        _headers: &HeaderMap,
    ) -> Decision {
        match status {
            StatusCode::TOO_MANY_REQUESTS => Decision::Retry(RetryReason::TooManyRequests),
            StatusCode::REQUEST_TIMEOUT
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => idempotent_only(req, RetryReason::Status(status)),
            _ => Decision::Success,
        }
    }

    fn classify_error(&self, req: &request::Parts, error: &(dyn Error + 'static)) -> Decision {
        if chain(error).any(|e| e.is::<RateLimited>()) {
            // Our own limiter refused after waiting up to its `max_wait`; nothing was sent, and
            // retrying would only queue the request again behind the same limit.
            Decision::Failure(RetryReason::TooManyRequests)
        } else if chain(error).any(|e| e.is::<RetryAfterExceeded>()) {
            // The pause gate refused to hold the request any longer: nothing was sent, and a
            // retry would meet the same pause.
            Decision::Failure(RetryReason::TooManyRequests)
        } else if is_connect_error(error) {
            Decision::Retry(RetryReason::Connect)
        } else if is_timeout(error) {
            idempotent_only(req, RetryReason::Timeout)
        } else {
            idempotent_only(req, RetryReason::Transport)
        }
    }
}

fn idempotent_only(req: &request::Parts, reason: RetryReason) -> Decision {
    if is_idempotent(req) {
        Decision::Retry(reason)
    } else {
        Decision::Failure(reason)
    }
}

/// Whether a request may be sent twice: an idempotent method (GET, HEAD, OPTIONS, TRACE, PUT,
/// DELETE), the [`Idempotent`] extension, or an `Idempotency-Key` header.
pub fn is_idempotent(req: &request::Parts) -> bool {
    matches!(
        req.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || req.extensions.get::<Idempotent>().is_some()
        || req.headers.contains_key("idempotency-key")
}

/// Iterates over an error and its `source()` chain.
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// Whether the error chain shows a connection that was never established: an
/// [`io::Error`] of kind `ConnectionRefused`, or hyper-util's legacy client error for which
/// `is_connect()` is true (recognised by its `Display`, `client error (Connect)`, so pacer does
/// not depend on hyper-util).
pub fn is_connect_error(error: &(dyn Error + 'static)) -> bool {
    chain(error).any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::ConnectionRefused)
            || displays_as(e, "client error (Connect)")
    })
}

/// Whether the error chain holds a timeout: [`tower::timeout::error::Elapsed`],
/// [`tokio::time::error::Elapsed`] or an [`io::Error`] of kind `TimedOut`.
pub fn is_timeout(error: &(dyn Error + 'static)) -> bool {
    chain(error).any(|e| {
        e.is::<tower::timeout::error::Elapsed>()
            || e.is::<tokio::time::error::Elapsed>()
            || e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    })
}

/// Compares an error's `Display` with `expected` without allocating.
fn displays_as(e: &dyn Error, expected: &str) -> bool {
    struct Cmp<'a> {
        rest: &'a str,
        ok: bool,
    }
    impl fmt::Write for Cmp<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self.rest.strip_prefix(s) {
                Some(rest) if self.ok => {
                    self.rest = rest;
                    Ok(())
                }
                _ => {
                    self.ok = false;
                    Err(fmt::Error)
                }
            }
        }
    }
    let mut cmp = Cmp {
        rest: expected,
        ok: true,
    };
    fmt::write(&mut cmp, format_args!("{e}")).is_ok() && cmp.ok && cmp.rest.is_empty()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parts(method: Method) -> request::Parts {
        http::Request::builder()
            .method(method)
            .uri("/")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn status(method: Method, code: u16) -> Decision {
        DefaultClassifier.classify_response(
            &parts(method),
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
        )
    }

    #[test]
    fn status_table() {
        for m in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
            Method::PUT,
            Method::DELETE,
        ] {
            for code in [408, 500, 502, 503, 504] {
                assert!(
                    matches!(
                        status(m.clone(), code),
                        Decision::Retry(RetryReason::Status(_))
                    ),
                    "{m} {code}"
                );
            }
            assert_eq!(
                status(m.clone(), 429),
                Decision::Retry(RetryReason::TooManyRequests)
            );
            for code in [200, 201, 204, 301, 400, 401, 404, 409, 501, 505] {
                assert_eq!(status(m.clone(), code), Decision::Success, "{m} {code}");
            }
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert_eq!(
                status(m.clone(), 429),
                Decision::Retry(RetryReason::TooManyRequests)
            );
            for code in [408, 500, 502, 503, 504] {
                assert!(
                    matches!(status(m.clone(), code), Decision::Failure(_)),
                    "{m} {code}"
                );
            }
        }
    }

    #[test]
    fn marked_requests_are_idempotent() {
        let mut p = parts(Method::POST);
        assert!(!is_idempotent(&p));
        p.extensions.insert(Idempotent);
        assert!(is_idempotent(&p));
        let mut p = parts(Method::PATCH);
        p.headers.insert("Idempotency-Key", "k".parse().unwrap());
        assert!(is_idempotent(&p));
    }

    #[derive(Debug)]
    struct Outer(&'static str, Option<Box<dyn Error + Send + Sync>>);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}", self.0)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn errors_are_found_down_the_chain() {
        let refused = Outer(
            "a",
            Some(Box::new(Outer(
                "b",
                Some(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused))),
            ))),
        );
        assert!(is_connect_error(&refused));
        assert!(!is_timeout(&refused));
        let hyper_util_like = Outer(
            "client error (Connect)",
            Some(Box::new(Outer("dns error", None))),
        );
        assert!(is_connect_error(&hyper_util_like));
        for not_connect in [
            "client error (SendRequest)",
            "client error (Connect) ",
            "client error (",
            "",
        ] {
            assert!(
                !is_connect_error(&Outer(not_connect, None)),
                "{not_connect:?}"
            );
        }
        let timeout = Outer("x", Some(Box::new(tower::timeout::error::Elapsed::new())));
        assert!(is_timeout(&timeout));
        assert!(is_timeout(&io::Error::from(io::ErrorKind::TimedOut)));
        assert!(!is_connect_error(&timeout));

        let post = parts(Method::POST);
        let c = DefaultClassifier;
        assert_eq!(
            c.classify_error(&post, &refused),
            Decision::Retry(RetryReason::Connect)
        );
        assert_eq!(
            c.classify_error(&post, &timeout),
            Decision::Failure(RetryReason::Timeout)
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            c.classify_error(&post, &reset),
            Decision::Failure(RetryReason::Transport)
        );
        let get = parts(Method::GET);
        assert_eq!(
            c.classify_error(&get, &timeout),
            Decision::Retry(RetryReason::Timeout)
        );
        assert_eq!(
            c.classify_error(&get, &reset),
            Decision::Retry(RetryReason::Transport)
        );
    }
}
