//! [`RateLimiterBuilder`]: the limiter's settings, validated once into a [`RateLimiter`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::clock::{LimiterClock, RunningClock};
use super::error::BuildError;
use super::limiter::{Backend, RateLimiter, Shared, SharedBackend};
use super::memory::MemoryState;
use super::quota::{Gcra, Quota, QuotaError};
use super::store::{RateLimitStore, StoreFailure};
use super::thread_lease::ThreadLeases;
use crate::events::observer::Events;
use crate::namespace::Namespace;
use foldhash::fast::RandomState;

impl RateLimiter {
    /// A builder with the defaults: global 50 req/s burst 100, per namespace 5 req/s burst 10,
    /// `max_wait` 30 s, `max_namespaces` 100 000, initial fill 1 (full buckets).
    pub fn builder() -> RateLimiterBuilder {
        RateLimiterBuilder::default()
    }
}

/// Builds a [`RateLimiter`]; see [`RateLimiter::builder`] for the defaults.
#[derive(Debug, Clone)]
pub struct RateLimiterBuilder {
    global: Result<Quota, QuotaError>,
    namespace: Result<Quota, QuotaError>,
    overrides: Vec<(Namespace, Result<Quota, QuotaError>)>,
    max_wait: Duration,
    max_namespaces: usize,
    initial_fill: f64,
    events: Events,
    store: Option<Arc<dyn RateLimitStore>>,
    on_store_failure: StoreFailure,
    store_retry_interval: Duration,
    clock: LimiterClock,
    thread_leases: Option<ThreadLeases>,
}

impl Default for RateLimiterBuilder {
    fn default() -> Self {
        Self {
            global: Quota::per_second(50).and_then(|q| q.with_burst(100)),
            namespace: Quota::per_second(5).and_then(|q| q.with_burst(10)),
            overrides: Vec::new(),
            max_wait: Duration::from_secs(30),
            max_namespaces: 100_000,
            initial_fill: 1.0,
            events: Events::none(),
            store: None,
            on_store_failure: StoreFailure::FailClosed,
            store_retry_interval: Duration::from_millis(250),
            clock: LimiterClock::Tokio,
            thread_leases: None,
        }
    }
}

impl RateLimiterBuilder {
    /// The quota shared by all requests.
    pub fn global(mut self, quota: Quota) -> Self {
        self.global = Ok(quota);
        self
    }

    /// The quota each namespace gets unless overridden.
    pub fn per_namespace(mut self, quota: Quota) -> Self {
        self.namespace = Ok(quota);
        self
    }

    /// A quota of its own for `namespace` (a bigger tenant, a background job).
    pub fn namespace_override(mut self, namespace: impl Into<Namespace>, quota: Quota) -> Self {
        self.overrides.push((namespace.into(), Ok(quota)));
        self
    }

    /// The longest [`RateLimiter::acquire`] waits before refusing; zero never waits.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The most namespaces tracked at once (at least 1). Capacity is split evenly over the
    /// shards of the table; a new namespace whose shard is full, after refilled buckets were
    /// evicted from it, shares one overflow bucket (default namespace quota) with the others in
    /// that situation until room frees up. See the module docs.
    pub fn max_namespaces(mut self, max_namespaces: usize) -> Self {
        self.max_namespaces = max_namespaces;
        self
    }

    /// The share of each bucket's burst available when the limiter starts, in `0.0..=1.0`
    /// (default 1). Below 1, a restarted process cannot send a full burst at once. With a
    /// shared store this applies to the local fallback only: the shared buckets outlive any
    /// one replica's restart.
    pub fn initial_fill(mut self, fill: f64) -> Self {
        self.initial_fill = fill;
        self
    }

    /// Reports waits and refusals to `observer` (see [`crate::events`]).
    pub fn observer(mut self, observer: impl Into<Events>) -> Self {
        self.events = observer.into();
        self
    }

    /// Keeps the buckets in a shared store (e.g. [`RedisStore`](super::redis::RedisStore)) so
    /// that several replicas share their limits, instead of in this process's memory.
    pub fn store(mut self, store: impl RateLimitStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// [`store`](Self::store) for a store that is already shared.
    pub fn shared_store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// What to do when the shared store fails (default [`StoreFailure::FailClosed`]).
    pub fn on_store_failure(mut self, policy: StoreFailure) -> Self {
        self.on_store_failure = policy;
        self
    }

    /// How long the shared store is left alone after a failure (default 250 ms): requests are
    /// decided by the failure policy meanwhile, without paying another timeout each.
    pub fn store_retry_interval(mut self, interval: Duration) -> Self {
        self.store_retry_interval = interval;
        self
    }

    /// Where the limiter reads the time (default [`LimiterClock::Tokio`], exact under
    /// `tokio::time::pause`); see [`clock`](super::clock) for what each source costs.
    pub fn clock(mut self, clock: LimiterClock) -> Self {
        self.clock = clock;
        self
    }

    /// Lets each thread lease slots of the global bucket, and of the namespace it decides for
    /// repeatedly, so that threads deciding at once stop contending for one cache line (off
    /// by default). The admitted-requests bound stays exact; slots a thread holds may lapse
    /// unused. See [`thread_lease`](super::thread_lease) for the proof and the costs.
    pub fn thread_leases(mut self, leases: ThreadLeases) -> Self {
        self.thread_leases = Some(leases);
        self
    }

    /// Validates the settings and builds the limiter.
    pub fn build(self) -> Result<RateLimiter, BuildError> {
        let global = self.global.map_err(BuildError::GlobalQuota)?;
        let namespace = self.namespace.map_err(BuildError::NamespaceQuota)?;
        if !(0.0..=1.0).contains(&self.initial_fill) {
            return Err(BuildError::InitialFill(self.initial_fill));
        }
        let max_namespaces =
            NonZeroUsize::new(self.max_namespaces).ok_or(BuildError::MaxNamespaces)?;
        let mut overrides = Vec::with_capacity(self.overrides.len());
        for (name, quota) in self.overrides {
            let quota = quota.map_err(|e| BuildError::OverrideQuota(name.clone(), e))?;
            // A namespace overridden twice keeps its last quota.
            match overrides.iter_mut().find(|(known, _)| *known == name) {
                Some(known) => known.1 = quota,
                None => overrides.push((name, quota)),
            }
        }
        let limits = CheckedLimits {
            global,
            namespace,
            overrides,
            max_wait: self.max_wait,
            max_namespaces,
            initial_fill: self.initial_fill,
        };
        let Some(store) = self.store else {
            return Ok(RateLimiter::from_checked(
                limits,
                self.events,
                &self.clock,
                self.thread_leases,
            ));
        };
        let fallback = match self.on_store_failure {
            StoreFailure::FailClosed => None,
            StoreFailure::Local { share } => {
                Some(limits.memory_state(self.thread_leases, |quota| {
                    quota
                        .scaled(share)
                        .map_err(|_| BuildError::StoreFailureShare(share))
                })?)
            }
        };
        let backend = Backend::Shared(SharedBackend {
            store,
            policy: self.on_store_failure,
            fallback,
            fallbacks: AtomicU64::new(0),
            down_until: AtomicU64::new(0),
            retry_interval: u64::try_from(self.store_retry_interval.as_nanos()).unwrap_or(u64::MAX),
        });
        Ok(limits.into_limiter(backend, self.events, &self.clock))
    }
}

/// Limits already checked (by [`RateLimiterBuilder::build`], or by the validated
/// configuration): the in-memory limiter they describe is built without a chance of refusal.
#[derive(Debug, Clone)]
pub(crate) struct CheckedLimits {
    pub(crate) global: Quota,
    pub(crate) namespace: Quota,
    /// At most one entry per namespace.
    pub(crate) overrides: Vec<(Namespace, Quota)>,
    pub(crate) max_wait: Duration,
    pub(crate) max_namespaces: NonZeroUsize,
    /// Within `0.0..=1.0` (the cells clamp it anyway).
    pub(crate) initial_fill: f64,
}

impl CheckedLimits {
    /// The in-memory buckets of these limits, every quota passed through `scale` first (the
    /// local fallback of a shared store runs at a share of them).
    fn memory_state<E>(
        &self,
        leases: Option<ThreadLeases>,
        scale: impl Fn(Quota) -> Result<Quota, E>,
    ) -> Result<MemoryState, E> {
        let fill = self.initial_fill;
        let mut overrides = HashMap::with_hasher(RandomState::default());
        for (name, quota) in &self.overrides {
            overrides.insert(name.clone(), Gcra::new(scale(*quota)?, fill));
        }
        Ok(MemoryState::new(
            Gcra::new(scale(self.global)?, fill),
            Gcra::new(scale(self.namespace)?, fill),
            overrides,
            self.max_namespaces.get(),
            self.sweep_period(),
            leases,
        ))
    }

    /// A full pass of incremental eviction per refill time of the slowest namespace bucket,
    /// so an idle bucket is forgotten at most about two refill times after it filled up.
    fn sweep_period(&self) -> u64 {
        let period = self
            .overrides
            .iter()
            .map(|(_, quota)| quota)
            .chain([&self.namespace])
            .map(|q| q.refill_time())
            .max()
            .unwrap_or_default()
            .clamp(Duration::from_millis(100), Duration::from_secs(600));
        u64::try_from(period.as_nanos()).unwrap_or(u64::MAX)
    }

    fn into_limiter(self, backend: Backend, events: Events, clock: &LimiterClock) -> RateLimiter {
        let mut overrides = HashMap::with_hasher(RandomState::default());
        overrides.extend(self.overrides);
        RateLimiter::from_shared(Shared {
            clock: RunningClock::start(clock),
            max_wait: u64::try_from(self.max_wait.as_nanos()).unwrap_or(u64::MAX),
            global: self.global,
            namespace: self.namespace,
            overrides,
            max_namespaces: self.max_namespaces.get(),
            backend,
            events,
        })
    }
}

impl RateLimiter {
    /// The in-memory limiter of `limits`, reporting to `events`, reading `clock`, with
    /// per-thread `leases` if given; cannot fail.
    pub(crate) fn from_checked(
        limits: CheckedLimits,
        events: Events,
        clock: &LimiterClock,
        leases: Option<ThreadLeases>,
    ) -> RateLimiter {
        let state = match limits.memory_state(leases, Ok::<Quota, Infallible>) {
            Ok(state) => state,
            Err(never) => match never {},
        };
        limits.into_limiter(Backend::Memory(state), events, clock)
    }
}
