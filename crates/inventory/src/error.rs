//! [`Error`]: what a call can fail with; and [`ConfigError`], one of those failures, here
//! rather than beside the settings so that the errors sit below everything that returns them.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Rate limited by the server and the retries ran out (or `429` retries are disabled): the
/// Python SDK's `RateLimitError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitError {
    /// The URL of the refused request.
    pub url: String,
    /// Attempts made (sends), the last one included.
    pub attempts: u32,
    /// The last delay the server asked for with `Retry-After`, as asked.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limited by {} after {} attempt(s)",
            self.url, self.attempts
        )?;
        if let Some(delay) = self.retry_after {
            write!(f, " (last Retry-After: {delay:?})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RateLimitError {}

/// One entry of a GraphQL response's `errors`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphQLErrorItem {
    /// The message.
    pub message: String,
    /// Where in the response it applies.
    #[serde(default)]
    pub path: Option<Vec<serde_json::Value>>,
    /// Server-specific details.
    #[serde(default)]
    pub extensions: Option<serde_json::Value>,
}

/// A GraphQL response with `errors`: the server ran (part of) the operation and refused it.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphQLError {
    /// The errors, in the server's order (at least one).
    pub errors: Vec<GraphQLErrorItem>,
    /// The `data` that came with them, if any.
    pub data: Option<serde_json::Value>,
}

impl fmt::Display for GraphQLError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GraphQL error: ")?;
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphQLError {}

/// What a call can fail with. Credentials never appear in it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    Config(ConfigError),
    /// Rate limited by the server after the retries.
    RateLimit(RateLimitError),
    /// The GraphQL response carried errors.
    GraphQL(GraphQLError),
    /// `401`/`403`: missing, wrong or expired credentials.
    Unauthorized {
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Another unexpected HTTP status.
    Http {
        /// The status.
        status: u16,
        /// The request URL.
        url: String,
        /// The start of the response body (at most 512 bytes).
        body: String,
    },
    /// The request could not be sent or its response not read (includes timeouts, the total
    /// deadline and pacer's own client-side refusals).
    Transport(pacer::BoxError),
    /// No token could be had from `/api/auth/login` or `/api/auth/refresh`: unreachable,
    /// timed out, an answer that is not a token (a refusal is [`Error::Unauthorized`]).
    Auth(pacer::auth::AuthError),
    /// A blocking client was called from inside an async runtime, where it would stall that
    /// runtime: use the async client there.
    Blocking(pacer::client::runtime::InRuntime),
    /// The response could not be decoded.
    Decode(String),
    /// An argument cannot be sent (an invalid GraphQL name, ...).
    InvalidInput(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(error) => write!(f, "configuration: {error}"),
            Error::RateLimit(error) => error.fmt(f),
            Error::GraphQL(error) => error.fmt(f),
            Error::Unauthorized { status, message } => {
                write!(f, "unauthorized ({status}): {message}")
            }
            Error::Http { status, url, body } => write!(f, "HTTP {status} from {url}: {body}"),
            Error::Transport(error) => write!(f, "transport: {error}"),
            Error::Auth(error) => write!(f, "authentication: {error}"),
            Error::Blocking(error) => error.fmt(f),
            Error::Decode(message) => write!(f, "unexpected response: {message}"),
            Error::InvalidInput(message) => write!(f, "invalid input: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(error) => Some(error),
            Error::RateLimit(error) => Some(error),
            Error::GraphQL(error) => Some(error),
            Error::Transport(error) => Some(&**error),
            Error::Auth(error) => Some(error),
            Error::Blocking(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Error::Config(error)
    }
}

impl Error {
    /// The rate-limit facts when this is [`Error::RateLimit`].
    pub fn as_rate_limit(&self) -> Option<&RateLimitError> {
        match self {
            Error::RateLimit(error) => Some(error),
            _ => None,
        }
    }
}

/// A setting that could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable has a value that cannot be used.
    Env {
        /// The variable.
        variable: String,
        /// Its value (never a secret's).
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A setting is invalid.
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The pacer settings are invalid.
    Pacer(pacer::config::ConfigError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Env {
                variable,
                value,
                reason,
            } => write!(f, "{variable}={value:?} is invalid: {reason}"),
            ConfigError::Invalid { setting, reason } => write!(f, "{setting} is invalid: {reason}"),
            ConfigError::Pacer(error) => write!(f, "rate limit settings: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Pacer(error) => Some(error),
            _ => None,
        }
    }
}
