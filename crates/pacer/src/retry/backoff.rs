//! Capped exponential backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// How a [`Backoff`] randomises the capped exponential delay.
///
/// The cap is applied *before* the random draw, so every variant stays random at the cap and
/// never exceeds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Uniform in `[0, capped]` (the default; "full jitter").
    #[default]
    Full,
    /// Uniform in `[capped / 2, capped]` ("equal jitter").
    Equal,
    /// AWS "decorrelated jitter": uniform in `[base, min(max, 3 * previous delay)]`, so always
    /// within `[base, max]`. It depends on the previous delay, not on the attempt number.
    Decorrelated,
    /// No randomness: exactly the capped exponential delay.
    None,
}

/// Exponential backoff: `base * 2^n`, capped at `max`, then randomised by a [`Jitter`].
///
/// [`Backoff::delay`] is a pure function of its inputs and the RNG it is given, so tests can
/// seed it; it never panics and is overflow-safe for any attempt number.
///
/// ```
/// use std::time::Duration;
/// use pacer::retry::{Backoff, Jitter};
/// use rand::{SeedableRng, rngs::SmallRng};
///
/// let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60)).jitter(Jitter::None);
/// let mut rng = SmallRng::seed_from_u64(7);
/// assert_eq!(backoff.delay(0, Duration::ZERO, &mut rng), Duration::from_millis(500));
/// assert_eq!(backoff.delay(3, Duration::ZERO, &mut rng), Duration::from_secs(4));
/// assert_eq!(backoff.delay(u32::MAX, Duration::ZERO, &mut rng), Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: Jitter,
}

impl Default for Backoff {
    /// Base 0.5 s, max 60 s, full jitter.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60))
    }
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max`, with [`Jitter::Full`].
    ///
    /// A `base` above `max` is lowered to `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        let base = if base.as_nanos() > max.as_nanos() {
            max
        } else {
            base
        };
        Self {
            base,
            max,
            jitter: Jitter::Full,
        }
    }

    /// Sets the jitter.
    #[must_use]
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The first (un-jittered) delay.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The cap: no delay is ever longer.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The configured jitter.
    pub const fn jitter_kind(&self) -> Jitter {
        self.jitter
    }

    /// The un-jittered delay before retry number `attempt` (0 for the first retry):
    /// `min(base * 2^attempt, max)`, saturating instead of overflowing.
    pub fn capped(&self, attempt: u32) -> Duration {
        1u32.checked_shl(attempt)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay before retry number `attempt` (0 for the first retry).
    ///
    /// `prev` is the previous delay (`Duration::ZERO` before the first retry); only
    /// [`Jitter::Decorrelated`] uses it. The result is always within `[0, max]`, and within
    /// `[base, max]` for decorrelated jitter.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, prev: Duration, rng: &mut R) -> Duration {
        match self.jitter {
            Jitter::None => self.capped(attempt),
            Jitter::Full => {
                let capped = self.capped(attempt);
                rng.random_range(Duration::ZERO..=capped)
            }
            Jitter::Equal => {
                let capped = self.capped(attempt);
                let half = capped / 2;
                half + rng.random_range(Duration::ZERO..=capped - half)
            }
            Jitter::Decorrelated => {
                let prev = if prev.is_zero() { self.base } else { prev };
                let upper = prev.saturating_mul(3).clamp(self.base, self.max);
                rng.random_range(self.base..=upper)
            }
        }
    }
}
