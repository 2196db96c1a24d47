use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
#[cfg(feature = "metrics")]
use std::sync::Weak;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::time::{Instant, Sleep};

use super::memory::{Decision, Held, MemoryState};
use super::quota::{Gcra, Quota, QuotaError};
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
    state: MemoryState,
    events: Events,
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
            state: State::Start,
        }
    }

    /// Takes a slot for `namespace` if both buckets have one now; never waits. A refusal
    /// consumes nothing and tells how long until a slot would be free.
    pub fn try_acquire(&self, namespace: &Namespace) -> Result<(), RateLimited> {
        match self.shared.state.decide(namespace, self.now(), 0) {
            Decision::Admitted { .. } => Ok(()),
            Decision::Refused { level, wait } => Err(self.refusal(namespace, level, wait)),
            // Unreachable with no wait allowed; refusing is the safe answer if it ever were.
            Decision::Queued { slot, ns } => {
                self.shared.state.refund_namespace(namespace, ns);
                Err(self.refusal(namespace, Level::Namespace, slot - self.now()))
            }
        }
    }

    /// The number of namespaces holding a bucket of their own (refilled ones are evicted over
    /// time). Takes each shard's lock briefly: meant for scrapes, not for the hot path.
    pub fn tracked_namespaces(&self) -> usize {
        self.shared.state.tracked_namespaces()
    }

    /// Evicts every refilled namespace bucket now, returning how many; the limiter also does
    /// this incrementally on its own.
    pub fn evict_refilled(&self) -> usize {
        self.shared.state.evict_all_refilled(self.now())
    }

    /// How many requests the global bucket would admit at once right now (its token count).
    pub fn global_available(&self) -> u32 {
        self.shared.state.global_available(self.now())
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn downgrade(&self) -> WeakRateLimiter {
        WeakRateLimiter(Arc::downgrade(&self.shared))
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
        self.shared.events.emit(|| Event::RateLimitWait {
            namespace,
            level,
            waited: Duration::from_nanos(nanos),
        });
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
    /// otherwise the future that waits for the rest.
    pub(crate) fn begin(&self, namespace: Namespace) -> Result<Option<Acquire>, RateLimited> {
        Ok(self.first_step(&namespace)?.map(|state| Acquire {
            limiter: self.clone(),
            namespace,
            state,
        }))
    }

    fn first_step(&self, namespace: &Namespace) -> Result<Option<State>, RateLimited> {
        let now = self.now();
        let deadline = now.saturating_add(self.shared.max_wait);
        let state = match self
            .shared
            .state
            .decide(namespace, now, self.shared.max_wait)
        {
            Decision::Admitted { global_slot, .. } if global_slot <= now => return Ok(None),
            Decision::Refused { level, wait } => return Err(self.refusal(namespace, level, wait)),
            Decision::Admitted { global_slot, ns } => State::WaitGlobal {
                sleep: Box::pin(tokio::time::sleep_until(self.instant(global_slot))),
                ns,
                since: now,
            },
            Decision::Queued { slot, ns } => State::WaitNamespace {
                sleep: Box::pin(tokio::time::sleep_until(self.instant(slot))),
                ns,
                deadline,
                since: now,
            },
        };
        Ok(Some(state))
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
    /// (default 1). Below 1, a restarted process cannot send a full burst at once.
    pub fn initial_fill(mut self, fill: f64) -> Self {
        self.initial_fill = fill;
        self
    }

    /// Reports waits and refusals to `observer` (see [`crate::events`]).
    pub fn observer(mut self, observer: impl Into<Events>) -> Self {
        self.events = observer.into();
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
        let state = MemoryState::new(
            Gcra::new(global, fill),
            Gcra::new(namespace, fill),
            gcra_overrides,
            self.max_namespaces,
            u64::try_from(sweep_period.as_nanos()).unwrap_or(u64::MAX),
        );
        Ok(RateLimiter {
            shared: Arc::new(Shared {
                epoch: Instant::now(),
                max_wait,
                global,
                namespace,
                overrides,
                max_namespaces: self.max_namespaces,
                state,
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
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GlobalQuota(e) => write!(f, "global quota: {e}"),
            Self::NamespaceQuota(e) => write!(f, "per-namespace quota: {e}"),
            Self::OverrideQuota(ns, e) => write!(f, "quota override for namespace {ns:?}: {e}"),
            Self::InitialFill(fill) => write!(f, "initial fill {fill} is not within 0..=1"),
            Self::MaxNamespaces => f.write_str("max_namespaces must be at least 1"),
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
}

impl Level {
    /// `"global"` or `"namespace"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Namespace => "namespace",
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

/// The future of [`RateLimiter::acquire`]. Dropping it before it completes gives back the
/// slots it had reserved.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    limiter: RateLimiter,
    namespace: Namespace,
    state: State,
}

enum State {
    Start,
    /// The namespace slot is reserved for later; the global one is taken when it comes.
    WaitNamespace {
        sleep: Pin<Box<Sleep>>,
        ns: Held,
        deadline: u64,
        since: u64,
    },
    /// Both slots are taken; the global one is in the future.
    WaitGlobal {
        sleep: Pin<Box<Sleep>>,
        ns: Held,
        since: u64,
    },
    Done,
}

impl Future for Acquire {
    type Output = Result<(), RateLimited>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Start => match this.limiter.first_step(&this.namespace) {
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
                State::WaitNamespace {
                    sleep,
                    ns,
                    deadline,
                    since,
                } => {
                    ready!(sleep.as_mut().poll(cx));
                    let (ns, deadline) = (*ns, *deadline);
                    let limiter = &this.limiter;
                    let now = limiter.now();
                    limiter.waited(&this.namespace, Level::Namespace, now - (*since).min(now));
                    let state = &limiter.shared.state;
                    match state.reserve_global(now, deadline.saturating_sub(now)) {
                        Ok(slot) if slot <= now => {
                            this.state = State::Done;
                            return Poll::Ready(Ok(()));
                        }
                        Ok(slot) => {
                            this.state = State::WaitGlobal {
                                sleep: Box::pin(tokio::time::sleep_until(limiter.instant(slot))),
                                ns,
                                since: now,
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
                State::WaitGlobal { sleep, since, .. } => {
                    ready!(sleep.as_mut().poll(cx));
                    let now = this.limiter.now();
                    let since = *since;
                    this.limiter
                        .waited(&this.namespace, Level::Global, now - since.min(now));
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
        let state = &self.limiter.shared.state;
        match std::mem::replace(&mut self.state, State::Done) {
            State::WaitNamespace { ns, .. } => state.refund_namespace(&self.namespace, ns),
            State::WaitGlobal { ns, .. } => {
                state.refund_global();
                state.refund_namespace(&self.namespace, ns);
            }
            State::Start | State::Done => {}
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start => "start",
            State::WaitNamespace { .. } => "waiting for the namespace bucket",
            State::WaitGlobal { .. } => "waiting for the global bucket",
            State::Done => "done",
        };
        f.debug_struct("Acquire")
            .field("namespace", &self.namespace)
            .field("state", &state)
            .finish()
    }
}
