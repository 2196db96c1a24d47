//! Per-thread leases of tokens ([`ThreadLeases`]): opt-in, for a limiter that several threads
//! decide on at once.
//!
//! Without leases every admitted decision writes the global bucket's cache line (one
//! compare-and-swap) and its namespace's shard (one lock), so two threads deciding together
//! bounce those lines between their cores and decide at about the rate of one. With leases a
//! thread takes up to `max_tokens` slots of a bucket in one write and spends them from its own
//! memory: the global bucket whenever it has room, and the bucket of a namespace the thread
//! comes back to while the namespace is still in the thread's cache of 4 096 namespaces (a
//! first decision for a namespace leases nothing, so a thread cycling through far more
//! namespaces than that leases none of them, and wastes none).
//!
//! ```
//! use pacer::Namespace;
//! use pacer::rate_limit::{Quota, RateLimiter, ThreadLeases};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RateLimiter::builder()
//!     .global(Quota::per_second(100_000)?.with_burst(10_000)?)
//!     .thread_leases(ThreadLeases::default())
//!     .build()?;
//! limiter.try_acquire(&Namespace::new("team-a"))?;
//! # Ok(()) }
//! ```
//!
//! # The bound stays exact
//!
//! A bucket is a GCRA cell: admitting a request at `now` gives it the bucket's theoretical
//! arrival time `θ = max(tat, now)`, provided `θ - τ <= now`, and moves `tat` to `θ + T`. A
//! lease of `k` slots moves `tat` by `k·T` at once and hands the thread the `k` arrival times
//! `θ, θ + T, …`. The thread spends a slot at `now` only while `now <= θ` of that slot (and
//! `θ - τ <= now` held when it was leased), which is exactly the condition under which the
//! bucket itself would have admitted it with that arrival time. So every admitted request,
//! leased or not, has its own arrival time `θ` within `[now, now + τ]`, spaced `T` apart
//! from every other: in any window of length `w`, at most `burst + rate · w` requests are
//! admitted, the same bound as without leases, however many threads hold leases.
//!
//! # What leases give up
//!
//! - **Slots can go unused.** A slot whose arrival time passes before its thread spends it is
//!   dropped, not given to another thread: each thread holds at most `max_tokens` slots of each
//!   bucket it leases from, and a lease never takes more than a quarter of what the bucket
//!   has left, so another thread is refused at most while a holder spends (or drops) its slots.
//!   A namespace pushed out of a thread's cache gives its slots back when no other thread took
//!   slots after them; a thread that stops deciding keeps its slots until their times pass.
//! - **The hold.** A bucket whose interval is shorter than `hold` (a rate above 50 000/s with
//!   the default 20 µs) refills faster than a thread spends slots, so a lease taken from it
//!   while it is (nearly) full starts `hold` after now, to outlive the microseconds its
//!   thread needs: the slots in between go unused, as unused slots of a full bucket always
//!   do, and such a bucket's burst is short by up to `hold × rate + 1` requests (21 at a
//!   million per second, of a burst that size of limit needs anyway). Slower buckets lease
//!   from their next slot: their burst is whole.
//! - **Memory.** Each thread that decides on the limiter gets 96 KiB for its cache (allocated
//!   at its first decision, freed with the limiter): mind a limiter that a large blocking pool
//!   calls.
//! - **Reported tokens.** [`RateLimiter::global_available`](super::RateLimiter::global_available)
//!   counts leased slots as taken.
//! - A decision that must wait (a namespace or global slot later than now) takes the ordinary
//!   path, so what a waiting [`acquire`](super::RateLimiter::acquire) holds and gives back when
//!   dropped is never leased.
//!
//! Leases work on every clock; under `tokio::time::pause` they are exact like the rest
//! (time does not move while a thread spends its slots).

use std::cell::Cell;
use std::time::Duration;

use thread_local::ThreadLocal;

use super::quota::Gcra;

/// How threads lease tokens; given to
/// [`RateLimiterBuilder::thread_leases`](super::RateLimiterBuilder::thread_leases). See the
/// [module docs](self) for the bound and what leases give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadLeases {
    max_tokens: u32,
    hold: Duration,
}

impl Default for ThreadLeases {
    /// Up to 1 024 slots per lease (a quarter of what the bucket has, if less), held at least
    /// 20 µs: two threads hammering one namespace then write its bucket and the global one
    /// once per 1 024 decisions each. Each of those writes moves a cache line between cores
    /// (about 100 ns here); at 256 slots they cost two threads a tenth of their scaling.
    fn default() -> Self {
        Self {
            max_tokens: MAX_LEASE_TOKENS,
            hold: Duration::from_micros(20),
        }
    }
}

/// The most slots one lease may take: more would let one thread hold a noticeable share of
/// any realistic burst.
pub const MAX_LEASE_TOKENS: u32 = 1024;

/// The longest hold: a lease is a few microseconds of one thread's work, not a reservation.
pub const MAX_LEASE_HOLD: Duration = Duration::from_millis(10);

/// Why [`ThreadLeases::new`] refused its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadLeasesError {
    /// `max_tokens` is not within `2..=MAX_LEASE_TOKENS` (a lease of one is no lease).
    MaxTokens(u32),
    /// `hold` is longer than [`MAX_LEASE_HOLD`].
    Hold(Duration),
}

impl std::fmt::Display for ThreadLeasesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MaxTokens(n) => write!(
                f,
                "thread lease of {n} tokens is not within 2..={MAX_LEASE_TOKENS}"
            ),
            Self::Hold(hold) => write!(
                f,
                "thread lease hold {hold:?} is longer than {MAX_LEASE_HOLD:?}"
            ),
        }
    }
}

impl std::error::Error for ThreadLeasesError {}

impl ThreadLeases {
    /// Leases of up to `max_tokens` slots (`2..=1024`), each valid at least `hold` (at most
    /// 10 ms) after it is taken.
    pub fn new(max_tokens: u32, hold: Duration) -> Result<Self, ThreadLeasesError> {
        if !(2..=MAX_LEASE_TOKENS).contains(&max_tokens) {
            return Err(ThreadLeasesError::MaxTokens(max_tokens));
        }
        if hold > MAX_LEASE_HOLD {
            return Err(ThreadLeasesError::Hold(hold));
        }
        Ok(Self { max_tokens, hold })
    }

    /// The most slots one lease takes.
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// How long after it is taken a lease stays valid at least.
    pub fn hold(&self) -> Duration {
        self.hold
    }
}

/// Slots of one bucket held by one thread: the arrival times `next, next + t, …` below `end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) next: u64,
    pub(crate) end: u64,
}

impl Lease {
    /// Spends the next slot that may still go at `now`: one whose arrival time is not past.
    #[inline]
    pub(crate) fn take(&mut self, now: u64, t: u64) -> bool {
        if now > self.next {
            self.skip_past(now, t);
        }
        if self.next < self.end {
            self.next += t;
            true
        } else {
            false
        }
    }

    /// Drops the slots whose arrival time `now` has passed.
    #[cold]
    fn skip_past(&mut self, now: u64, t: u64) {
        let behind = (now - self.next).div_ceil(t.max(1));
        self.next = behind
            .checked_mul(t)
            .and_then(|skip| self.next.checked_add(skip))
            .unwrap_or(u64::MAX);
    }

    /// Whether some slot is left (its time may have passed).
    pub(crate) fn is_held(&self) -> bool {
        self.next < self.end
    }
}

/// A namespace a thread decided for, and the slots it holds of that namespace's bucket.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NamespaceLease {
    pub(crate) key: u64,
    pub(crate) lease: Lease,
}

/// Sets of the per-thread namespace cache, of [`WAYS`] entries each: 4 096 namespaces, 96 KiB
/// per thread. Of a thousand namespaces about 2 in 100 land in a set that more than four share
/// (a Poisson tail), so a thread cycling through a thousand keeps 98 % of them cached;
/// one cycling through many more leases none (see [`Local::find`]) and gives nothing back.
const SETS: usize = 1024;
pub(crate) const WAYS: usize = 4;

/// The cache set of namespace `key` (of [`SETS`]): bits that neither the shard index (32..) nor hashbrown
/// (the lowest and the top seven) use.
#[inline]
pub(crate) fn set_index(key: u64) -> usize {
    (key >> 44) as usize & (SETS - 1)
}

/// One thread's leases. A cache line of its own (two, for the adjacent-line prefetcher), so
/// that threads whose entries sit side by side in the table do not share one.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Local {
    pub(crate) global: Cell<Lease>,
    /// A set-associative cache of the namespaces this thread decided for: an entry holds a
    /// lease from the second decision for its namespace on.
    namespaces: Box<[[Cell<NamespaceLease>; WAYS]]>,
}

impl Local {
    fn new() -> Self {
        Self {
            global: Cell::default(),
            namespaces: (0..SETS).map(|_| Default::default()).collect(),
        }
    }

    #[inline]
    fn set(&self, key: u64) -> &[Cell<NamespaceLease>; WAYS] {
        &self.namespaces[set_index(key)]
    }

    /// The entry of namespace `key`, if this thread decided for it lately. An entry is made by
    /// [`insert`](Self::insert) on a miss, so a namespace leases only when it comes back while
    /// still cached: a thread cycling through more namespaces than the cache holds misses
    /// every time, leases none and gives nothing back.
    #[inline]
    pub(crate) fn find(&self, key: u64) -> Option<&Cell<NamespaceLease>> {
        self.set(key).iter().find(|entry| entry.get().key == key)
    }

    /// Makes an entry for namespace `key`, without a lease, in the front of its set (the
    /// others move back one: the oldest leaves); returns the entry it pushed out if that held
    /// slots (to give back).
    #[inline]
    pub(crate) fn insert(&self, key: u64) -> Option<NamespaceLease> {
        let mut moving = NamespaceLease {
            key,
            lease: Lease::default(),
        };
        for entry in self.set(key) {
            moving = entry.replace(moving);
        }
        moving.lease.is_held().then_some(moving)
    }
}

/// Every thread's [`Local`], and the settings.
pub(crate) struct Leases {
    locals: ThreadLocal<Local>,
    max_tokens: u64,
    hold: u64,
}

impl Leases {
    pub(crate) fn new(settings: ThreadLeases) -> Self {
        Self {
            locals: ThreadLocal::new(),
            max_tokens: u64::from(settings.max_tokens),
            hold: u64::try_from(settings.hold.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// The calling thread's leases.
    #[inline]
    pub(crate) fn local(&self) -> &Local {
        self.locals.get_or(Local::new)
    }

    /// The lease to take from a bucket at `tat` now: the new `tat` and the slots after the one
    /// the deciding request spends, or `None` when the bucket has too little room to share
    /// (the caller then takes one slot as without leases).
    ///
    /// The last slot's arrival time is at most `now + τ` (the bucket would admit it now), and
    /// at most a quarter of the slots that fit go. When the interval is shorter than the hold,
    /// a thread could not spend slots as fast as their times pass, so the first slot's time
    /// is at least `now + hold`; longer intervals need no gap (slot `j` stays good for `j`
    /// intervals).
    #[inline]
    pub(crate) fn size(&self, gcra: Gcra, tat: u64, now: u64) -> Option<(u64, Lease)> {
        let earliest = if gcra.t < self.hold {
            now.saturating_add(self.hold)
        } else {
            now
        };
        let start = tat.max(earliest);
        let limit = now.saturating_add(gcra.tau);
        if start > limit {
            return None;
        }
        let fit = (limit - start) / gcra.t + 1;
        let tokens = (fit / 4).min(self.max_tokens);
        if tokens < 2 {
            return None;
        }
        // `tokens * t <= limit - start + t`, so the sum stays below `limit + t`: no overflow.
        let end = start + tokens * gcra.t;
        Some((
            end,
            Lease {
                next: start + gcra.t,
                end,
            },
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gcra(t: u64, burst: u64) -> Gcra {
        Gcra {
            t,
            tau: t * (burst - 1),
            initial_tat: 0,
        }
    }

    fn leases(max_tokens: u32, hold_nanos: u64) -> Leases {
        Leases::new(ThreadLeases::new(max_tokens, Duration::from_nanos(hold_nanos)).unwrap())
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        assert_eq!(
            ThreadLeases::new(1, Duration::ZERO),
            Err(ThreadLeasesError::MaxTokens(1))
        );
        assert_eq!(
            ThreadLeases::new(MAX_LEASE_TOKENS + 1, Duration::ZERO),
            Err(ThreadLeasesError::MaxTokens(MAX_LEASE_TOKENS + 1))
        );
        let long = MAX_LEASE_HOLD + Duration::from_nanos(1);
        assert_eq!(
            ThreadLeases::new(2, long),
            Err(ThreadLeasesError::Hold(long))
        );
        assert!(ThreadLeases::new(2, Duration::ZERO).is_ok());
    }

    #[test]
    fn a_lease_takes_a_quarter_of_what_fits_and_at_most_max_tokens() {
        // A full bucket of 100 at T = 10: slots from now + hold to now + 990 fit.
        let (end, lease) = leases(32, 0).size(gcra(10, 100), 0, 1_000).unwrap();
        assert_eq!(lease, Lease { next: 1_010, end });
        assert_eq!(end, 1_000 + 25 * 10, "100 fit, a quarter leased");
        let (end, _) = leases(8, 0).size(gcra(10, 100), 0, 1_000).unwrap();
        assert_eq!(end, 1_000 + 8 * 10);
        // A hold longer than the interval starts the lease later and leaves fewer that fit.
        let (end, lease) = leases(32, 500).size(gcra(10, 100), 0, 1_000).unwrap();
        assert_eq!(lease.next, 1_510);
        assert_eq!(end, 1_500 + 12 * 10, "50 fit after the hold");
        // A backed-up bucket leases from its tat, which is past the hold already.
        let (end, lease) = leases(32, 500).size(gcra(10, 100), 1_900, 1_000).unwrap();
        assert_eq!(lease.next, 1_910);
        assert_eq!(end, 1_900 + 2 * 10, "1 900..=1 990 fit: 10, a quarter is 2");
    }

    #[test]
    fn an_interval_longer_than_the_hold_leases_from_now() {
        let (end, lease) = leases(32, 500).size(gcra(1_000, 100), 0, 1_000).unwrap();
        assert_eq!(
            lease.next, 2_000,
            "the first slot is now's, the next one interval on"
        );
        assert_eq!(end, 1_000 + 25 * 1_000);
    }

    #[test]
    fn no_lease_when_too_little_fits() {
        assert_eq!(leases(32, 0).size(gcra(10, 7), 0, 1_000), None);
        assert_eq!(leases(32, 0).size(gcra(10, 100), 1_990, 1_000), None);
        assert_eq!(leases(32, 0).size(gcra(10, 100), 2_000, 1_000), None);
        // A hold longer than the burst's span leaves nothing.
        assert_eq!(leases(32, 2_000).size(gcra(10, 100), 0, 1_000), None);
    }

    #[test]
    fn a_slot_goes_only_until_its_arrival_time() {
        let mut lease = Lease {
            next: 100,
            end: 130,
        };
        assert!(
            lease.take(50, 10),
            "early is fine: the bucket admitted it then"
        );
        assert_eq!(lease.next, 110);
        // At 125 the slot of 110 and 120 have passed; 130 is the end: nothing left.
        assert!(!lease.take(125, 10));
        let mut lease = Lease {
            next: 100,
            end: 130,
        };
        assert!(lease.take(115, 10), "the slot of 120 is still ahead");
        assert_eq!(lease.next, 130);
        assert!(!lease.is_held());
        let mut lease = Lease {
            next: 100,
            end: u64::MAX,
        };
        assert!(
            !lease.take(u64::MAX, 10),
            "no overflow past the clock's end"
        );
    }
}
