//! What a retried request tells its caller: [`RetryInfo`] in the response's extensions, or the
//! [`DeadlineExceeded`] error.

use std::fmt;
use std::time::Duration;

/// The error returned when the total [deadline](super::RetryPolicy::deadline) passes while an attempt
/// is in flight or waits for the inner service to be ready (e.g. for a rate-limit token). The
/// attempt is dropped (cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineExceeded {
    deadline: Duration,
    attempts: u32,
}

impl DeadlineExceeded {
    /// The deadline `deadline` passed during attempt `attempts`.
    pub(super) fn new(deadline: Duration, attempts: u32) -> Self {
        Self { deadline, attempts }
    }

    /// The configured total deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Attempts started, including the one cut short.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retry deadline of {:?} exceeded during attempt {}",
            self.deadline, self.attempts
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Retry facts, inserted into the extensions of a response that needed more than one attempt or
/// that is a transient failure the layer gave up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryInfo {
    /// Attempts made (sends), including the one that produced this response.
    pub attempts: u32,
    /// The last delay a server asked for with `Retry-After`, as asked (before any cap).
    pub last_retry_after: Option<Duration>,
}
