use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
#[cfg(feature = "metrics")]
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::time::{Instant, Sleep};

use super::memory::{Decision, Held, MemoryState};
use super::quota::{Gcra, Quota, QuotaError};
use super::store::{
    RateLimitStore, Refund, StoreDecision, StoreError, StoreFailure, StoreFuture, StoreRequest,
};
use crate::Namespace;
use crate::events::{Event, Events};

/// The two-level limiter: one global bucket and one bucket per [`Namespace`].
///
/// `Clone` shares the state (an `Arc`), so one limiter can be handed to many services, tasks
/// and layers. It works without tower: [`acquire`](Self::acquire) waits for a slot,
/// [`try_acquire`](Self::try_acquire) never waits.
///
/// See the [module docs](super) for the algorithm and its guarantees.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

struct Shared {
    epoch: Instant,
    max_wait: u64,
    global: Quota,
    namespace: Quota,
    overrides: HashMap<Namespace, Quota, RandomState>,
    max_namespaces: usize,
    backend: Backend,
    events: Events,
}

/// Where the buckets live. The in-memory state is the default, concrete path: one predictable
/// branch, no virtual call, no allocation. A shared store pays for boxed futures, which its
/// network round trip dwarfs.
enum Backend {
    Memory(MemoryState),
    Shared(SharedBackend),
}

struct SharedBackend {
    store: Arc<dyn RateLimitStore>,
    policy: StoreFailure,
    /// The local limiter of [`StoreFailure::Local`], at its share of every quota.
    fallback: Option<MemoryState>,
    fallbacks: AtomicU64,
    /// After a failure, the store is left alone until then (nanoseconds since the epoch).
    down_until: AtomicU64,
    retry_interval: u64,
}

/// A reservation that a waiting [`Acquire`] holds, where it is held.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// In the limiter's local memory state (the in-memory backend, or the fallback of a shared
    /// one).
    Local(Held),
    /// In the shared store.
    Shared,
}

impl RateLimiter {
    /// A builder with the defaults: global 50 req/s burst 100, per namespace 5 req/s burst 10,
    /// `max_wait` 30 s, `max_namespaces` 100 000, initial fill 1 (full buckets).
    pub fn builder() -> RateLimiterBuilder {
        RateLimiterBuilder::default()
    }

    /// Waits (at most `max_wait`) until `namespace` may send one request, then takes its slot in
    /// the namespace bucket and in the global bucket.
    ///
    /// Fails at once, consuming nothing, when the wait would exceed `max_wait`. Dropping the
    /// future before it completes gives its reservations back.
    pub fn acquire(&self, namespace: &Namespace) -> Acquire {
        Acquire {
            limiter: self.clone(),
            namespace: namespace.clone(),
            max_wait: self.shared.max_wait,
            state: State::Start,
            started: 0,
        }
    }

    /// Takes a slot for `namespace` if both buckets have one now; never waits. A refusal
    /// consumes nothing and tells how long until a slot would be free.
    ///
    /// This is synchronous, so over a shared store (which needs a round trip) it cannot ask the
    /// store: it decides as when the store has failed, by the [`StoreFailure`] policy (in the
    /// local fallback limiter, or refusing with [`Level::Store`]), and counts a fallback. Use
    /// [`try_acquire_async`](Self::try_acquire_async) with a shared store; the
    /// [`RateLimitLayer`](super::RateLimitLayer) does so by itself.
    pub fn try_acquire(&self, namespace: &Namespace) -> Result<(), RateLimited> {
        let state = match &self.shared.backend {
            Backend::Memory(state) => state,
            Backend::Shared(shared) => self.store_unavailable(shared, namespace)?,
        };
        match state.decide(namespace, self.now(), 0) {
            Decision::Admitted { .. } => Ok(()),
            Decision::Refused { level, wait } => Err(self.refusal(namespace, level, wait)),
            // Unreachable with no wait allowed; refusing is the safe answer if it ever were.
            Decision::Queued { slot, ns } => {
                state.refund_namespace(namespace, ns);
                Err(self.refusal(namespace, Level::Namespace, slot - self.now()))
            }
        }
    }

    /// Takes a slot for `namespace` if both buckets have one now, never waiting for a slot;
    /// works with every store (a shared store is asked, one round trip). With the in-memory
    /// state it completes on its first poll, exactly like [`try_acquire`](Self::try_acquire).
    /// Dropping it before it completes gives back whatever it took.
    pub fn try_acquire_async(&self, namespace: &Namespace) -> Acquire {
        Acquire {
            limiter: self.clone(),
            namespace: namespace.clone(),
            max_wait: 0,
            state: State::Start,
            started: 0,
        }
    }

    /// The shared store, if the limiter has one: for the shared `Retry-After` pause
    /// ([`RateLimitStore::pause_upstream`], [`RateLimitStore::paused_until`]).
    pub fn store(&self) -> Option<&Arc<dyn RateLimitStore>> {
        match &self.shared.backend {
            Backend::Memory(_) => None,
            Backend::Shared(shared) => Some(&shared.store),
        }
    }

    /// How many decisions were made under the [`StoreFailure`] policy because the shared store
    /// failed or was being left alone after a failure (always 0 without a store).
    pub fn store_fallbacks(&self) -> u64 {
        match &self.shared.backend {
            Backend::Memory(_) => 0,
            Backend::Shared(shared) => shared.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// The number of namespaces holding a bucket of their own (refilled ones are evicted over
    /// time). Takes each shard's lock briefly: meant for scrapes, not for the hot path.
    ///
    /// With a shared store these are the local fallback's namespaces (0 without one): the
    /// store bounds its own memory.
    pub fn tracked_namespaces(&self) -> usize {
        self.local().map_or(0, MemoryState::tracked_namespaces)
    }

    /// Evicts every refilled namespace bucket now, returning how many; the limiter also does
    /// this incrementally on its own.
    pub fn evict_refilled(&self) -> usize {
        self.local()
            .map_or(0, |state| state.evict_all_refilled(self.now()))
    }

    /// The global quota.
    pub fn global_quota(&self) -> Quota {
        self.shared.global
    }

    /// The quota of `namespace`: its override, or the default per-namespace quota.
    pub fn namespace_quota(&self, namespace: &Namespace) -> Quota {
        self.shared
            .overrides
            .get(namespace)
            .copied()
            .unwrap_or(self.shared.namespace)
    }

    /// The longest a request waits for a slot before it is refused.
    pub fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.shared.max_wait)
    }

    #[inline]
    fn now(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.shared.epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    fn waited(&self, namespace: &Namespace, level: Level, nanos: u64) {
        if nanos > 0 {
            self.shared.events.emit(|| Event::RateLimitWait {
                namespace,
                level,
                waited: Duration::from_nanos(nanos),
            });
        }
    }

    /// How many requests the global bucket would admit at once right now (its token count);
    /// with a shared store, the local fallback's (0 without one).
    pub fn global_available(&self) -> u32 {
        self.local()
            .map_or(0, |state| state.global_available(self.now()))
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn downgrade(&self) -> WeakRateLimiter {
        WeakRateLimiter(Arc::downgrade(&self.shared))
    }

    fn instant(&self, at: u64) -> Instant {
        self.shared.epoch + Duration::from_nanos(at)
    }

    fn refusal(&self, namespace: &Namespace, level: Level, wait: u64) -> RateLimited {
        self.shared.events.emit(|| Event::RateLimitRefused {
            namespace,
            level,
            retry_after: Duration::from_nanos(wait),
        });
        RateLimited {
            namespace: namespace.clone(),
            level,
            retry_after: Duration::from_nanos(wait),
        }
    }

    /// The first step of an acquisition, done eagerly: `Ok(None)` when the request may go now,
    /// otherwise the future that waits for the rest (or, with a shared store, asks it).
    pub(crate) fn begin(&self, namespace: Namespace) -> Result<Option<Acquire>, RateLimited> {
        self.begin_with(namespace, self.shared.max_wait)
    }

    /// [`begin`](Self::begin) never waiting for a slot: the reject mode's first step.
    pub(crate) fn begin_now(&self, namespace: Namespace) -> Result<Option<Acquire>, RateLimited> {
        self.begin_with(namespace, 0)
    }

    #[inline]
    fn begin_with(
        &self,
        namespace: Namespace,
        max_wait: u64,
    ) -> Result<Option<Acquire>, RateLimited> {
        Ok(self.first_step(&namespace, max_wait)?.map(|state| Acquire {
            limiter: self.clone(),
            namespace,
            max_wait,
            state,
            started: self.now(),
        }))
    }

    #[inline]
    fn first_step(
        &self,
        namespace: &Namespace,
        max_wait: u64,
    ) -> Result<Option<State>, RateLimited> {
        match &self.shared.backend {
            Backend::Memory(state) => self.first_step_local(state, namespace, max_wait),
            Backend::Shared(shared) => {
                let now = self.now();
                if now < shared.down_until.load(Ordering::Relaxed) {
                    let state = self.store_unavailable(shared, namespace)?;
                    return self.first_step_local(state, namespace, max_wait);
                }
                let request = StoreRequest::new(
                    namespace.clone(),
                    self.namespace_quota(namespace),
                    self.shared.global,
                    Duration::from_nanos(max_wait),
                );
                Ok(Some(State::Deciding {
                    future: shared.store.decide(request),
                    deadline: now.saturating_add(max_wait),
                }))
            }
        }
    }

    #[inline]
    fn first_step_local(
        &self,
        state: &MemoryState,
        namespace: &Namespace,
        max_wait: u64,
    ) -> Result<Option<State>, RateLimited> {
        let now = self.now();
        let deadline = now.saturating_add(max_wait);
        let state = match state.decide(namespace, now, max_wait) {
            Decision::Admitted { global_slot, .. } if global_slot <= now => return Ok(None),
            Decision::Refused { level, wait } => return Err(self.refusal(namespace, level, wait)),
            Decision::Admitted { global_slot, ns } => State::WaitGlobal {
                sleep: Box::pin(tokio::time::sleep_until(self.instant(global_slot))),
                hold: Hold::Local(ns),
            },
            Decision::Queued { slot, ns } => State::WaitNamespace {
                sleep: Box::pin(tokio::time::sleep_until(self.instant(slot))),
                hold: Hold::Local(ns),
                deadline,
            },
        };
        Ok(Some(state))
    }

    /// The in-memory state this limiter decides in locally: its own, or its shared store's
    /// fallback.
    fn local(&self) -> Option<&MemoryState> {
        match &self.shared.backend {
            Backend::Memory(state) => Some(state),
            Backend::Shared(shared) => shared.fallback.as_ref(),
        }
    }

    /// The shared store could not decide (it failed, or is left alone after a failure): applies
    /// the failure policy, answering the local limiter to decide in, or the refusal.
    fn store_unavailable<'a>(
        &self,
        shared: &'a SharedBackend,
        namespace: &Namespace,
    ) -> Result<&'a MemoryState, RateLimited> {
        shared.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.shared.events.emit(|| Event::StoreFallback {
            namespace,
            local: shared.fallback.is_some(),
        });
        match &shared.fallback {
            Some(state) => Ok(state),
            None => {
                let now = self.now();
                let wait = shared
                    .down_until
                    .load(Ordering::Relaxed)
                    .saturating_sub(now)
                    .max(1);
                Err(self.refusal(namespace, Level::Store, wait))
            }
        }
    }

    /// Records a failure of the shared store: it is left alone for the retry interval.
    fn store_failed(&self, shared: &SharedBackend, error: &StoreError) {
        // Hook for the `events` module (a later issue): report `error` here.
        let _ = error;
        let until = self.now().saturating_add(shared.retry_interval);
        shared.down_until.fetch_max(until, Ordering::Relaxed);
    }

    fn shared_backend(&self) -> Option<&SharedBackend> {
        match &self.shared.backend {
            Backend::Memory(_) => None,
            Backend::Shared(shared) => Some(shared),
        }
    }

    /// Gives back shared-store slots from a task of its own: never blocks, and does nothing
    /// outside a tokio runtime (the slots then come back as the buckets refill).
    fn refund_shared(&self, namespace: Option<&Namespace>, global: bool) {
        let Some(shared) = self.shared_backend() else {
            return;
        };
        let mut refund = Refund::new();
        if let Some(namespace) = namespace {
            refund = refund.namespace(namespace.clone(), self.namespace_quota(namespace));
        }
        if global {
            refund = refund.global(self.shared.global);
        }
        spawn_detached(shared.store.refund(refund));
    }
}

/// Runs `future` to completion on the current tokio runtime, if there is one; never blocks.
fn spawn_detached<T: Send + 'static>(future: StoreFuture<T>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        drop(handle.spawn(async move {
            // A refund that fails is lost: the slot comes back as the bucket refills.
            let _ = future.await;
        }));
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("global", &self.shared.global)
            .field("namespace", &self.shared.namespace)
            .field("overrides", &self.shared.overrides.len())
            .field("max_wait", &self.max_wait())
            .field("max_namespaces", &self.shared.max_namespaces)
            .field("store", &self.store())
            .field(
                "on_store_failure",
                &self.shared_backend().map(|shared| shared.policy),
            )
            .finish_non_exhaustive()
    }
}

/// A limiter held without keeping it alive (for scrape-time metrics).
#[cfg(feature = "metrics")]
#[derive(Clone)]
pub(crate) struct WeakRateLimiter(Weak<Shared>);

#[cfg(feature = "metrics")]
impl WeakRateLimiter {
    pub(crate) fn upgrade(&self) -> Option<RateLimiter> {
        self.0.upgrade().map(|shared| RateLimiter { shared })
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

    /// Validates the settings and builds the limiter.
    pub fn build(self) -> Result<RateLimiter, BuildError> {
        let global = self.global.map_err(BuildError::GlobalQuota)?;
        let namespace = self.namespace.map_err(BuildError::NamespaceQuota)?;
        if !(0.0..=1.0).contains(&self.initial_fill) {
            return Err(BuildError::InitialFill(self.initial_fill));
        }
        if self.max_namespaces == 0 {
            return Err(BuildError::MaxNamespaces);
        }
        let max_wait = u64::try_from(self.max_wait.as_nanos()).unwrap_or(u64::MAX);
        let fill = self.initial_fill;
        let mut overrides = HashMap::with_hasher(RandomState::default());
        for (name, quota) in self.overrides {
            let quota = quota.map_err(|e| BuildError::OverrideQuota(name.clone(), e))?;
            overrides.insert(name, quota);
        }
        let gcra_overrides = overrides
            .iter()
            .map(|(name, quota)| (name.clone(), Gcra::new(*quota, fill)))
            .collect();
        // A full pass of incremental eviction per refill time of the slowest namespace bucket,
        // so an idle bucket is forgotten at most about two refill times after it filled up.
        let sweep_period = overrides
            .values()
            .chain([&namespace])
            .map(|q| q.refill_time())
            .max()
            .unwrap_or_default()
            .clamp(Duration::from_millis(100), Duration::from_secs(600));
        let sweep_period = u64::try_from(sweep_period.as_nanos()).unwrap_or(u64::MAX);
        let backend = match self.store {
            None => Backend::Memory(MemoryState::new(
                Gcra::new(global, fill),
                Gcra::new(namespace, fill),
                gcra_overrides,
                self.max_namespaces,
                sweep_period,
            )),
            Some(store) => {
                let fallback = match self.on_store_failure {
                    StoreFailure::FailClosed => None,
                    StoreFailure::Local { share } => {
                        let scaled = |quota: Quota| {
                            quota
                                .scaled(share)
                                .map(|q| Gcra::new(q, fill))
                                .map_err(|_| BuildError::StoreFailureShare(share))
                        };
                        let mut local_overrides = HashMap::with_hasher(RandomState::default());
                        for (name, quota) in &overrides {
                            local_overrides.insert(name.clone(), scaled(*quota)?);
                        }
                        Some(MemoryState::new(
                            scaled(global)?,
                            scaled(namespace)?,
                            local_overrides,
                            self.max_namespaces,
                            sweep_period,
                        ))
                    }
                };
                Backend::Shared(SharedBackend {
                    store,
                    policy: self.on_store_failure,
                    fallback,
                    fallbacks: AtomicU64::new(0),
                    down_until: AtomicU64::new(0),
                    retry_interval: u64::try_from(self.store_retry_interval.as_nanos())
                        .unwrap_or(u64::MAX),
                })
            }
        };
        Ok(RateLimiter {
            shared: Arc::new(Shared {
                epoch: Instant::now(),
                max_wait,
                global,
                namespace,
                overrides,
                max_namespaces: self.max_namespaces,
                backend,
                events: self.events,
            }),
        })
    }
}

/// Why [`RateLimiterBuilder::build`] refused the settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildError {
    /// The global quota is invalid.
    GlobalQuota(QuotaError),
    /// The default per-namespace quota is invalid.
    NamespaceQuota(QuotaError),
    /// The override for this namespace is invalid.
    OverrideQuota(Namespace, QuotaError),
    /// The initial fill is not in `0.0..=1.0`.
    InitialFill(f64),
    /// `max_namespaces` is zero.
    MaxNamespaces,
    /// The share of [`StoreFailure::Local`] is not in `(0, 1]`, or makes a quota too small.
    StoreFailureShare(f64),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GlobalQuota(e) => write!(f, "global quota: {e}"),
            Self::NamespaceQuota(e) => write!(f, "per-namespace quota: {e}"),
            Self::OverrideQuota(ns, e) => write!(f, "quota override for namespace {ns:?}: {e}"),
            Self::InitialFill(fill) => write!(f, "initial fill {fill} is not within 0..=1"),
            Self::MaxNamespaces => f.write_str("max_namespaces must be at least 1"),
            Self::StoreFailureShare(share) => write!(
                f,
                "local fallback share {share} is not within (0, 1] or makes a quota invalid"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::GlobalQuota(e) | Self::NamespaceQuota(e) | Self::OverrideQuota(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Which bucket refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// The bucket shared by all namespaces.
    Global,
    /// The bucket of the request's namespace.
    Namespace,
    /// Not a bucket: the shared store could not decide, and the failure policy is
    /// [`StoreFailure::FailClosed`]. Nothing was consumed.
    Store,
}

impl Level {
    /// `"global"`, `"namespace"` or `"store"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Namespace => "namespace",
            Self::Store => "store",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request was refused by the rate limiter; nothing was consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// The namespace the request was made for.
    pub namespace: Namespace,
    /// The bucket that refused it.
    pub level: Level,
    /// How long until that bucket would have had a slot.
    pub retry_after: Duration,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limited by the {} bucket for namespace {:?}: next slot in {:?}",
            self.level, self.namespace, self.retry_after
        )
    }
}

impl std::error::Error for RateLimited {}

/// The future of [`RateLimiter::acquire`] (and of
/// [`try_acquire_async`](RateLimiter::try_acquire_async)). Dropping it before it completes
/// gives back the slots it had reserved; with a shared store, from a spawned task (a store call
/// in flight is finished there, and whatever it reserved given back), never blocking in `drop`.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    limiter: RateLimiter,
    namespace: Namespace,
    max_wait: u64,
    state: State,
    /// When the current wait began (nanoseconds since the epoch), for the wait events.
    started: u64,
}

enum State {
    Start,
    /// A shared store is deciding the first step.
    Deciding {
        future: StoreFuture<StoreDecision>,
        deadline: u64,
    },
    /// The namespace slot is reserved for later; the global one is taken when it comes.
    WaitNamespace {
        sleep: Pin<Box<Sleep>>,
        hold: Hold,
        deadline: u64,
    },
    /// The namespace slot (in the shared store) has come; the store is taking a global one.
    ReservingGlobal {
        future: StoreFuture<Result<Duration, Duration>>,
        deadline: u64,
    },
    /// Both slots are taken; the global one is in the future.
    WaitGlobal {
        sleep: Pin<Box<Sleep>>,
        hold: Hold,
    },
    Done,
}

fn sleep_for(wait: Duration) -> Pin<Box<Sleep>> {
    Box::pin(tokio::time::sleep_until(Instant::now() + wait))
}

impl Acquire {
    /// The shared store failed: the policy decides the request afresh (in the local fallback,
    /// with what is left of its wait) or refuses it.
    fn after_store_failure(
        &mut self,
        error: Option<&StoreError>,
        deadline: u64,
    ) -> Option<Poll<<Self as Future>::Output>> {
        let limiter = &self.limiter;
        let Some(shared) = limiter.shared_backend() else {
            self.state = State::Done;
            return Some(Poll::Ready(Ok(())));
        };
        if let Some(error) = error {
            limiter.store_failed(shared, error);
        }
        let outcome = limiter
            .store_unavailable(shared, &self.namespace)
            .and_then(|local| {
                let left = deadline.saturating_sub(limiter.now());
                limiter.first_step_local(local, &self.namespace, left)
            });
        match outcome {
            Ok(None) => {
                self.state = State::Done;
                Some(Poll::Ready(Ok(())))
            }
            Ok(Some(next)) => {
                self.state = next;
                None
            }
            Err(refused) => {
                self.state = State::Done;
                Some(Poll::Ready(Err(refused)))
            }
        }
    }
}

impl Acquire {
    fn start(&mut self) -> Result<Option<State>, RateLimited> {
        self.started = self.limiter.now();
        self.limiter.first_step(&self.namespace, self.max_wait)
    }
}

impl Future for Acquire {
    type Output = Result<(), RateLimited>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Start => match this.start() {
                    Ok(None) => {
                        this.state = State::Done;
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Some(next)) => this.state = next,
                    Err(refused) => {
                        this.state = State::Done;
                        return Poll::Ready(Err(refused));
                    }
                },
                State::Deciding { future, deadline } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let deadline = *deadline;
                    match result {
                        Ok(StoreDecision::Admitted { global_wait }) if global_wait.is_zero() => {
                            this.state = State::Done;
                            return Poll::Ready(Ok(()));
                        }
                        Ok(StoreDecision::Admitted { global_wait }) => {
                            this.state = State::WaitGlobal {
                                sleep: sleep_for(global_wait),
                                hold: Hold::Shared,
                            };
                        }
                        Ok(StoreDecision::Queued { wait }) => {
                            this.state = State::WaitNamespace {
                                sleep: sleep_for(wait),
                                hold: Hold::Shared,
                                deadline,
                            };
                        }
                        Ok(StoreDecision::Refused { level, wait }) => {
                            this.state = State::Done;
                            return Poll::Ready(Err(RateLimited {
                                namespace: this.namespace.clone(),
                                level,
                                retry_after: wait,
                            }));
                        }
                        Err(error) => {
                            this.state = State::Done;
                            if let Some(done) = this.after_store_failure(Some(&error), deadline) {
                                return done;
                            }
                        }
                    }
                }
                State::WaitNamespace {
                    sleep,
                    hold,
                    deadline,
                } => {
                    ready!(sleep.as_mut().poll(cx));
                    let woke = this.limiter.now();
                    this.limiter.waited(
                        &this.namespace,
                        Level::Namespace,
                        woke.saturating_sub(this.started),
                    );
                    this.started = woke;
                    let (hold, deadline) = (*hold, *deadline);
                    let limiter = &this.limiter;
                    let now = limiter.now();
                    let ns = match hold {
                        Hold::Local(ns) => ns,
                        Hold::Shared => {
                            let Some(shared) = limiter.shared_backend() else {
                                this.state = State::Done;
                                return Poll::Ready(Ok(()));
                            };
                            if now < shared.down_until.load(Ordering::Relaxed) {
                                // The store is out: give the namespace slot back (it is
                                // retried when the store answers again) and decide locally.
                                limiter.refund_shared(Some(&this.namespace), false);
                                this.state = State::Done;
                                if let Some(done) = this.after_store_failure(None, deadline) {
                                    return done;
                                }
                                continue;
                            }
                            let left = Duration::from_nanos(deadline.saturating_sub(now));
                            this.state = State::ReservingGlobal {
                                future: shared.store.reserve_global(limiter.shared.global, left),
                                deadline,
                            };
                            continue;
                        }
                    };
                    let Some(state) = limiter.local() else {
                        this.state = State::Done;
                        return Poll::Ready(Ok(()));
                    };
                    match state.reserve_global(now, deadline.saturating_sub(now)) {
                        Ok(slot) if slot <= now => {
                            this.state = State::Done;
                            return Poll::Ready(Ok(()));
                        }
                        Ok(slot) => {
                            this.state = State::WaitGlobal {
                                sleep: Box::pin(tokio::time::sleep_until(limiter.instant(slot))),
                                hold: Hold::Local(ns),
                            };
                        }
                        Err(wait) => {
                            // Both levels or neither: the namespace slot goes back.
                            state.refund_namespace(&this.namespace, ns);
                            this.state = State::Done;
                            return Poll::Ready(Err(limiter.refusal(
                                &this.namespace,
                                Level::Global,
                                wait,
                            )));
                        }
                    }
                }
                State::ReservingGlobal { future, deadline } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let deadline = *deadline;
                    match result {
                        Ok(Ok(wait)) if wait.is_zero() => {
                            this.state = State::Done;
                            return Poll::Ready(Ok(()));
                        }
                        Ok(Ok(wait)) => {
                            this.state = State::WaitGlobal {
                                sleep: sleep_for(wait),
                                hold: Hold::Shared,
                            };
                        }
                        Ok(Err(wait)) => {
                            // Both levels or neither: the namespace slot goes back.
                            this.limiter.refund_shared(Some(&this.namespace), false);
                            this.state = State::Done;
                            return Poll::Ready(Err(RateLimited {
                                namespace: this.namespace.clone(),
                                level: Level::Global,
                                retry_after: wait,
                            }));
                        }
                        Err(error) => {
                            this.limiter.refund_shared(Some(&this.namespace), false);
                            this.state = State::Done;
                            if let Some(done) = this.after_store_failure(Some(&error), deadline) {
                                return done;
                            }
                        }
                    }
                }
                State::WaitGlobal { sleep, .. } => {
                    ready!(sleep.as_mut().poll(cx));
                    let woke = this.limiter.now();
                    this.limiter.waited(
                        &this.namespace,
                        Level::Global,
                        woke.saturating_sub(this.started),
                    );
                    this.state = State::Done;
                    return Poll::Ready(Ok(()));
                }
                State::Done => {
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let limiter = &self.limiter;
        match std::mem::replace(&mut self.state, State::Done) {
            State::WaitNamespace {
                hold: Hold::Local(ns),
                ..
            } => {
                if let Some(state) = limiter.local() {
                    state.refund_namespace(&self.namespace, ns);
                }
            }
            State::WaitGlobal {
                hold: Hold::Local(ns),
                ..
            } => {
                if let Some(state) = limiter.local() {
                    state.refund_global();
                    state.refund_namespace(&self.namespace, ns);
                }
            }
            State::WaitNamespace {
                hold: Hold::Shared, ..
            } => limiter.refund_shared(Some(&self.namespace), false),
            State::WaitGlobal {
                hold: Hold::Shared, ..
            } => limiter.refund_shared(Some(&self.namespace), true),
            // A store call in flight: finish it elsewhere and give back what it reserved.
            State::Deciding { future, .. } => {
                let limiter = limiter.clone();
                let namespace = self.namespace.clone();
                spawn_detached(Box::pin(async move {
                    match future.await? {
                        StoreDecision::Admitted { .. } => {
                            limiter.refund_shared(Some(&namespace), true);
                        }
                        StoreDecision::Queued { .. } => {
                            limiter.refund_shared(Some(&namespace), false);
                        }
                        StoreDecision::Refused { .. } => {}
                    }
                    Ok(())
                }));
            }
            State::ReservingGlobal { future, .. } => {
                let limiter = limiter.clone();
                let namespace = self.namespace.clone();
                spawn_detached(Box::pin(async move {
                    let taken = matches!(future.await, Ok(Ok(_)));
                    limiter.refund_shared(Some(&namespace), taken);
                    Ok(())
                }));
            }
            State::Start | State::Done => {}
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start => "start",
            State::Deciding { .. } => "asking the shared store",
            State::WaitNamespace { .. } => "waiting for the namespace bucket",
            State::ReservingGlobal { .. } => "asking the shared store for a global slot",
            State::WaitGlobal { .. } => "waiting for the global bucket",
            State::Done => "done",
        };
        f.debug_struct("Acquire")
            .field("namespace", &self.namespace)
            .field("state", &state)
            .finish()
    }
}
