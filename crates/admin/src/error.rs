//! [`Error`]: what a call can fail with, typed so callers can match on it; [`BuildError`]:
//! why a client could not be built. Below everything but the name rule it uses.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use pacer::BoxError;
use pacer::auth::AuthError;
use pacer::client::runtime::InRuntime;
use pacer::retry::RetryInfo;

/// The longest excerpt of a response body an error keeps.
pub const EXCERPT_LIMIT: usize = 512;

/// The result of every call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed.
///
/// Messages and excerpts come from Keycloak's response bodies; tokens and credentials never
/// appear in an error (they travel in headers and forms this crate never copies into one).
/// Operations whose bodies carry secrets (a client's secret, credentials, the token endpoint)
/// never quote their bodies: their excerpts read [`REDACTED_EXCERPT`] and their decode errors
/// say only where the body went wrong.
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
        /// The start of the body, at most [`EXCERPT_LIMIT`] bytes, the values of keys that
        /// look secret hidden ([`REDACTED_EXCERPT`] for an operation whose bodies carry
        /// secrets).
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
    /// A call of the [blocking client](crate::blocking) was made from inside an async
    /// runtime, where it would stall that runtime: use [`AdminClient`](crate::AdminClient)
    /// there. Nothing was sent.
    InRuntime(InRuntime),
}

impl From<InRuntime> for Error {
    fn from(error: InRuntime) -> Self {
        Error::InRuntime(error)
    }
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
            Error::InRuntime(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Auth(error) => Some(error),
            Error::Decode { source, .. } | Error::Encode(source) => Some(source),
            Error::Transport(error) => Some(&**error),
            Error::InRuntime(error) => Some(error),
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

    /// The error for a non-2xx response; `secret_body`: the operation's bodies carry secrets,
    /// so nothing of the body is kept.
    pub(crate) fn from_response(response: &Response<Bytes>, secret_body: bool) -> Error {
        let status = response.status();
        let body = response.body();
        let excerpt = |body: &[u8]| body_excerpt(body, secret_body);
        let message = |body: &[u8]| message(body, secret_body);
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

    /// A body that did not decode as the operation's JSON; `secret_body` as for
    /// [`Error::from_response`]: the decoder's message (which can quote a value) is then
    /// replaced by the place where the body went wrong.
    pub(crate) fn decode(body: &[u8], source: serde_json::Error, secret_body: bool) -> Error {
        if secret_body {
            let place = format!(
                "the body does not decode (line {}, column {})",
                source.line(),
                source.column()
            );
            Error::Decode {
                source: serde::de::Error::custom(place),
                excerpt: REDACTED_EXCERPT.to_owned(),
            }
        } else {
            // An operation that is not secret by its path can still answer secrets (a list
            // of clients holds each one's `secret`): the values of secret-looking keys are
            // hidden here as in a status error's excerpt.
            Error::Decode {
                source,
                excerpt: body_excerpt(body, false),
            }
        }
    }
}

/// What an error shows instead of an excerpt of a body that may hold a secret.
pub const REDACTED_EXCERPT: &str = "<redacted: this operation's bodies carry secrets>";

/// The client could not be built: the configuration, or the base URL. Its text never
/// repeats a URL or a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(String);

impl BuildError {
    pub(crate) fn new(what: String) -> Self {
        BuildError(what)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid client configuration: {}", self.0)
    }
}

impl std::error::Error for BuildError {}

/// Keycloak's own message (`errorMessage`, `error_description`, `error`) or a body excerpt
/// ([`body_excerpt`]). For an operation whose bodies carry secrets even the message is
/// [`REDACTED_EXCERPT`]: a server may echo the request's secret in it, and the status and the
/// error's variant still say what went wrong.
fn message(body: &[u8], secret_body: bool) -> String {
    if secret_body {
        return REDACTED_EXCERPT.to_owned();
    }
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) {
        for key in ["errorMessage", "error_description", "error"] {
            if let Some(text) = object.get(key).and_then(serde_json::Value::as_str) {
                return bounded(text);
            }
        }
    }
    body_excerpt(body, secret_body)
}

/// The excerpt an error keeps of a body: [`REDACTED_EXCERPT`] for an operation whose
/// bodies carry secrets; else the start of the body, with the values of keys that look
/// secret replaced when it is a JSON object or array (a server echoing a request).
fn body_excerpt(body: &[u8], secret_body: bool) -> String {
    if secret_body {
        return REDACTED_EXCERPT.to_owned();
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            if redact_by_key(&mut value) {
                bounded(&value.to_string())
            } else {
                excerpt(body)
            }
        }
        _ => excerpt(body),
    }
}

/// Replaces the values of secret-looking keys at any depth; whether it replaced any.
fn redact_by_key(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let mut any = false;
            for (key, value) in map.iter_mut() {
                if crate::secret_names::looks_secret(key) && !value.is_null() {
                    *value = serde_json::Value::String("<redacted>".to_owned());
                    any = true;
                } else {
                    any |= redact_by_key(value);
                }
            }
            any
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, item| redact_by_key(item) | any),
        _ => false,
    }
}

/// The start of `body` as text, at most [`EXCERPT_LIMIT`] bytes, cut at a character boundary;
/// a cut ends with `…`.
pub fn excerpt(body: &[u8]) -> String {
    if body.len() <= EXCERPT_LIMIT {
        // Invalid bytes become U+FFFD (three bytes each): `bounded` cuts what that grew.
        return bounded(&String::from_utf8_lossy(body));
    }
    let head = &body[..EXCERPT_LIMIT];
    // The byte cut can split the last character: drop its start rather than show U+FFFD.
    let head = match std::str::from_utf8(head) {
        Err(error) if error.error_len().is_none() => &head[..error.valid_up_to()],
        _ => head,
    };
    let text = String::from_utf8_lossy(head);
    // A cut shows, even when the head fits the bound as it is.
    if text.len() > EXCERPT_LIMIT {
        bounded(&text)
    } else {
        format!("{text}…")
    }
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
        // A cut is marked even when the head fits the bound exactly.
        assert_eq!(
            excerpt(&[b'a'; 1000]),
            format!("{}…", "a".repeat(EXCERPT_LIMIT))
        );
        // A character the cut splits is dropped, not shown as U+FFFD.
        let split = format!("{}😀", "a".repeat(EXCERPT_LIMIT - 2));
        assert_eq!(
            excerpt(split.as_bytes()),
            format!("{}…", "a".repeat(EXCERPT_LIMIT - 2))
        );
        assert_eq!(excerpt(b"short \xff"), "short \u{fffd}");
        let long = format!("{{\"errorMessage\":\"{}\"}}", "x".repeat(5000));
        assert!(message(long.as_bytes(), false).len() <= EXCERPT_LIMIT + 3);
        assert_eq!(
            message(br#"{"errorMessage":"Client a exists"}"#, false),
            "Client a exists"
        );
        assert_eq!(message(b"plain", false), "plain");
        assert_eq!(message(b"plain", true), REDACTED_EXCERPT);
        let echoed = body_excerpt(br#"{"clientId":"a","secret":"canary-9"}"#, false);
        assert!(
            echoed.contains("clientId") && !echoed.contains("canary"),
            "{echoed}"
        );
    }
}
