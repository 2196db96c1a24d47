//! [`AuthError`]: why no token could be had, shared by every caller that waited for it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// The longest server-given text (an OAuth `error` or `error_description`) an [`AuthError`]
/// keeps, in characters: enough to read, too little to fill logs.
pub const MAX_REFUSAL_TEXT: usize = 256;

/// Why the layer could not obtain a token. `Clone` (cheaply: the one failure of a token
/// request is handed to every caller that waited for it), `Send + Sync`; the layer's service
/// returns it boxed in its [`BoxError`](crate::BoxError): find it with
/// `error.downcast_ref::<AuthError>()`.
///
/// It never holds a credential: refusal texts are the server's (cut to
/// [`MAX_REFUSAL_TEXT`], control characters replaced), decode failures say where the answer
/// went wrong but not what it held, and no variant carries a request or a header.
///
/// [`AuthError::is_refused`] tells "the endpoint refused these credentials" (fix the
/// configuration, do not retry) from everything else (unreachable, timed out, a bad answer:
/// transient or the server's fault).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// The token endpoint answered a client error (a `4xx` other than `408` and `429`): it
    /// refused the credentials or the grant.
    Refused {
        /// The endpoint's status (`400` for OAuth's `invalid_grant`, `401`, `403`...).
        status: StatusCode,
        /// What the answer said, as far as the source could read it.
        refusal: Refusal,
    },
    /// The token endpoint answered a status that refuses nothing (a `5xx`, `408` or `429`
    /// still there after the retries below the layer, a redirect).
    Status {
        /// The endpoint's status.
        status: StatusCode,
    },
    /// The token request failed below the layer: transport, per-attempt timeout, rate limit
    /// refusal (`max_wait`), a body that could not be read. The cause is the inner service's
    /// error, shared.
    Unreachable(Arc<dyn StdError + Send + Sync>),
    /// The token request (every exchange of it, bodies included) did not finish within the
    /// layer's `token_timeout`.
    TimedOut {
        /// The bound that ran out.
        after: Duration,
    },
    /// The answer is not a token: not JSON, JSON of the wrong shape, too large, an access
    /// token that cannot be sent in a header.
    InvalidAnswer(InvalidAnswer),
    /// The [`TokenSource`](super::TokenSource) could not build its request (a bad URL in its
    /// configuration).
    Request(Arc<str>),
    /// The token request was dropped before it finished: no tokio runtime to run it on, the
    /// runtime shutting down, or a panic in the source.
    Aborted,
}

/// What a token endpoint's refusal said (OAuth's `error` and `error_description`, or the
/// API's equivalent): the server's words, cut to [`MAX_REFUSAL_TEXT`] characters with
/// control characters replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusal {
    error: Option<Arc<str>>,
    description: Option<Arc<str>>,
}

impl Refusal {
    /// A refusal with the given code (`invalid_grant`) and description.
    pub fn new(error: Option<&str>, description: Option<&str>) -> Refusal {
        Refusal {
            error: error.map(clean),
            description: description.map(clean),
        }
    }

    /// Reads an OAuth 2.0 error answer (RFC 6749 §5.2, `{"error": ..., "error_description":
    /// ...}`); anything else (not JSON, other fields) gives an empty refusal.
    pub fn from_oauth_json(body: &[u8]) -> Refusal {
        #[derive(serde::Deserialize)]
        struct OAuthError<'a> {
            #[serde(borrow, default)]
            error: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            error_description: Option<std::borrow::Cow<'a, str>>,
        }
        match serde_json::from_slice::<OAuthError<'_>>(body) {
            Ok(answer) => {
                Refusal::new(answer.error.as_deref(), answer.error_description.as_deref())
            }
            Err(_) => Refusal::default(),
        }
    }

    /// The error code (OAuth's `error`: `invalid_client`, `invalid_grant`...).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The human-readable description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// Server text made safe to log: at most [`MAX_REFUSAL_TEXT`] characters, control
/// characters (which could forge log lines) replaced.
fn clean(text: &str) -> Arc<str> {
    text.chars()
        .take(MAX_REFUSAL_TEXT)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect::<String>()
        .into()
}

/// How a token answer failed to be a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidAnswer {
    /// Not JSON (or cut short), at this line and column.
    NotJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not of the token answer's shape (a missing `access_token`, a lifetime that
    /// is not a non-negative integer...), at this line and column. The message of the JSON
    /// decoder is not kept: it can quote the value it refused, which may be the token.
    WrongShape {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The body is longer than the layer's `max_token_response_bytes`.
    TooLarge {
        /// The cap it went over.
        limit: usize,
    },
    /// The access token is empty or has bytes a header value cannot hold.
    NotAHeaderValue,
}

impl InvalidAnswer {
    /// Classifies a JSON decoding failure without keeping its message (see
    /// [`InvalidAnswer::WrongShape`]).
    pub fn from_json_error(error: &serde_json::Error) -> InvalidAnswer {
        let (line, column) = (error.line(), error.column());
        match error.classify() {
            serde_json::error::Category::Data => InvalidAnswer::WrongShape { line, column },
            _ => InvalidAnswer::NotJson { line, column },
        }
    }
}

impl fmt::Display for InvalidAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson { line, column } => {
                write!(f, "not JSON (line {line}, column {column})")
            }
            Self::WrongShape { line, column } => write!(
                f,
                "JSON of the wrong shape for a token answer (line {line}, column {column})"
            ),
            Self::TooLarge { limit } => write!(f, "longer than {limit} bytes"),
            Self::NotAHeaderValue => f.write_str("the access token is not a valid header value"),
        }
    }
}

impl AuthError {
    /// Whether the token endpoint refused the credentials or grant ([`AuthError::Refused`]):
    /// a configuration problem, not worth retrying. Everything else is the endpoint being
    /// unreachable, slow or broken.
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// The token endpoint's status, when it answered one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } | Self::Status { status } => Some(*status),
            _ => None,
        }
    }

    /// The refusal's text, for [`AuthError::Refused`].
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }

    /// For a [`TokenSource`](super::TokenSource) whose configuration cannot make a request.
    pub fn request(what: &str) -> AuthError {
        Self::Request(what.into())
    }

    /// A non-success answer: [`AuthError::Refused`] for a client error other than `408` and
    /// `429`, else [`AuthError::Status`].
    pub(crate) fn from_status(status: StatusCode, refusal: impl FnOnce() -> Refusal) -> Self {
        let refuses = status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS;
        if refuses {
            Self::Refused {
                status,
                refusal: refusal(),
            }
        } else {
            Self::Status { status }
        }
    }

    pub(crate) fn unreachable(error: impl Into<crate::BoxError>) -> Self {
        Self::Unreachable(Arc::from(error.into()))
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, refusal } => {
                write!(f, "the token endpoint refused the request ({status})")?;
                if let Some(error) = refusal.error() {
                    write!(f, ": {error}")?;
                }
                if let Some(description) = refusal.description() {
                    write!(f, " ({description})")?;
                }
                Ok(())
            }
            Self::Status { status } => write!(f, "the token endpoint answered {status}"),
            Self::Unreachable(error) => write!(f, "the token request failed: {error}"),
            Self::TimedOut { after } => {
                write!(f, "the token request did not finish within {after:?}")
            }
            Self::InvalidAnswer(what) => write!(f, "the token answer is {what}"),
            Self::Request(what) => write!(f, "the token request cannot be made: {what}"),
            Self::Aborted => f.write_str(
                "the token request was dropped before it finished (no runtime, or it shut down)",
            ),
        }
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unreachable(error) => Some(&**error),
            _ => None,
        }
    }
}
