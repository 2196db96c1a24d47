use std::fmt;
use std::time::Duration;

/// How many requests a bucket admits: a sustained `rate` per second and a `burst` that may be
/// spent at once after the bucket has been idle.
///
/// ```
/// use pacer::rate_limit::Quota;
///
/// # fn main() -> Result<(), pacer::rate_limit::QuotaError> {
/// let namespace = Quota::per_second(5)?.with_burst(10)?;
/// let slow = Quota::per_second(0.5)?; // one request every two seconds, burst 1
/// let hourly = Quota::per_hour(100)?;
/// assert_eq!(namespace.burst(), 10);
/// assert_eq!(slow.interval(), std::time::Duration::from_secs(2));
/// assert_eq!(hourly.rate(), 100.0 / 3600.0);
/// # Ok(()) }
/// ```
///
/// Invalid rates (zero, negative, NaN, infinite, or so extreme that one request's interval does
/// not fit in nanoseconds) and a zero burst are reported by the constructors as [`QuotaError`].
#[derive(Clone, Copy, PartialEq)]
pub struct Quota {
    rate: f64,
    interval_nanos: u64,
    burst: u32,
}

/// The longest interval between two requests a quota may ask for (about 100 days); longer
/// ones are refused so that bucket arithmetic cannot overflow.
const MAX_INTERVAL_NANOS: u64 = 1 << 53;

impl Quota {
    /// `rate` requests per second; the burst defaults to the rate rounded up (at least 1).
    pub fn per_second(rate: impl Into<f64>) -> Result<Self, QuotaError> {
        Self::with_rate(rate.into(), 1.0)
    }

    /// `rate` requests per minute; the burst defaults to 1.
    pub fn per_minute(rate: impl Into<f64>) -> Result<Self, QuotaError> {
        Self::with_rate(rate.into(), 60.0)?.with_burst(1)
    }

    /// `rate` requests per hour; the burst defaults to 1.
    pub fn per_hour(rate: impl Into<f64>) -> Result<Self, QuotaError> {
        Self::with_rate(rate.into(), 3600.0)?.with_burst(1)
    }

    /// One request every `interval`; the burst defaults to 1.
    pub fn every(interval: Duration) -> Result<Self, QuotaError> {
        let nanos = interval.as_nanos();
        if nanos == 0 || nanos > u128::from(MAX_INTERVAL_NANOS) {
            return Err(QuotaError::Interval(interval));
        }
        Ok(Self {
            rate: 1e9 / nanos as f64,
            interval_nanos: nanos as u64,
            burst: 1,
        })
    }

    fn with_rate(count: f64, per_seconds: f64) -> Result<Self, QuotaError> {
        let rate = count / per_seconds;
        if !count.is_finite() || count <= 0.0 || rate > 1e9 {
            return Err(QuotaError::Rate(count));
        }
        let interval = (1e9 / rate).round();
        if !(1.0..=MAX_INTERVAL_NANOS as f64).contains(&interval) {
            return Err(QuotaError::Rate(count));
        }
        Ok(Self {
            rate,
            interval_nanos: interval as u64,
            burst: rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
        })
    }

    /// The same rate with `burst` requests allowed at once after idleness (at least 1).
    pub fn with_burst(self, burst: u32) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::Burst);
        }
        Ok(Self { burst, ..self })
    }

    /// Sustained requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Requests admitted at once by a full bucket.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one request's token takes to come back (`1 / rate`), rounded to nanoseconds.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// The time an empty bucket takes to fill up again (`burst / rate`).
    pub fn refill_time(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos.saturating_mul(u64::from(self.burst)))
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// This quota scaled by `share` (one replica's part of a shared quota): the rate times
    /// `share`, the burst times `share` rounded up (at least 1).
    pub(crate) fn scaled(&self, share: f64) -> Result<Self, QuotaError> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(QuotaError::Rate(self.rate * share));
        }
        let burst = (f64::from(self.burst) * share)
            .ceil()
            .clamp(1.0, f64::from(u32::MAX)) as u32;
        Self::with_rate(self.rate * share, 1.0)?.with_burst(burst)
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quota({self})")
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} req/s, burst {}", self.rate, self.burst)
    }
}

/// Why a [`Quota`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum QuotaError {
    /// The rate is zero, negative, NaN, infinite, or out of the representable range.
    Rate(f64),
    /// The interval is zero or longer than about 100 days.
    Interval(Duration),
    /// The burst is zero.
    Burst,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rate(rate) => write!(
                f,
                "invalid rate {rate}: a rate must be a finite number above zero, at most 1e9 per second and at least one request per 100 days"
            ),
            Self::Interval(interval) => write!(
                f,
                "invalid interval {interval:?}: it must be above zero and at most about 100 days"
            ),
            Self::Burst => f.write_str("invalid burst 0: a bucket must admit at least one request"),
        }
    }
}

impl std::error::Error for QuotaError {}

/// A quota in the form the GCRA works with: nanosecond emission interval `t`, tolerance `tau`
/// (how far ahead of now the theoretical arrival time may run), and the theoretical arrival time
/// a bucket nobody has used yet starts from (restart protection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    pub(crate) t: u64,
    pub(crate) tau: u64,
    pub(crate) initial_tat: u64,
}

impl Gcra {
    /// `initial_fill` in `0.0..=1.0`: the share of the burst a fresh bucket holds at time 0.
    pub(crate) fn new(quota: Quota, initial_fill: f64) -> Self {
        let t = quota.interval_nanos();
        let full = t.saturating_mul(u64::from(quota.burst));
        let empty_share = (1.0 - initial_fill).clamp(0.0, 1.0);
        Self {
            t,
            tau: full - t,
            initial_tat: (full as f64 * empty_share).round() as u64,
        }
    }

    /// The earliest time a request may go given the bucket's theoretical arrival time.
    #[inline]
    pub(crate) fn earliest(&self, tat: u64) -> u64 {
        tat.saturating_sub(self.tau)
    }

    /// The bucket's theoretical arrival time after admitting one request at `now`.
    #[inline]
    pub(crate) fn admit(&self, tat: u64, now: u64) -> u64 {
        tat.max(now).saturating_add(self.t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_reject_invalid_rates_without_panicking() {
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            2e9,
            1e-12,
        ] {
            assert!(
                matches!(Quota::per_second(bad), Err(QuotaError::Rate(_))),
                "{bad} was accepted"
            );
        }
        assert_eq!(
            Quota::per_second(1).and_then(|q| q.with_burst(0)),
            Err(QuotaError::Burst)
        );
        assert!(Quota::every(Duration::ZERO).is_err());
        assert!(Quota::every(Duration::from_secs(365 * 86_400)).is_err());
    }

    #[test]
    fn fractional_and_natural_constructors() -> Result<(), QuotaError> {
        let q = Quota::per_second(0.5)?;
        assert_eq!((q.interval(), q.burst()), (Duration::from_secs(2), 1));
        let q = Quota::per_second(5)?.with_burst(10)?;
        assert_eq!((q.interval(), q.burst()), (Duration::from_millis(200), 10));
        assert_eq!(q.refill_time(), Duration::from_secs(2));
        assert_eq!(Quota::per_minute(6)?.interval(), Duration::from_secs(10));
        assert_eq!(Quota::every(Duration::from_millis(250))?.rate(), 4.0);
        assert_eq!(q.to_string(), "5 req/s, burst 10");
        Ok(())
    }

    #[test]
    fn initial_fill_sets_the_starting_point() -> Result<(), QuotaError> {
        let q = Quota::per_second(10)?.with_burst(10)?;
        assert_eq!(Gcra::new(q, 1.0).initial_tat, 0);
        assert_eq!(Gcra::new(q, 0.0).initial_tat, 1_000_000_000);
        assert_eq!(Gcra::new(q, 0.5).initial_tat, 500_000_000);
        Ok(())
    }
}
