//! What to do with a server-given delay above the cap: [`RetryAfterMode`], and the error that
//! fails fast, [`RetryAfterExceeded`]. A leaf, so that the retry layer and the pause layer can
//! both name them.

use std::fmt;
use std::time::Duration;

/// Default cap on a server-given delay.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);

/// What to do when a server asks for a `Retry-After` longer than the cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RetryAfterMode {
    /// Wait the cap instead (the default).
    #[default]
    Clamp,
    /// Give up at once with a [`RetryAfterExceeded`] error carrying the requested delay.
    FailFast,
}

/// The error returned in [`RetryAfterMode::FailFast`] when the server asks for a delay above the
/// cap (by [`RetryLayer`](crate::retry::RetryLayer)), and by
/// [`RetryAfterLayer`](crate::retry_after::RetryAfterLayer) (whatever the mode) when a shared
/// pause would hold a request longer than the cap in total: a pause extended again and again
/// while the request waits, or one set on a shared gate for longer than this layer's cap.
///
/// ```
/// # use pacer::retry::{BoxError, RetryAfterExceeded};
/// fn requested_delay(err: &BoxError) -> Option<std::time::Duration> {
///     err.downcast_ref::<RetryAfterExceeded>().map(|e| e.requested())
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfterExceeded {
    requested: Duration,
    cap: Duration,
    attempts: u32,
}

impl RetryAfterExceeded {
    /// The refusal of a server-given delay `requested` above `cap`, after `attempts` attempts.
    pub(crate) fn new(requested: Duration, cap: Duration, attempts: u32) -> Self {
        Self {
            requested,
            cap,
            attempts,
        }
    }

    /// The delay the server asked for.
    pub fn requested(&self) -> Duration {
        self.requested
    }

    /// The configured cap it exceeds.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// Attempts made, including the one that got this answer; 0 when the pause gate refused the
    /// request before it was sent.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for RetryAfterExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server asked to retry after {:?}, more than the cap of {:?}",
            self.requested, self.cap
        )
    }
}

impl std::error::Error for RetryAfterExceeded {}
