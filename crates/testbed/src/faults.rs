//! Fault injection, changeable while the server runs.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::util::clock::deadline;

/// Faults the testbed injects before a request reaches the fakes (and before the
/// server-side rate limit).
///
/// Cheap to clone; every clone controls the same server, so a test can keep one and change
/// the faults at any time while requests are in flight. Every setting applies to the
/// requests that *arrive* after it is made. When several faults are active, a request is
/// checked in this order: connection reset, 429 storm, 503, random 429; the added latency
/// applies before any of them (so a fault response is slow too).
///
/// `Retry-After` values are sent as whole seconds, rounded up (a zero delay is sent as `0`);
/// `None` sends no `Retry-After` at all.
///
/// ```
/// use std::time::Duration;
/// use pacer_testbed::Faults;
///
/// let faults = Faults::default();
/// faults.storm(3, Some(Duration::from_secs(1))); // the next 3 requests get 429, Retry-After: 1
/// faults.set_latency(Duration::from_millis(50)); // every request is 50 ms slower
/// faults.scope_to(Some("/graphql")); // ... but only requests under /graphql
/// faults.clear(); // back to normal
/// ```
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

#[derive(Debug, Default, Clone)]
struct FaultState {
    scope: Option<String>,
    storm: Budget,
    unavailable: Budget,
    resets: u64,
    latency: Duration,
    throttle_probability: f64,
    throttle_retry_after: Option<Duration>,
}

/// A fault that applies to the next `count` requests, or until `until`, or both.
#[derive(Debug, Default, Clone)]
struct Budget {
    count: u64,
    until: Option<Instant>,
    retry_after: Option<Duration>,
}

impl Budget {
    fn take(&mut self, now: Instant) -> Option<Option<Duration>> {
        if self.count > 0 {
            self.count -= 1;
            return Some(self.retry_after);
        }
        match self.until {
            Some(until) if now < until => Some(self.retry_after),
            Some(_) => {
                self.until = None;
                None
            }
            None => None,
        }
    }
}

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Serve it normally.
    Pass,
    /// Close the connection with a TCP reset, no response.
    Reset,
    /// Answer 429 with this `Retry-After`.
    TooManyRequests(Option<Duration>),
    /// Answer 503 with this `Retry-After`.
    Unavailable(Option<Duration>),
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A 429 storm: the next `requests` requests are answered `429 Too Many Requests` with
    /// `Retry-After` (as real Infrahub does when it sheds load). Adds to any storm under way.
    pub fn storm(&self, requests: u64, retry_after: Option<Duration>) {
        let mut state = self.lock();
        state.storm.count = state.storm.count.saturating_add(requests);
        state.storm.retry_after = retry_after;
    }

    /// A 429 storm for a time window: every request arriving in the next `window` gets 429.
    pub fn storm_for(&self, window: Duration, retry_after: Option<Duration>) {
        let mut state = self.lock();
        state.storm.until = Some(deadline(window));
        state.storm.retry_after = retry_after;
    }

    /// The next `requests` requests are answered `503 Service Unavailable` (what Keycloak
    /// itself sends when overloaded), with `Retry-After` if given.
    pub fn unavailable(&self, requests: u64, retry_after: Option<Duration>) {
        let mut state = self.lock();
        state.unavailable.count = state.unavailable.count.saturating_add(requests);
        state.unavailable.retry_after = retry_after;
    }

    /// Every request arriving in the next `window` is answered `503 Service Unavailable`.
    pub fn unavailable_for(&self, window: Duration, retry_after: Option<Duration>) {
        let mut state = self.lock();
        state.unavailable.until = Some(deadline(window));
        state.unavailable.retry_after = retry_after;
    }

    /// The next `requests` requests get no response: the server closes their connection
    /// with a TCP reset (`SO_LINGER` 0), which a client sees as a transport error.
    pub fn reset_connections(&self, requests: u64) {
        let mut state = self.lock();
        state.resets = state.resets.saturating_add(requests);
    }

    /// Adds `latency` before every response (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answers each request `429` with probability `probability` (clamped to 0..=1; NaN is 0).
    pub fn set_throttle_probability(&self, probability: f64, retry_after: Option<Duration>) {
        let mut state = self.lock();
        state.throttle_probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        state.throttle_retry_after = retry_after;
    }

    /// Applies the faults only to requests whose path starts with `prefix` (`None`: all).
    /// Requests outside the scope are served normally and consume nothing.
    pub fn scope_to(&self, prefix: Option<&str>) {
        self.lock().scope = prefix.map(str::to_owned);
    }

    /// Turns every fault off (and the scope back to all paths).
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// Requests still to be answered by a counted storm, 503s and resets.
    pub fn pending(&self) -> (u64, u64, u64) {
        let state = self.lock();
        (state.storm.count, state.unavailable.count, state.resets)
    }

    /// Decides what happens to a request to `path`, consuming counted faults.
    pub(crate) fn decide(&self, path: &str) -> (Action, Duration) {
        let mut state = self.lock();
        if let Some(scope) = &state.scope {
            if !path.starts_with(scope.as_str()) {
                return (Action::Pass, Duration::ZERO);
            }
        }
        let latency = state.latency;
        let now = Instant::now();
        if state.resets > 0 {
            state.resets -= 1;
            return (Action::Reset, latency);
        }
        if let Some(retry_after) = state.storm.take(now) {
            return (Action::TooManyRequests(retry_after), latency);
        }
        if let Some(retry_after) = state.unavailable.take(now) {
            return (Action::Unavailable(retry_after), latency);
        }
        if state.throttle_probability > 0.0 && rand::rng().random_bool(state.throttle_probability) {
            return (Action::TooManyRequests(state.throttle_retry_after), latency);
        }
        (Action::Pass, latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_are_consumed_in_order() {
        let faults = Faults::default();
        faults.reset_connections(1);
        faults.storm(2, Some(Duration::from_secs(1)));
        faults.unavailable(1, None);
        let actions: Vec<Action> = (0..5).map(|_| faults.decide("/x").0).collect();
        assert_eq!(
            actions,
            vec![
                Action::Reset,
                Action::TooManyRequests(Some(Duration::from_secs(1))),
                Action::TooManyRequests(Some(Duration::from_secs(1))),
                Action::Unavailable(None),
                Action::Pass,
            ]
        );
    }

    #[test]
    fn scope_leaves_other_paths_alone() {
        let faults = Faults::default();
        faults.scope_to(Some("/graphql"));
        faults.storm(1, None);
        assert_eq!(faults.decide("/realms/master").0, Action::Pass);
        assert_eq!(faults.decide("/graphql").0, Action::TooManyRequests(None));
    }

    #[test]
    fn probability_is_clamped() {
        let faults = Faults::default();
        faults.set_throttle_probability(f64::NAN, None);
        assert_eq!(faults.decide("/").0, Action::Pass);
        faults.set_throttle_probability(7.0, None);
        assert_eq!(faults.decide("/").0, Action::TooManyRequests(None));
    }
}
