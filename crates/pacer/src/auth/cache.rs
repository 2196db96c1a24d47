//! The token cache and its single flight: which token a caller uses, and whether it must
//! wait for (or start) the one token request. Every decision is a short synchronous lock;
//! nothing here awaits.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::HeaderValue;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::time::Instant;

use super::error::AuthError;

/// The longest lifetime the layer believes of a token (access or refresh), whatever the
/// server says: one day. Bigger values, up to `u64::MAX` seconds, are cut to it, so the
/// deadline arithmetic cannot overflow; a longer-lived token is simply renewed after a day.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A token handed to callers: the `Authorization` value (marked sensitive) and which token
/// it is, so that a `401` renews that one only once.
#[derive(Clone)]
pub(crate) struct Issued {
    pub(crate) bearer: HeaderValue,
    pub(crate) generation: u64,
}

/// What a flight tells its waiters: nothing yet, then the token or the failure.
pub(crate) type Outcome = Option<Result<Issued, AuthError>>;

/// A caller's handle on the flight in progress.
pub(crate) type Waiter = watch::Receiver<Outcome>;

/// What a caller does.
pub(crate) enum Decision {
    /// Send with this token.
    Use(Issued),
    /// Send with this token (still valid) and start the early renewal in the background.
    UseAndRenew(Issued, FlightStart),
    /// Wait for the flight in progress.
    Wait(Waiter),
    /// Start the flight, then wait for it like everyone else.
    StartAndWait(FlightStart, Waiter),
}

/// The right, and the duty, to run the one token request: whoever holds it must hand it to
/// [`Cache::finish`] (the flight's guard does, even when the flight is dropped).
pub(crate) struct FlightStart {
    pub(crate) generation: u64,
    /// The refresh token to try first, if there is a usable one.
    pub(crate) refresh: Option<SecretString>,
    pub(crate) tx: watch::Sender<Outcome>,
}

/// A token the endpoint just gave.
pub(crate) struct Fresh {
    pub(crate) bearer: HeaderValue,
    pub(crate) lifetime: Option<Duration>,
    /// When the request that got it was handed to the inner service: lifetimes count from
    /// there, so time spent in the stack only shortens them.
    pub(crate) sent_at: Instant,
}

/// What a flight did to the refresh token.
pub(crate) enum RefreshUpdate {
    Keep,
    Clear,
    Replace {
        token: SecretString,
        lifetime: Option<Duration>,
        sent_at: Instant,
    },
}

/// When tokens are renewed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// Renew this long before expiry (at most half the lifetime).
    pub(crate) margin: Duration,
    /// After an early renewal failed, the next one waits this long (while the old token is
    /// valid; a caller without a valid token never waits for it).
    pub(crate) retry_interval: Duration,
}

#[derive(Default)]
pub(crate) struct Cache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    refresh: Option<Refresh>,
    /// The flight in progress, by generation.
    flight: Option<(u64, Waiter)>,
    no_early_renewal_before: Option<Instant>,
    next_generation: u64,
}

struct Current {
    issued: Issued,
    /// `None`: lifetime unknown, never renewed ahead.
    renew_at: Option<Instant>,
    /// `None`: used until a `401`.
    expires_at: Option<Instant>,
    /// A request with it was answered `401`.
    rejected: bool,
}

struct Refresh {
    token: SecretString,
    usable_until: Option<Instant>,
}

impl Current {
    fn valid_at(&self, now: Instant) -> bool {
        !self.rejected && self.expires_at.is_none_or(|at| now < at)
    }
}

/// `(renew or stop using at, expires at)` of something with `lifetime` that left at
/// `sent_at`; `None`s for an unknown lifetime (or, never in practice with the cap, an
/// instant tokio cannot represent).
fn deadlines(
    sent_at: Instant,
    lifetime: Option<Duration>,
    margin: Duration,
) -> (Option<Instant>, Option<Instant>) {
    let Some(lifetime) = lifetime else {
        return (None, None);
    };
    let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
    let margin = margin.min(lifetime / 2);
    (
        sent_at.checked_add(lifetime.saturating_sub(margin)),
        sent_at.checked_add(lifetime),
    )
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a handful of assignments that cannot panic halfway in a way that
        // breaks an invariant; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a caller does at `now`; `refused` is the generation a `401` answered, if any.
    pub(crate) fn decide(&self, now: Instant, refused: Option<u64>) -> Decision {
        let mut state = self.lock();
        if let (Some(refused), Some(current)) = (refused, state.current.as_mut()) {
            if current.issued.generation == refused {
                current.rejected = true;
            }
        }
        // A flight nobody can finish any more (its sender is gone) is forgotten.
        if state
            .flight
            .as_ref()
            .is_some_and(|(_, waiter)| waiter.has_changed().is_err())
        {
            state.flight = None;
        }
        let valid = state
            .current
            .as_ref()
            .filter(|current| current.valid_at(now))
            .map(|current| {
                let due = current.renew_at.is_some_and(|at| now >= at);
                (current.issued.clone(), due)
            });
        match valid {
            Some((issued, due)) => {
                let may_renew = state.flight.is_none()
                    && state.no_early_renewal_before.is_none_or(|at| now >= at);
                if due && may_renew {
                    let (start, _) = state.start(now);
                    Decision::UseAndRenew(issued, start)
                } else {
                    Decision::Use(issued)
                }
            }
            None => match &state.flight {
                Some((_, waiter)) => Decision::Wait(waiter.clone()),
                None => {
                    let (start, waiter) = state.start(now);
                    Decision::StartAndWait(start, waiter)
                }
            },
        }
    }

    /// Marks the token of `generation` as refused (a `401` that is not replayed), so the
    /// next caller gets a new one.
    pub(crate) fn reject(&self, generation: u64) {
        let mut state = self.lock();
        if let Some(current) = state.current.as_mut() {
            if current.issued.generation == generation {
                current.rejected = true;
            }
        }
    }

    /// Ends the flight `start` began with `result`, stores what it got, and tells every
    /// waiter at once.
    pub(crate) fn finish(
        &self,
        start: FlightStart,
        result: Result<Fresh, AuthError>,
        refresh: RefreshUpdate,
        timing: &Timing,
    ) -> Result<Issued, AuthError> {
        let FlightStart { generation, tx, .. } = start;
        let now = Instant::now();
        let mut state = self.lock();
        if state.flight.as_ref().is_some_and(|(g, _)| *g == generation) {
            state.flight = None;
        }
        match refresh {
            RefreshUpdate::Keep => {}
            RefreshUpdate::Clear => state.refresh = None,
            RefreshUpdate::Replace {
                token,
                lifetime,
                sent_at,
            } => {
                let (usable_until, _) = deadlines(sent_at, lifetime, timing.margin);
                // A stated lifetime too long for tokio's clock is treated as unknown.
                state.refresh = Some(Refresh {
                    token,
                    usable_until,
                });
            }
        }
        let outcome = match result {
            Ok(fresh) => {
                let (renew_at, expires_at) =
                    deadlines(fresh.sent_at, fresh.lifetime, timing.margin);
                let issued = Issued {
                    bearer: fresh.bearer,
                    generation,
                };
                state.current = Some(Current {
                    issued: issued.clone(),
                    renew_at,
                    expires_at,
                    rejected: false,
                });
                state.no_early_renewal_before = None;
                Ok(issued)
            }
            Err(error) => {
                // The old token stays in use while it is valid; do not ask again at once.
                if state.current.as_ref().is_some_and(|c| c.valid_at(now)) {
                    state.no_early_renewal_before = now.checked_add(timing.retry_interval);
                }
                Err(error)
            }
        };
        drop(state);
        // `send_replace` stores the outcome even when nobody waits (an early renewal).
        tx.send_replace(Some(outcome.clone()));
        outcome
    }
}

impl State {
    fn start(&mut self, now: Instant) -> (FlightStart, Waiter) {
        let (tx, waiter) = watch::channel(None);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        self.flight = Some((generation, waiter.clone()));
        let refresh = self
            .refresh
            .as_ref()
            .filter(|r| r.usable_until.is_none_or(|at| now < at))
            .map(|r| r.token.clone());
        (
            FlightStart {
                generation,
                refresh,
                tx,
            },
            waiter,
        )
    }
}

/// Waits for the flight `waiter` watches. Bounded by the flight's own `token_timeout`; a
/// flight dropped unfinished is [`AuthError::Aborted`].
pub(crate) async fn wait(mut waiter: Waiter) -> Result<Issued, AuthError> {
    let outcome = match waiter.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone(),
        Err(_) => None,
    };
    outcome.unwrap_or(Err(AuthError::Aborted))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn deadlines_never_overflow_and_respect_the_cap() {
        let now = Instant::now();
        let margin = Duration::from_secs(30);
        for secs in [u64::MAX, u64::MAX / 2, 1 << 40, 365 * 24 * 3600] {
            let (renew, expires) = deadlines(now, Some(Duration::from_secs(secs)), margin);
            assert_eq!(expires, Some(now + MAX_TOKEN_LIFETIME), "{secs}");
            assert_eq!(renew, Some(now + MAX_TOKEN_LIFETIME - margin), "{secs}");
        }
        assert_eq!(deadlines(now, None, margin), (None, None));
        // A short lifetime is renewed at half of it, not at every call.
        let (renew, expires) = deadlines(now, Some(Duration::from_secs(10)), margin);
        assert_eq!(renew, Some(now + Duration::from_secs(5)));
        assert_eq!(expires, Some(now + Duration::from_secs(10)));
        let (renew, expires) = deadlines(now, Some(Duration::ZERO), margin);
        assert_eq!((renew, expires), (Some(now), Some(now)));
        // A margin of u64::MAX seconds is no problem either.
        let (renew, _) = deadlines(now, Some(Duration::from_secs(60)), Duration::MAX);
        assert_eq!(renew, Some(now + Duration::from_secs(30)));
    }
}
