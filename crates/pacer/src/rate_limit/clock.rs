//! Where the limiter reads the time: [`LimiterClock`] picks a source, [`Clock`] is the seam
//! for one of your own.
//!
//! The buckets keep nanoseconds since the limiter was built; each decision reads the clock
//! once. The built-in sources are matched on, not called through a trait object, so the
//! decision path stays free of virtual calls; only [`LimiterClock::Custom`] pays one.
//!
//! | source | cost of a read (this repository's 2-core VM) | follows `tokio::time::pause` |
//! |---|---|---|
//! | [`LimiterClock::Tokio`] (default) | about 25-30 ns (`clock_gettime`) | yes: tests with paused time are exact |
//! | [`LimiterClock::Tsc`] (feature `quanta`) | a few ns (the CPU's timestamp counter, read by quanta as governor does) | **no** |
//! | [`LimiterClock::Custom`] | yours, plus one virtual call | as you make it |
//!
//! Waiting ([`RateLimiter::acquire`](super::RateLimiter::acquire), the wait-mode layer) always
//! sleeps on tokio's timer, until the instant the bucket named: so any clock must run at the
//! pace of tokio's, and with paused time only [`LimiterClock::Tokio`] gives exact waits.
//!
//! What [`LimiterClock::Tsc`] gives up: paused-time tests (the counter runs on); and on a
//! machine without an invariant timestamp counter quanta falls back to the OS clock, so it is
//! no faster there. Its nanoseconds are calibrated against the OS clock once, so over hours it
//! may drift from tokio's clock by a few parts per million: a wait can end microseconds early
//! or late, and no bucket admits more than its quota either way (each bucket reads one clock).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// A source of time for [`LimiterClock::Custom`]: monotonic nanoseconds.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Nanoseconds since an instant of the clock's choosing; never decreases.
    fn now_nanos(&self) -> u64;
}

/// The clock a [`RateLimiter`](super::RateLimiter) reads, chosen with
/// [`RateLimiterBuilder::clock`](super::RateLimiterBuilder::clock). See the
/// [module docs](self) for what each costs and gives up.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum LimiterClock {
    /// tokio's clock: follows `tokio::time::pause` and `advance` (the default).
    #[default]
    Tokio,
    /// The CPU's timestamp counter, through quanta (feature `quanta`): the fastest read, but
    /// it ignores tokio's paused time.
    #[cfg(feature = "quanta")]
    Tsc,
    /// A clock of your own, read through one virtual call.
    Custom(Arc<dyn Clock>),
}

/// A started [`LimiterClock`]: its reading at the limiter's creation, so that `now` counts
/// from zero, and tokio's instant of that moment, to turn a bucket's nanoseconds into an
/// instant to sleep until.
pub(crate) struct RunningClock {
    source: Source,
    /// tokio's instant when the clock started: nanosecond 0.
    epoch: Instant,
}

enum Source {
    Tokio,
    #[cfg(feature = "quanta")]
    Tsc {
        clock: quanta::Clock,
        start: u64,
    },
    Custom {
        clock: Arc<dyn Clock>,
        start: u64,
    },
}

impl RunningClock {
    pub(crate) fn start(clock: &LimiterClock) -> Self {
        let epoch = Instant::now();
        let source = match clock {
            LimiterClock::Tokio => Source::Tokio,
            #[cfg(feature = "quanta")]
            LimiterClock::Tsc => {
                let clock = quanta::Clock::new();
                let start = clock.raw();
                Source::Tsc { clock, start }
            }
            LimiterClock::Custom(clock) => Source::Custom {
                start: clock.now_nanos(),
                clock: Arc::clone(clock),
            },
        };
        Self { source, epoch }
    }

    /// Nanoseconds since the clock started.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match &self.source {
            Source::Tokio => {
                let elapsed = Instant::now().saturating_duration_since(self.epoch);
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
            }
            #[cfg(feature = "quanta")]
            Source::Tsc { clock, start } => clock.delta_as_nanos(*start, clock.raw()),
            Source::Custom { clock, start } => clock.now_nanos().saturating_sub(*start),
        }
    }

    /// tokio's instant of nanosecond `at`, to sleep until.
    pub(crate) fn instant(&self, at: u64) -> Instant {
        let since = Duration::from_nanos(at);
        // Past tokio's range (centuries ahead) is as good as never: a year ahead is asked
        // instead, and the wait is refused long before by `max_wait` anyway.
        self.epoch
            .checked_add(since)
            .or_else(|| self.epoch.checked_add(Duration::from_secs(365 * 86_400)))
            .unwrap_or(self.epoch)
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self.source {
            Source::Tokio => "tokio",
            #[cfg(feature = "quanta")]
            Source::Tsc { .. } => "tsc",
            Source::Custom { .. } => "custom",
        }
    }
}
