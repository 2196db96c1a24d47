//! [`Error`]: what a call can fail with, typed so callers can match on it.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use pacer::BoxError;
use pacer::retry::RetryInfo;

use crate::auth::AuthError;

/// The longest excerpt of a response body an error keeps.
pub const EXCERPT_LIMIT: usize = 512;

/// The result of every call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed.
///
/// Messages and excerpts come from Keycloak's response bodies; tokens and credentials never
/// appear in an error (they travel in headers and forms this crate never copies into one).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// 404: the object (or its realm) does not exist. Operations flagged in the allow-list
    /// return `Ok(None)` instead.
    NotFound {
        /// Keycloak's message (`errorMessage` or `error`), or a body excerpt.
        message: String,
    },
    /// 409: the object exists already (same name, client id, username ...).
    Conflict {
        /// Keycloak's message, e.g. `Client my-app already exists`.
        message: String,
    },
    /// 429 after the retries ran out (a proxy or ingress in front of Keycloak sheds load).
    RateLimited {
        /// Requests sent for this call.
        attempts: u32,
        /// The last `Retry-After` the server asked for.
        retry_after: Option<Duration>,
    },
    /// The client's own rate limiter would have made this call wait longer than `max_wait`.
    Throttled {
        /// How long until a slot frees up.
        retry_after: Duration,
    },
    /// 401 even after a fresh token, or 403: the credentials lack the rights.
    Unauthorized {
        /// 401 or 403.
        status: StatusCode,
    },
    /// The token endpoint refused the credentials (or could not be reached).
    Auth(AuthError),
    /// A 5xx after the retries the method allows.
    Server {
        /// The status.
        status: StatusCode,
        /// The start of the body, at most [`EXCERPT_LIMIT`] bytes.
        excerpt: String,
    },
    /// Any other unexpected status (400 with a validation message, ...).
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body, at most [`EXCERPT_LIMIT`] bytes.
        excerpt: String,
    },
    /// A response body that is not the JSON the operation describes.
    Decode {
        /// What serde said.
        source: serde_json::Error,
        /// The start of the body, at most [`EXCERPT_LIMIT`] bytes.
        excerpt: String,
    },
    /// A request body that could not be encoded.
    Encode(serde_json::Error),
    /// The call was not sent: its input is unusable (e.g. a reconcile target without its
    /// natural key).
    Invalid(String),
    /// A create answered without a usable `Location` header.
    MissingLocation,
    /// The request never got a response: connection, timeout, or a layer's own error.
    Transport(BoxError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { message } => write!(f, "not found: {message}"),
            Error::Conflict { message } => write!(f, "conflict: {message}"),
            Error::RateLimited {
                attempts,
                retry_after,
            } => {
                write!(f, "rate limited by the server after {attempts} attempts")?;
                match retry_after {
                    Some(delay) => write!(f, " (last Retry-After {delay:?})"),
                    None => Ok(()),
                }
            }
            Error::Throttled { retry_after } => write!(
                f,
                "the client's rate limiter would wait {retry_after:?}, more than max_wait"
            ),
            Error::Unauthorized { status } => write!(f, "unauthorized ({status})"),
            Error::Auth(error) => write!(f, "authentication failed: {error}"),
            Error::Server { status, excerpt } => write!(f, "server error {status}: {excerpt}"),
            Error::Status { status, excerpt } => write!(f, "unexpected status {status}: {excerpt}"),
            Error::Decode { source, excerpt } => {
                write!(f, "unexpected response body ({source}): {excerpt}")
            }
            Error::Encode(error) => write!(f, "could not encode the request body: {error}"),
            Error::Invalid(what) => write!(f, "invalid input: {what}"),
            Error::MissingLocation => f.write_str("created, but no Location header with the id"),
            Error::Transport(error) => write!(f, "transport: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Auth(error) => Some(error),
            Error::Decode { source, .. } | Error::Encode(source) => Some(source),
            Error::Transport(error) => Some(&**error),
            _ => None,
        }
    }
}

impl Error {
    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether this is [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// Maps an error from the stack (the auth layer, the rate limiter, retries, hyper).
    pub(crate) fn from_stack(error: BoxError) -> Error {
        let error = match error.downcast::<AuthError>() {
            Ok(auth) => return Error::Auth(*auth),
            Err(other) => other,
        };
        if let Some(refused) = error.downcast_ref::<pacer::rate_limit::RateLimited>() {
            return Error::Throttled {
                retry_after: refused.retry_after,
            };
        }
        if let Some(exceeded) = error.downcast_ref::<pacer::retry::RetryAfterExceeded>() {
            return Error::RateLimited {
                attempts: exceeded.attempts(),
                retry_after: Some(exceeded.requested()),
            };
        }
        Error::Transport(error)
    }

    /// The error for a non-2xx response.
    pub(crate) fn from_response(response: &Response<Bytes>) -> Error {
        let status = response.status();
        let body = response.body();
        match status {
            StatusCode::NOT_FOUND => Error::NotFound {
                message: message(body),
            },
            StatusCode::CONFLICT => Error::Conflict {
                message: message(body),
            },
            StatusCode::TOO_MANY_REQUESTS => {
                let info = response.extensions().get::<RetryInfo>();
                Error::RateLimited {
                    attempts: info.map_or(1, |info| info.attempts),
                    retry_after: info.and_then(|info| info.last_retry_after).or_else(|| {
                        pacer::retry_after::retry_after(
                            response.headers(),
                            std::time::SystemTime::now(),
                        )
                    }),
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized { status },
            status if status.is_server_error() => Error::Server {
                status,
                excerpt: excerpt(body),
            },
            status => Error::Status {
                status,
                excerpt: message(body),
            },
        }
    }
}

/// Keycloak's own message (`errorMessage`, `error_description`, `error`) or a body excerpt.
fn message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) {
        for key in ["errorMessage", "error_description", "error"] {
            if let Some(text) = object.get(key).and_then(serde_json::Value::as_str) {
                return bounded(text);
            }
        }
    }
    excerpt(body)
}

/// The start of `body` as text, at most [`EXCERPT_LIMIT`] bytes, cut at a character boundary.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT_LIMIT)];
    bounded(&String::from_utf8_lossy(head))
}

fn bounded(text: &str) -> String {
    if text.len() <= EXCERPT_LIMIT {
        return text.to_owned();
    }
    let mut end = EXCERPT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_cut_on_char_boundaries() {
        let body = "é".repeat(1000);
        let cut = excerpt(body.as_bytes());
        assert!(cut.len() <= EXCERPT_LIMIT + 3, "{}", cut.len());
        let long = format!("{{\"errorMessage\":\"{}\"}}", "x".repeat(5000));
        assert!(message(long.as_bytes()).len() <= EXCERPT_LIMIT + 3);
        assert_eq!(
            message(br#"{"errorMessage":"Client a exists"}"#),
            "Client a exists"
        );
        assert_eq!(message(b"plain"), "plain");
    }
}
