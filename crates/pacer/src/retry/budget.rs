//! A retry budget shared by every clone of a policy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// Fixed-point unit of the balance: one token is a million micro-tokens.
const TOKEN: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A token bucket that keeps retries to a small share of traffic.
///
/// Every response classified as a success deposits a fraction of a token (default 0.2), every
/// retry withdraws one whole token, and the balance is capped (default 100 tokens) so a long
/// healthy period cannot bank an unbounded burst of retries. When the balance is empty, a floor of
/// `min_retries_per_sec` retries per second (default 10, with a burst of one second's worth) is
/// still allowed, so a client with little traffic keeps its retries.
///
/// Under a total outage no deposits arrive, so retries are limited to the floor plus whatever was
/// banked: instead of multiplying the load by `max_retries + 1`, the client adds at most
/// `min_retries_per_sec` retries per second (and at most 20% of its successful traffic in normal
/// times).
///
/// Clones share one bucket (an `Arc` of two atomics); both operations are lock-free
/// compare-and-swap loops on integers, so the accounting is exact. Time is read from
/// [`tokio::time::Instant`], so paused-time tests are exact too.
///
/// ```
/// use pacer::retry::RetryBudget;
///
/// let budget = RetryBudget::builder().deposit_ratio(0.2).min_retries_per_sec(0).build();
/// assert!(!budget.withdraw());
/// for _ in 0..5 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw()); // five successes paid for one retry
/// assert!(!budget.withdraw());
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    /// Banked micro-tokens.
    balance: AtomicU64,
    deposit: u64,
    max_balance: u64,
    /// Floor as GCRA: theoretical arrival time in nanoseconds since `epoch`.
    tat: AtomicU64,
    epoch: Instant,
    /// Nanoseconds per floor retry; 0 disables the floor.
    interval: u64,
    /// Burst tolerance of the floor in nanoseconds.
    tolerance: u64,
    min_per_sec: u32,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("balance", &self.balance())
            .field("deposit_ratio", &(self.inner.deposit as f64 / TOKEN as f64))
            .field("max_balance", &(self.inner.max_balance / TOKEN))
            .field("min_retries_per_sec", &self.inner.min_per_sec)
            .finish()
    }
}

impl Default for RetryBudget {
    /// Deposit ratio 0.2, floor 10 retries per second, at most 100 banked tokens.
    fn default() -> Self {
        Self::builder().build()
    }
}

impl RetryBudget {
    /// A builder with the defaults of [`RetryBudget::default`].
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            deposit_ratio: 0.2,
            min_retries_per_sec: 10,
            max_balance: 100,
        }
    }

    /// Records a success: adds the deposit ratio to the balance, up to the cap.
    pub fn deposit(&self) {
        let inner = &*self.inner;
        let _ = inner
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b < inner.max_balance)
                    .then(|| b.saturating_add(inner.deposit).min(inner.max_balance))
            });
    }

    /// Asks for one retry: takes a banked token, or else a slot of the per-second floor.
    /// Returns `false` (and takes nothing) when neither is available.
    pub fn withdraw(&self) -> bool {
        let inner = &*self.inner;
        if inner
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_sub(TOKEN)
            })
            .is_ok()
        {
            return true;
        }
        if inner.interval == 0 {
            return false;
        }
        let now = u64::try_from(
            Instant::now()
                .saturating_duration_since(inner.epoch)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        inner
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let new_tat = tat.max(now).saturating_add(inner.interval);
                (new_tat - now <= inner.tolerance).then_some(new_tat)
            })
            .is_ok()
    }

    /// The floor: retries per second allowed even with an empty balance.
    pub fn min_retries_per_sec(&self) -> u32 {
        self.inner.min_per_sec
    }

    /// The banked balance in tokens (the floor is not included).
    pub fn balance(&self) -> f64 {
        self.inner.balance.load(Ordering::Acquire) as f64 / TOKEN as f64
    }
}

/// Configures a [`RetryBudget`]; see [`RetryBudget::builder`].
#[derive(Clone, Debug)]
pub struct RetryBudgetBuilder {
    deposit_ratio: f64,
    min_retries_per_sec: u32,
    max_balance: u32,
}

impl RetryBudgetBuilder {
    /// Tokens deposited per success (default 0.2: one retry per five successes). Negative or
    /// NaN values count as 0; values above 1000 as 1000.
    #[must_use]
    pub fn deposit_ratio(mut self, ratio: f64) -> Self {
        self.deposit_ratio = ratio;
        self
    }

    /// Retries per second allowed even with an empty balance (default 10; 0 disables the floor).
    #[must_use]
    pub fn min_retries_per_sec(mut self, n: u32) -> Self {
        self.min_retries_per_sec = n;
        self
    }

    /// The most tokens the balance can hold (default 100).
    #[must_use]
    pub fn max_balance(mut self, tokens: u32) -> Self {
        self.max_balance = tokens;
        self
    }

    /// Builds the budget. The floor starts full.
    pub fn build(self) -> RetryBudget {
        let ratio = if self.deposit_ratio.is_nan() {
            0.0
        } else {
            self.deposit_ratio.clamp(0.0, 1000.0)
        };
        // In range by the clamp above, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let deposit = (ratio * TOKEN as f64).round() as u64;
        let per_sec = u64::from(self.min_retries_per_sec);
        let interval = NANOS_PER_SEC.checked_div(per_sec).unwrap_or(0);
        RetryBudget {
            inner: Arc::new(Inner {
                balance: AtomicU64::new(0),
                deposit,
                max_balance: u64::from(self.max_balance) * TOKEN,
                tat: AtomicU64::new(0),
                epoch: Instant::now(),
                interval,
                tolerance: interval.saturating_mul(per_sec),
                min_per_sec: self.min_retries_per_sec,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn floor_allows_its_rate_and_no_more() {
        let budget = RetryBudget::builder().min_retries_per_sec(10).build();
        let granted = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 10, "a burst of one second's worth");
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        // Over 60 s, exactly 10 per second.
        let mut granted = 0;
        for _ in 0..600 {
            tokio::time::advance(Duration::from_millis(100)).await;
            granted += (0..5).filter(|_| budget.withdraw()).count();
        }
        assert_eq!(granted, 600);
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_are_exact_and_capped() {
        let budget = RetryBudget::builder()
            .min_retries_per_sec(0)
            .max_balance(3)
            .build();
        for _ in 0..15 {
            budget.deposit();
        }
        assert_eq!(budget.balance(), 3.0);
        for _ in 0..100 {
            budget.deposit();
        }
        assert_eq!(budget.balance(), 3.0, "capped");
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 3);
        assert_eq!(budget.balance(), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_bucket() {
        let a = RetryBudget::builder()
            .min_retries_per_sec(0)
            .deposit_ratio(0.5)
            .build();
        let b = a.clone();
        a.deposit();
        b.deposit();
        assert!(a.withdraw());
        assert!(!b.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn hostile_ratios_are_sanitised() {
        for ratio in [f64::NAN, -1.0, f64::NEG_INFINITY] {
            let b = RetryBudget::builder()
                .deposit_ratio(ratio)
                .min_retries_per_sec(0)
                .build();
            b.deposit();
            assert_eq!(b.balance(), 0.0);
        }
        let b = RetryBudget::builder()
            .deposit_ratio(f64::INFINITY)
            .min_retries_per_sec(0)
            .build();
        b.deposit();
        assert_eq!(
            b.balance(),
            100.0,
            "clamped to 1000 per deposit, then to the balance cap"
        );
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let budget = RetryBudget::builder()
            .min_retries_per_sec(0)
            .deposit_ratio(1.0)
            .max_balance(1000)
            .build();
        for _ in 0..1000 {
            budget.deposit();
        }
        let granted = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| budget.withdraw()).count()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        });
        assert_eq!(granted, 1000);
    }
}
