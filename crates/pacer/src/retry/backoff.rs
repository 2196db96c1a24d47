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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            Just(Jitter::None),
        ]
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..=3_600_000_000_000).prop_map(Duration::from_nanos),
            Just(Duration::ZERO),
            Just(Duration::MAX),
            any::<u64>().prop_map(Duration::from_secs),
        ]
    }

    proptest! {
        #[test]
        fn delay_within_zero_and_max(
            base in duration(),
            max in duration(),
            attempt in any::<u32>(),
            prev in duration(),
            jitter in jitter(),
            seed in any::<u64>(),
        ) {
            let b = Backoff::new(base, max).jitter(jitter);
            let mut rng = SmallRng::seed_from_u64(seed);
            let d = b.delay(attempt, prev, &mut rng);
            prop_assert!(d <= max);
            let capped = b.capped(attempt);
            prop_assert!(capped <= max);
            match jitter {
                Jitter::None => prop_assert_eq!(d, capped),
                Jitter::Full => prop_assert!(d <= capped),
                Jitter::Equal => prop_assert!(d >= capped / 2 && d <= capped),
                Jitter::Decorrelated => prop_assert!(d >= b.base() && d <= max),
            }
        }

        #[test]
        fn decorrelated_chain_stays_within_base_and_max(
            base in duration(),
            max in duration(),
            seed in any::<u64>(),
        ) {
            let b = Backoff::new(base, max).jitter(Jitter::Decorrelated);
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut prev = Duration::ZERO;
            for attempt in 0..64 {
                let d = b.delay(attempt, prev, &mut rng);
                prop_assert!(d >= base.min(max) && d <= max, "{:?} not in [{:?}, {:?}]", d, base, max);
                prev = d;
            }
        }

        #[test]
        fn capped_is_exponential_until_the_cap(base_ms in 1u64..10_000, attempt in 0u32..40) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_secs(60));
            let exact = Duration::from_millis(base_ms).checked_mul(1 << attempt.min(31));
            let expected = if attempt > 31 { Duration::from_secs(60) } else {
                exact.map_or(Duration::from_secs(60), |d| d.min(Duration::from_secs(60)))
            };
            prop_assert_eq!(b.capped(attempt), expected);
        }
    }

    fn mean_ratio(b: Backoff, attempt: u32, seed: u64) -> (f64, Duration, Duration) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let n = 20_000;
        let (mut sum, mut lo, mut hi) = (0.0, Duration::MAX, Duration::ZERO);
        for _ in 0..n {
            let d = b.delay(attempt, Duration::ZERO, &mut rng);
            sum += d.as_secs_f64();
            lo = lo.min(d);
            hi = hi.max(d);
        }
        (sum / f64::from(n) / b.capped(attempt).as_secs_f64(), lo, hi)
    }

    #[test]
    fn full_jitter_mean_is_half_the_capped_delay_even_at_the_cap() {
        let b = Backoff::default();
        // Attempt 3 is below the cap (4 s); attempt 30 is far above it (60 s).
        for (attempt, seed) in [(3, 1), (3, 2), (30, 3), (30, 4), (u32::MAX, 5)] {
            let (ratio, lo, hi) = mean_ratio(b, attempt, seed);
            // Fixed seeds: deterministic. The standard error with 20 000 draws is 0.2%.
            assert!(
                (ratio - 0.5).abs() < 0.01,
                "attempt {attempt}: mean/capped = {ratio}"
            );
            let capped = b.capped(attempt);
            assert!(hi <= capped);
            assert!(
                lo < capped / 100 && hi > capped * 99 / 100,
                "spread over the whole range"
            );
        }
    }

    #[test]
    fn equal_jitter_mean_is_three_quarters() {
        let b = Backoff::default().jitter(Jitter::Equal);
        for (attempt, seed) in [(2, 1), (40, 2)] {
            let (ratio, lo, hi) = mean_ratio(b, attempt, seed);
            assert!((ratio - 0.75).abs() < 0.01, "mean/capped = {ratio}");
            assert!(lo >= b.capped(attempt) / 2 && hi <= b.capped(attempt));
        }
    }

    #[test]
    fn random_at_the_cap() {
        // tower's backoff stops jittering at the cap; this one must not.
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let mut rng = SmallRng::seed_from_u64(9);
        let draws: std::collections::HashSet<Duration> = (0..100)
            .map(|_| b.delay(50, Duration::ZERO, &mut rng))
            .collect();
        assert!(draws.len() > 90);
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(10)));
    }

    #[test]
    fn base_above_max_is_lowered() {
        let b = Backoff::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(b.base(), Duration::from_secs(1));
        assert_eq!(b.capped(0), Duration::from_secs(1));
    }
}
