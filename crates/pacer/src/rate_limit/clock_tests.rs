//! The clock seam: decisions read the clock the limiter was built with, and only that one.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Clock, LimiterClock, Quota, RateLimiter};
use crate::namespace::Namespace;

/// A clock moved by hand.
#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap();
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn one_per_second_burst_two(clock: LimiterClock) -> RateLimiter {
    RateLimiter::builder()
        .global(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
        .per_namespace(Quota::per_second(1).unwrap().with_burst(2).unwrap())
        .clock(clock)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_custom_clock_drives_every_decision() {
    let manual = Arc::new(ManualClock::default());
    manual.advance(Duration::from_secs(1_000)); // the limiter counts from its own start
    let limiter = one_per_second_burst_two(LimiterClock::Custom(manual.clone()));
    let team = Namespace::new("team");
    limiter.try_acquire(&team).unwrap();
    limiter.try_acquire(&team).unwrap();
    let refused = limiter.try_acquire(&team).unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_secs(1));

    // tokio's clock is not the limiter's: moving it changes nothing.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(limiter.try_acquire(&team).is_err());

    manual.advance(Duration::from_millis(400));
    let refused = limiter.try_acquire(&team).unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_millis(600));
    manual.advance(Duration::from_millis(600));
    limiter.try_acquire(&team).unwrap();
    assert!(limiter.try_acquire(&team).is_err());
    assert!(format!("{limiter:?}").contains("clock: \"custom\""));
}

#[tokio::test(start_paused = true)]
async fn the_default_clock_is_tokios_and_follows_paused_time() {
    let limiter = one_per_second_burst_two(LimiterClock::default());
    let team = Namespace::new("team");
    limiter.try_acquire(&team).unwrap();
    limiter.try_acquire(&team).unwrap();
    assert!(limiter.try_acquire(&team).is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    limiter.try_acquire(&team).unwrap();
    assert!(format!("{limiter:?}").contains("clock: \"tokio\""));
}

#[tokio::test(start_paused = true)]
async fn a_clock_that_goes_back_never_admits_more() {
    #[derive(Debug)]
    struct Backwards(AtomicU64);
    impl Clock for Backwards {
        fn now_nanos(&self) -> u64 {
            // Each read a second earlier than the last, down to zero.
            self.0
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1_000_000_000))
                })
                .unwrap()
        }
    }
    let limiter = one_per_second_burst_two(LimiterClock::Custom(Arc::new(Backwards(
        AtomicU64::new(10_000_000_000),
    ))));
    let team = Namespace::new("team");
    let admitted = (0..100)
        .filter(|_| limiter.try_acquire(&team).is_ok())
        .count();
    assert_eq!(
        admitted, 2,
        "only the burst: a clock going back is read as standing still"
    );
}

/// The TSC clock ignores tokio's paused time: the trade-off its docs state.
#[cfg(feature = "quanta")]
#[tokio::test(start_paused = true)]
async fn the_tsc_clock_runs_on_real_time_not_paused_time() {
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
        .per_namespace(Quota::per_hour(1).unwrap().with_burst(3).unwrap())
        .clock(LimiterClock::Tsc)
        .build()
        .unwrap();
    let team = Namespace::new("team");
    for _ in 0..3 {
        limiter.try_acquire(&team).unwrap();
    }
    let refused = limiter.try_acquire(&team).unwrap_err();
    assert!(
        refused.retry_after > Duration::from_secs(3590),
        "{refused:?}"
    );
    tokio::time::advance(Duration::from_secs(7200)).await;
    assert!(
        limiter.try_acquire(&team).is_err(),
        "paused time moved the TSC clock"
    );
    assert!(format!("{limiter:?}").contains("clock: \"tsc\""));
}

/// Waiting on the TSC clock sleeps on tokio's timer until the slot the TSC clock named.
#[cfg(feature = "quanta")]
#[tokio::test]
async fn acquire_waits_on_the_tsc_clock() {
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(1000).unwrap().with_burst(1000).unwrap())
        .per_namespace(Quota::per_second(50).unwrap().with_burst(1).unwrap())
        .clock(LimiterClock::Tsc)
        .build()
        .unwrap();
    let team = Namespace::new("team");
    let start = std::time::Instant::now();
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(10), limiter.acquire(&team))
            .await
            .unwrap()
            .unwrap();
    }
    // Two waits of 20 ms each: the second and third calls waited for their slots.
    assert!(
        start.elapsed() >= Duration::from_millis(35),
        "{:?}",
        start.elapsed()
    );
}
