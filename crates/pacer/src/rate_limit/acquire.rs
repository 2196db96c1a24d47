//! [`Acquire`]: the future that waits for a request's slots, and the first step of an
//! acquisition that builds it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::level::{Level, RateLimited};
use super::limiter::{Backend, RateLimiter, spawn_detached};
use super::memory::{Decision, Held, MemoryState};
use super::store::{StoreDecision, StoreFuture, StoreRequest};
use super::store_error::StoreError;
use crate::namespace::Namespace;

impl RateLimiter {
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
        error: Option<(&'static str, &StoreError)>,
        deadline: u64,
    ) -> Option<Poll<<Self as Future>::Output>> {
        let limiter = &self.limiter;
        let Some(shared) = limiter.shared_backend() else {
            self.state = State::Done;
            return Some(Poll::Ready(Ok(())));
        };
        if let Some((operation, error)) = error {
            limiter.store_failed(shared, operation, error);
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
                            if let Some(done) =
                                this.after_store_failure(Some(("decide", &error)), deadline)
                            {
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
                            state.refund_namespace(ns);
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
                            if let Some(done) =
                                this.after_store_failure(Some(("reserve_global", &error)), deadline)
                            {
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
                    state.refund_namespace(ns);
                }
            }
            State::WaitGlobal {
                hold: Hold::Local(ns),
                ..
            } => {
                if let Some(state) = limiter.local() {
                    state.refund_global();
                    state.refund_namespace(ns);
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
