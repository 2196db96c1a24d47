//! [`StoreError`], how a shared rate-limit store fails. A leaf: the stores, the limiter, the
//! shared pauses and the events all name it, and the events sit below the rate limiter.

use std::fmt;
use std::time::Duration;

use crate::body::BoxError;

/// A shared store failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The call did not complete within the store's timeout.
    Timeout(Duration),
    /// The store answered with an error, or could not be reached.
    Backend(BoxError),
    /// The store answered something the protocol does not allow.
    Protocol(String),
    /// The store does not implement this optional operation.
    Unsupported(&'static str),
}

impl StoreError {
    /// A short name of the kind of failure, for metrics and logs: `timeout`, `backend`,
    /// `protocol` or `unsupported`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Backend(_) => "backend",
            Self::Protocol(_) => "protocol",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(timeout) => write!(f, "rate-limit store timed out after {timeout:?}"),
            Self::Backend(e) => write!(f, "rate-limit store failed: {e}"),
            Self::Protocol(what) => write!(f, "rate-limit store answered unexpectedly: {what}"),
            Self::Unsupported(what) => write!(f, "rate-limit store does not support {what}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend(e) => Some(&**e),
            _ => None,
        }
    }
}
