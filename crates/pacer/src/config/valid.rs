//! [`ValidConfig`]: a [`Config`] checked once, as typed values, and the pieces of the stack it
//! describes. Every factory here is infallible: the checks were made by
//! [`Config::validate`].

use std::path::Path;
use std::time::Duration;

use super::schema::Config;
use super::scope::PauseScope;
use crate::events::observer::Events;
use crate::namespace::Namespace;
use crate::rate_limit::builder::{CheckedLimits, RateLimiterBuilder};
use crate::rate_limit::limiter::RateLimiter;
use crate::retry::{Backoff, RetryBudget, RetryPolicy};
use crate::retry_after::{PauseGate, PauseKey, RetryAfterLayer, RetryAfterMode};

/// A [`Config`] whose every value was checked by [`Config::validate`], held as typed values
/// (durations, quotas). The pieces of the stack are built from it without failing.
///
/// ```
/// use std::time::Duration;
/// use pacer::config::Config;
///
/// # fn main() -> Result<(), pacer::config::ConfigError> {
/// let mut config = Config::default();
/// config.timeout_secs = Some(2.5);
/// let valid = config.validate()?;
/// assert_eq!(valid.timeout(), Some(Duration::from_millis(2500)));
/// let policy = valid.retry_policy(); // no Result: nothing left to refuse
/// # let _ = policy;
///
/// config.timeout_secs = Some(f64::NAN);
/// let error = config.validate().unwrap_err();
/// assert!(error.to_string().contains("timeout_secs"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub(super) config: Config,
    pub(super) limits: CheckedLimits,
    pub(super) max_retries: u32,
    pub(super) backoff: Backoff,
    pub(super) budget: Option<BudgetSettings>,
    pub(super) retry_after_cap: Duration,
    pub(super) retry_after_mode: RetryAfterMode,
    pub(super) pause_scope: PauseScope,
    pub(super) release_window: Duration,
    pub(super) timeout: Option<Duration>,
    pub(super) deadline: Option<Duration>,
    pub(super) pool_idle_timeout: Option<Duration>,
    pub(super) read_timeout: Option<Duration>,
    pub(super) connect_timeout: Duration,
}

/// The retry budget's checked settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct BudgetSettings {
    pub(super) ratio: f64,
    pub(super) min_per_sec: u32,
}

impl ValidConfig {
    /// The settings as they were written.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The per-attempt timeout (`None`: no timeout).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The total deadline of a logical request (`None`: no deadline).
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// How long the client's pool keeps an idle connection (`None`: until the server closes
    /// it).
    pub fn pool_idle_timeout(&self) -> Option<Duration> {
        self.pool_idle_timeout
    }

    /// The idle-read timeout of streaming response bodies: the longest a body may stay
    /// silent between two frames (`None`: no bound).
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// How long the connector may take to establish a connection (TCP connect, proxy
    /// tunnel, TLS handshake).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether server certificates go unverified (`tls.insecure`: dangerous).
    pub fn tls_insecure(&self) -> bool {
        self.config.tls.insecure
    }

    /// The longest a request waits for a rate-limit slot.
    pub fn max_wait(&self) -> Duration {
        self.limits.max_wait
    }

    /// The PEM file of extra CA certificates, if any.
    pub fn extra_ca_file(&self) -> Option<&Path> {
        self.config.tls.extra_ca_file.as_deref()
    }

    /// The rate limiter these settings describe, reporting to `observer`
    /// ([`Events::none()`] for none).
    pub fn rate_limiter(&self, observer: impl Into<Events>) -> RateLimiter {
        RateLimiter::from_checked(
            self.limits.clone(),
            observer.into(),
            &crate::rate_limit::LimiterClock::Tokio,
            None,
        )
    }

    /// The rate limiter builder these settings describe, to add what a configuration does not
    /// hold (a shared store, its failure policy) before building.
    pub fn rate_limiter_builder(&self) -> RateLimiterBuilder {
        let limits = &self.limits;
        let mut builder = RateLimiter::builder()
            .global(limits.global)
            .per_namespace(limits.namespace)
            .max_wait(limits.max_wait)
            .max_namespaces(limits.max_namespaces.get())
            .initial_fill(limits.initial_fill);
        for (name, quota) in &limits.overrides {
            builder = builder.namespace_override(name.clone(), *quota);
        }
        builder
    }

    /// The backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The retry budget these settings describe, `None` when it is off; its floor is
    /// `retry.budget_min_per_sec`, or the global rate (rounded up) when that is unset. Each call builds a
    /// new budget: share one by cloning the policy that holds it.
    pub fn retry_budget(&self) -> Option<RetryBudget> {
        self.budget.map(|budget| {
            RetryBudget::builder()
                .deposit_ratio(budget.ratio)
                .min_retries_per_sec(budget.min_per_sec)
                .build()
        })
    }

    /// The retry policy these settings describe (default classifier, no observer: add one with
    /// [`RetryPolicy::observer`]).
    pub fn retry_policy(&self) -> RetryPolicy {
        let mut policy = RetryPolicy::new()
            .max_retries(self.max_retries)
            .backoff(self.backoff)
            .retry_after_cap(self.retry_after_cap)
            .retry_after_mode(self.retry_after_mode);
        policy = match self.retry_budget() {
            Some(budget) => policy.budget(budget),
            None => policy.without_budget(),
        };
        if let Some(deadline) = self.deadline {
            policy = policy.deadline(deadline);
        }
        policy
    }

    /// The shared pause gate these settings describe (its release window).
    pub fn pause_gate(&self) -> PauseGate {
        PauseGate::builder()
            .release_window(self.release_window)
            .build()
    }

    /// The `Retry-After` layer these settings describe, with a new
    /// [`pause_gate`](Self::pause_gate): the cap, proactive pacing as
    /// `retry_after.proactive` says, and pauses keyed by upstream or by upstream and
    /// [`Namespace`].
    pub fn retry_after_layer(&self) -> RetryAfterLayer {
        let layer = RetryAfterLayer::new()
            .with_gate(self.pause_gate())
            .max_delay(self.retry_after_cap);
        let layer = self.config.retry_after.proactive.apply(layer);
        match self.pause_scope {
            PauseScope::Upstream => layer,
            PauseScope::Namespace => layer.key_fn(|uri, extensions| {
                let authority = uri.authority().map_or("", |a| a.as_str());
                let namespace = extensions.get::<Namespace>().map(Namespace::as_str);
                PauseKey::new(
                    authority,
                    Some(namespace.unwrap_or(Namespace::DEFAULT_NAME)),
                )
            }),
        }
    }

    /// The shared pause these settings describe for `limiter`: `None` unless
    /// `retry_after.shared` is on (the default) and the limiter has a store; keyed like the
    /// local pauses (by upstream, or by upstream and namespace).
    pub fn shared_pause(&self, limiter: &RateLimiter) -> Option<crate::retry_after::SharedPause> {
        if !self.config.retry_after.shared {
            return None;
        }
        let store = limiter.store()?;
        Some(
            crate::retry_after::SharedPause::new(std::sync::Arc::clone(store))
                .by_namespace(matches!(self.pause_scope, PauseScope::Namespace)),
        )
    }

    /// A [`Metrics`](crate::metrics::Metrics) builder with these settings' prefix and label cap.
    #[cfg(feature = "metrics")]
    pub fn metrics_builder(&self) -> crate::metrics::MetricsBuilder {
        self.config.metrics_builder()
    }
}
