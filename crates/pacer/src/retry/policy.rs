//! [`RetryPolicy`]: what to retry and how (caps, backoff, `Retry-After`, budget, classifier).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::backoff::Backoff;
use super::budget::RetryBudget;
use super::classify::{Classify, DefaultClassifier};
use crate::events::observer::Events;
use crate::retry_after::cap::RetryAfterMode;

/// What to retry and how: caps, backoff, `Retry-After`, budget and classifier.
///
/// Cloning is cheap, and clones share the [`RetryBudget`].
#[derive(Clone)]
pub struct RetryPolicy {
    pub(super) max_retries: u32,
    pub(super) backoff: Backoff,
    pub(super) deadline: Option<Duration>,
    pub(super) budget: Option<RetryBudget>,
    pub(super) classifier: Arc<dyn Classify>,
    pub(super) events: Events,
    pub(super) retry_after_cap: Duration,
    pub(super) retry_after_mode: RetryAfterMode,
    pub(super) drain_limit: u64,
    pub(super) seed: Option<(u64, Arc<AtomicU64>)>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("retry_after_mode", &self.retry_after_mode)
            .field("drain_limit", &self.drain_limit)
            .field("seed", &self.seed.as_ref().map(|(s, _)| s))
            .finish_non_exhaustive()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The defaults: 5 retries, [`Backoff::default`] (0.5 s to 60 s, full jitter), no deadline,
    /// a [`RetryBudget::default`], the [`DefaultClassifier`], `Retry-After` capped at 60 s and
    /// clamped, failed response bodies up to 64 KiB drained.
    pub fn new() -> Self {
        Self {
            max_retries: 5,
            backoff: Backoff::default(),
            deadline: None,
            budget: Some(RetryBudget::default()),
            classifier: Arc::new(DefaultClassifier),
            events: Events::none(),
            retry_after_cap: Duration::from_secs(60),
            retry_after_mode: RetryAfterMode::Clamp,
            drain_limit: 64 * 1024,
            seed: None,
        }
    }

    /// Retries after the first attempt (default 5; 0 disables retries).
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The backoff used when the server gives no `Retry-After`.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// A total deadline for the logical request, counted from the call, covering attempts,
    /// waits for the inner service to be ready and sleeps.
    ///
    /// No sleep is started unless it ends before the deadline; otherwise the last outcome is
    /// returned as is. If the deadline passes while an attempt is in flight (or waiting to be
    /// sent), the attempt is cancelled and the error is a [`DeadlineExceeded`](super::DeadlineExceeded). Needs a tokio
    /// runtime with the time driver (as any sleep does).
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The retry budget (shared by every clone of this policy).
    #[must_use]
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Disables the retry budget: only `max_retries` and the deadline limit retries.
    #[must_use]
    pub fn without_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Replaces the [`DefaultClassifier`].
    #[must_use]
    pub fn classifier(mut self, classifier: impl Classify) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// The longest server-requested delay honoured as is (default 60 s).
    #[must_use]
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// What to do with a server-requested delay above the cap (default [`RetryAfterMode::Clamp`]).
    #[must_use]
    pub fn retry_after_mode(mut self, mode: RetryAfterMode) -> Self {
        self.retry_after_mode = mode;
        self
    }

    /// The largest failed response body (known length, in bytes) read and discarded before a
    /// retry so its connection can be reused (default 64 KiB; 0 disables draining).
    #[must_use]
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.drain_limit = bytes;
        self
    }

    /// Makes the jitter deterministic: each logical request draws from a generator seeded with
    /// `seed` and its sequence number. For tests; by default each request seeds from the
    /// thread-local generator.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some((seed, Arc::new(AtomicU64::new(0))));
        self
    }

    /// Reports retries, give-ups, empty-budget skips and timeouts to `observer` (see
    /// [`crate::events`]).
    pub fn observer(mut self, observer: impl Into<Events>) -> Self {
        self.events = observer.into();
        self
    }

    /// The budget, if any, e.g. to read its balance.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    pub(super) fn rng(&self) -> SmallRng {
        match &self.seed {
            Some((seed, seq)) => {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            }
            None => SmallRng::from_rng(&mut rand::rng()),
        }
    }
}
