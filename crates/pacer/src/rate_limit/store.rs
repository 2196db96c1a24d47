//! The trait a shared rate-limit store implements, so that several replicas can share their
//! limits; see [`RateLimitStore`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use super::level::Level;
use super::quota::Quota;
use super::store_error::StoreError;
use crate::namespace::Namespace;

/// The boxed future a [`RateLimitStore`] returns: `Send + 'static`, so that the limiter can keep
/// it in its own futures and, when a waiter is dropped mid-call, finish it on a spawned task to
/// give back whatever it reserved.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A shared store for the two-level limiter's state, e.g. [`RedisStore`](super::redis::RedisStore)
/// so that the replicas of a client share their global and per-namespace limits.
///
/// Plug one in with [`RateLimiterBuilder::store`](super::RateLimiterBuilder::store); the
/// [`RateLimitLayer`](super::RateLimitLayer) and [`RateLimiter`](super::RateLimiter) work
/// unchanged over it. Without a store the limiter keeps its state in memory, on a concrete path
/// that allocates nothing and makes no virtual calls: the trait's boxed futures are paid only by
/// shared stores, where a network round trip dwarfs them.
///
/// The limiter owns the configuration: every call carries the quotas to apply (overrides
/// included), so a store holds only bucket state. A store keeps the protocol of the in-memory
/// state (see the [module docs](super) for the semantics):
///
/// 1. [`decide`](Self::decide) takes the namespace slot first. If it is free now, it takes a
///    global slot too (possibly in the future, within `max_wait`) and answers
///    [`Admitted`](StoreDecision::Admitted); if the namespace slot is in the future (within
///    `max_wait`) it reserves it and touches nothing else ([`Queued`](StoreDecision::Queued));
///    otherwise it consumes nothing ([`Refused`](StoreDecision::Refused)). Both levels commit
///    together or not at all.
/// 2. After a `Queued` request's wait, [`reserve_global`](Self::reserve_global) takes its global
///    slot, or refuses and consumes nothing.
/// 3. [`refund`](Self::refund) gives back the slots of a request that was dropped, or refused
///    at step 2.
///
/// Waits are durations from the store's own "now", never instants: replicas whose clocks
/// disagree still agree on the buckets, as long as the store decides on one clock.
///
/// Every call must complete or fail within a bounded time (the Redis store applies a timeout
/// to each call); an error makes the limiter apply its [`StoreFailure`] policy.
pub trait RateLimitStore: Send + Sync + fmt::Debug + 'static {
    /// Step 1: decides for one request (see the trait docs).
    fn decide(&self, request: StoreRequest) -> StoreFuture<StoreDecision>;

    /// Step 2: takes a global slot at most `max_wait` from now: `Ok(wait)` when taken (free in
    /// `wait`), `Err(wait)` when refused (it would have taken `wait`); a refusal consumes
    /// nothing.
    fn reserve_global(
        &self,
        global: Quota,
        max_wait: Duration,
    ) -> StoreFuture<Result<Duration, Duration>>;

    /// Gives back one slot per level named in `refund`.
    fn refund(&self, refund: Refund) -> StoreFuture<()>;

    /// Pauses every request to the upstream `key` until `until` (a shared `Retry-After` gate):
    /// keeps the later deadline when one is already set, and answers the deadline in force.
    /// The store's default answers [`StoreError::Unsupported`].
    fn pause_upstream(&self, key: &str, until: Instant) -> StoreFuture<Instant> {
        let _ = (key, until);
        Box::pin(std::future::ready(Err(StoreError::Unsupported(
            "pause_upstream",
        ))))
    }

    /// The deadline of the pause in force for the upstream `key`, if any. The store's default
    /// answers [`StoreError::Unsupported`].
    fn paused_until(&self, key: &str) -> StoreFuture<Option<Instant>> {
        let _ = key;
        Box::pin(std::future::ready(Err(StoreError::Unsupported(
            "paused_until",
        ))))
    }
}

/// One request's first step, as the limiter hands it to [`RateLimitStore::decide`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreRequest {
    /// The namespace the request is made for.
    pub namespace: Namespace,
    /// That namespace's quota (its override, or the default per-namespace quota).
    pub namespace_quota: Quota,
    /// The global quota.
    pub global_quota: Quota,
    /// The longest the request accepts to wait; zero never waits.
    pub max_wait: Duration,
}

impl StoreRequest {
    /// A request for `namespace` under these quotas.
    pub fn new(
        namespace: Namespace,
        namespace_quota: Quota,
        global_quota: Quota,
        max_wait: Duration,
    ) -> Self {
        Self {
            namespace,
            namespace_quota,
            global_quota,
            max_wait,
        }
    }
}

/// What [`RateLimitStore::decide`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDecision {
    /// Both levels committed; the request may go once `global_wait` has passed (zero unless
    /// the global bucket is backed up).
    Admitted {
        /// How long until the reserved global slot comes.
        global_wait: Duration,
    },
    /// The namespace slot is reserved and comes in `wait`; the global bucket was not touched.
    Queued {
        /// How long until the reserved namespace slot comes.
        wait: Duration,
    },
    /// Nothing was consumed.
    Refused {
        /// The bucket that refused.
        level: Level,
        /// How long until that bucket would have had a slot.
        wait: Duration,
    },
}

/// The slots [`RateLimitStore::refund`] gives back.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Refund {
    /// One slot of this namespace's bucket, under its quota.
    pub namespace: Option<(Namespace, Quota)>,
    /// One slot of the global bucket, under the global quota.
    pub global: Option<Quota>,
}

impl Refund {
    /// Gives back nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also gives back one slot of `namespace`'s bucket.
    pub fn namespace(mut self, namespace: Namespace, quota: Quota) -> Self {
        self.namespace = Some((namespace, quota));
        self
    }

    /// Also gives back one global slot.
    pub fn global(mut self, quota: Quota) -> Self {
        self.global = Some(quota);
        self
    }
}

/// What the limiter does when its shared store fails (an error or a timeout): set with
/// [`RateLimiterBuilder::on_store_failure`](super::RateLimiterBuilder::on_store_failure).
///
/// After a failure the limiter does not call the store again for
/// [`store_retry_interval`](super::RateLimiterBuilder::store_retry_interval) (default 250 ms),
/// so an outage costs each request at most one timeout; then the next request tries the store
/// again, and the first success ends the fallback. Each request decided under this policy is
/// counted by [`RateLimiter::store_fallbacks`](super::RateLimiter::store_fallbacks).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum StoreFailure {
    /// Refuse: the request fails with [`RateLimited`](super::RateLimited) at level
    /// [`Level::Store`] (reject mode answers `503` with `Retry-After`). The default: an outage
    /// of the store never lets the replicas together exceed the shared limits.
    #[default]
    FailClosed,
    /// Decide in a local in-memory limiter whose quotas (rates and bursts, overrides included)
    /// are the shared ones scaled by `share` (in `(0, 1]`, typically `1 / replicas`): the
    /// replicas together stay near the shared limits while the store is out, and requests keep
    /// flowing.
    Local {
        /// This replica's share of every quota.
        share: f64,
    },
}

impl StoreFailure {
    /// [`StoreFailure::Local`] with a share of `1 / replicas` (at least one replica).
    pub fn local_share_of(replicas: u32) -> Self {
        Self::Local {
            share: 1.0 / f64::from(replicas.max(1)),
        }
    }
}
