//! [`RetryReason`]: why an outcome is a transient failure. A leaf: the classifier's
//! [`Decision`](super::Decision), the events and the metrics all name it.

use std::fmt;

use http::StatusCode;

/// Why an outcome is worth retrying (the classifier's verdict, which
/// [`Event::Retry`](crate::events::Event::Retry) carries and the metrics count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// `429 Too Many Requests`: the server refused the request without processing it.
    TooManyRequests,
    /// Another retryable status (by default 408, 500, 502, 503 or 504).
    Status(StatusCode),
    /// The attempt timed out.
    Timeout,
    /// The connection was never established, so the request never left the client.
    Connect,
    /// Another transport error (the request may or may not have reached the server).
    Transport,
}

impl RetryReason {
    /// The `reason` label of the retry metric: `throttled` (a 429, or any status that came
    /// with a server-given delay, `from_server`), `server_error` (another status), `timeout` or
    /// `transport` (a connection that failed or was never made).
    pub fn label(&self, from_server: bool) -> &'static str {
        if self.is_throttled(from_server) {
            return "throttled";
        }
        match self {
            Self::TooManyRequests => "throttled",
            Self::Status(_) => "server_error",
            Self::Timeout => "timeout",
            Self::Connect | Self::Transport => "transport",
        }
    }

    /// Whether the server refused the request for load: a 429, or a status that came with a
    /// server-given delay (`from_server`, e.g. a 503 with `Retry-After`).
    pub fn is_throttled(&self, from_server: bool) -> bool {
        match self {
            Self::TooManyRequests => true,
            Self::Status(_) => from_server,
            Self::Timeout | Self::Connect | Self::Transport => false,
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyRequests => f.write_str("429 Too Many Requests"),
            Self::Status(status) => write!(f, "status {}", status.as_u16()),
            Self::Timeout => f.write_str("timeout"),
            Self::Connect => f.write_str("connection not established"),
            Self::Transport => f.write_str("transport error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_metric_values() {
        let cases = [
            (RetryReason::TooManyRequests, false, "throttled"),
            (RetryReason::TooManyRequests, true, "throttled"),
            (
                RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE),
                true,
                "throttled",
            ),
            (
                RetryReason::Status(StatusCode::SERVICE_UNAVAILABLE),
                false,
                "server_error",
            ),
            (
                RetryReason::Status(StatusCode::BAD_GATEWAY),
                false,
                "server_error",
            ),
            (RetryReason::Timeout, false, "timeout"),
            (RetryReason::Connect, false, "transport"),
            (RetryReason::Transport, true, "transport"),
        ];
        for (reason, from_server, label) in cases {
            assert_eq!(reason.label(from_server), label, "{reason:?} {from_server}");
            assert_eq!(reason.is_throttled(from_server), label == "throttled");
        }
    }
}
