//! [`RateLimiter`]: the shared handle of the two-level limiter, its synchronous decision path
//! and what the other parts of the limiter ask of it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
#[cfg(feature = "metrics")]
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::time::Instant;

use super::clock::RunningClock;
use super::level::{Level, RateLimited};
use super::memory::{Decision, MemoryState};
use super::quota::Quota;
use super::store::{RateLimitStore, Refund, StoreFailure, StoreFuture};
use super::store_error::StoreError;
use crate::events::event::Event;
use crate::events::observer::Events;
use crate::namespace::Namespace;

/// The two-level limiter: one global bucket and one bucket per [`Namespace`].
///
/// `Clone` shares the state (an `Arc`), so one limiter can be handed to many services, tasks
/// and layers. It works without tower: [`acquire`](Self::acquire) waits for a slot,
/// [`try_acquire`](Self::try_acquire) never waits.
///
/// See the [module docs](super) for the algorithm and its guarantees.
#[derive(Clone)]
pub struct RateLimiter {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) clock: RunningClock,
    pub(super) max_wait: u64,
    pub(super) global: Quota,
    pub(super) namespace: Quota,
    pub(super) overrides: HashMap<Namespace, Quota, RandomState>,
    pub(super) max_namespaces: usize,
    pub(super) backend: Backend,
    pub(super) events: Events,
}

/// Where the buckets live. The in-memory state is the default, concrete path: one predictable
/// branch, no virtual call, no allocation. A shared store pays for boxed futures, which its
/// network round trip dwarfs.
pub(super) enum Backend {
    Memory(MemoryState),
    Shared(SharedBackend),
}

pub(super) struct SharedBackend {
    pub(super) store: Arc<dyn RateLimitStore>,
    pub(super) policy: StoreFailure,
    /// The local limiter of [`StoreFailure::Local`], at its share of every quota.
    pub(super) fallback: Option<MemoryState>,
    pub(super) fallbacks: AtomicU64,
    /// After a failure, the store is left alone until then (nanoseconds since the epoch).
    pub(super) down_until: AtomicU64,
    pub(super) retry_interval: u64,
}

impl RateLimiter {
    /// The handle over state the builder has validated.
    pub(super) fn from_shared(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
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
                state.refund_namespace(ns);
                Err(self.refusal(namespace, Level::Namespace, slot - self.now()))
            }
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

    /// Nanoseconds since the limiter was built, on its clock.
    #[inline]
    pub(super) fn now(&self) -> u64 {
        self.shared.clock.now()
    }

    pub(super) fn waited(&self, namespace: &Namespace, level: Level, nanos: u64) {
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

    pub(super) fn instant(&self, at: u64) -> Instant {
        self.shared.clock.instant(at)
    }

    pub(super) fn refusal(&self, namespace: &Namespace, level: Level, wait: u64) -> RateLimited {
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

    /// The in-memory state this limiter decides in locally: its own, or its shared store's
    /// fallback.
    pub(super) fn local(&self) -> Option<&MemoryState> {
        match &self.shared.backend {
            Backend::Memory(state) => Some(state),
            Backend::Shared(shared) => shared.fallback.as_ref(),
        }
    }

    /// The shared store could not decide (it failed, or is left alone after a failure): applies
    /// the failure policy, answering the local limiter to decide in, or the refusal.
    pub(super) fn store_unavailable<'a>(
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

    /// Records a failure of the shared store's `operation`: it is reported as
    /// [`Event::StoreError`], and the store is left alone for the retry interval.
    pub(super) fn store_failed(
        &self,
        shared: &SharedBackend,
        operation: &'static str,
        error: &StoreError,
    ) {
        self.shared.events.emit(|| Event::StoreError {
            operation,
            kind: error.kind(),
            error,
        });
        let until = self.now().saturating_add(shared.retry_interval);
        shared.down_until.fetch_max(until, Ordering::Relaxed);
    }

    pub(super) fn shared_backend(&self) -> Option<&SharedBackend> {
        match &self.shared.backend {
            Backend::Memory(_) => None,
            Backend::Shared(shared) => Some(shared),
        }
    }

    /// Gives back shared-store slots from a task of its own: never blocks, and does nothing
    /// outside a tokio runtime (the slots then come back as the buckets refill).
    pub(super) fn refund_shared(&self, namespace: Option<&Namespace>, global: bool) {
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
        let events = self.shared.events.clone();
        let refund = shared.store.refund(refund);
        spawn_detached(Box::pin(async move {
            let outcome = refund.await;
            if let Err(error) = &outcome {
                events.emit(|| Event::StoreError {
                    operation: "refund",
                    kind: error.kind(),
                    error,
                });
            }
            outcome
        }));
    }
}

/// Runs `future` to completion on the current tokio runtime, if there is one; never blocks.
pub(super) fn spawn_detached<T: Send + 'static>(future: StoreFuture<T>) {
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
            .field("clock", &self.shared.clock.kind())
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
