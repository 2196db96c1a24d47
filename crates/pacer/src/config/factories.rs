//! The pieces of the stack a [`Config`] describes.

use std::time::Duration;

use super::error::ConfigError;
use super::schema::{Config, PauseScope};
use crate::Namespace;
use crate::rate_limit::{BuildError, Quota, QuotaError, RateLimiter};
use crate::retry::{Backoff, RetryBudget, RetryPolicy};
use crate::retry_after::{PauseGate, PauseKey, RetryAfterLayer};

impl Config {
    /// Builds the rate limiter these settings describe (no observer attached; add one with
    /// [`RateLimiter::builder`] directly when needed).
    pub fn rate_limiter(&self) -> Result<RateLimiter, ConfigError> {
        self.validate()?;
        self.rate_limiter_builder()?
            .build()
            .map_err(ConfigError::RateLimiter)
    }

    /// The rate limiter builder these settings describe, to add an observer before building.
    pub fn rate_limiter_builder(
        &self,
    ) -> Result<crate::rate_limit::RateLimiterBuilder, ConfigError> {
        let rl = &self.rate_limit;
        let mut builder = RateLimiter::builder()
            .global(quota(rl.global_rate, rl.global_burst).map_err(quota_error)?)
            .per_namespace(quota(rl.namespace_rate, rl.namespace_burst).map_err(quota_error)?)
            .max_wait(Duration::from_secs_f64(rl.max_wait_secs))
            .max_namespaces(rl.max_namespaces)
            .initial_fill(rl.initial_fill);
        for (name, q) in &rl.overrides {
            builder = builder.namespace_override(
                Namespace::new(name.as_str()),
                quota(q.rate, q.burst).map_err(quota_error)?,
            );
        }
        Ok(builder)
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_secs.map(Duration::from_secs_f64)
    }

    /// The total deadline of a logical request.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline_secs.map(Duration::from_secs_f64)
    }

    /// How long the client's pool keeps an idle connection.
    pub fn pool_idle_timeout(&self) -> Option<Duration> {
        self.pool_idle_timeout_secs.map(Duration::from_secs_f64)
    }

    /// The backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_secs_f64(self.retry.backoff_base_secs),
            Duration::from_secs_f64(self.retry.backoff_max_secs),
        )
        .jitter(self.retry.jitter)
    }

    /// The retry budget these settings describe, `None` when it is off. Each call builds a
    /// new budget: share one by cloning the policy that holds it.
    pub fn retry_budget(&self) -> Option<RetryBudget> {
        self.retry.budget.then(|| {
            RetryBudget::builder()
                .deposit_ratio(self.retry.budget_ratio)
                .min_retries_per_sec(self.retry.budget_min_per_sec)
                .build()
        })
    }

    /// The retry policy these settings describe (default classifier, no observer: add one with
    /// [`RetryPolicy::observer`]).
    pub fn retry_policy(&self) -> Result<RetryPolicy, ConfigError> {
        self.validate()?;
        let mut policy = RetryPolicy::new()
            .max_retries(self.retry.max_retries)
            .backoff(self.backoff())
            .retry_after_cap(Duration::from_secs_f64(self.retry_after.max_secs))
            .retry_after_mode(self.retry_after.mode);
        policy = match self.retry_budget() {
            Some(budget) => policy.budget(budget),
            None => policy.without_budget(),
        };
        if let Some(deadline) = self.deadline() {
            policy = policy.deadline(deadline);
        }
        Ok(policy)
    }

    /// The shared pause gate these settings describe (its release window).
    pub fn pause_gate(&self) -> PauseGate {
        PauseGate::builder()
            .release_window(Duration::from_secs_f64(
                self.retry_after.release_window_secs,
            ))
            .build()
    }

    /// The `Retry-After` layer these settings describe, with a new [`pause_gate`](Self::pause_gate):
    /// the cap, and pauses keyed by upstream or by upstream and [`Namespace`].
    pub fn retry_after_layer(&self) -> Result<RetryAfterLayer, ConfigError> {
        self.validate()?;
        let layer = RetryAfterLayer::new()
            .with_gate(self.pause_gate())
            .max_delay(Duration::from_secs_f64(self.retry_after.max_secs));
        Ok(match self.retry_after.pause_scope {
            PauseScope::Upstream => layer,
            PauseScope::Namespace => layer.key_fn(|uri, extensions| {
                let authority = uri.authority().map_or("", |a| a.as_str());
                let namespace = extensions.get::<Namespace>().map(Namespace::as_str);
                PauseKey::new(
                    authority,
                    Some(namespace.unwrap_or(Namespace::DEFAULT_NAME)),
                )
            }),
        })
    }

    /// A [`Metrics`](crate::metrics::Metrics) builder with these settings' prefix and label cap.
    #[cfg(feature = "metrics")]
    pub fn metrics_builder(&self) -> crate::metrics::MetricsBuilder {
        crate::metrics::Metrics::builder()
            .prefix(self.metrics.prefix.clone())
            .max_namespace_labels(self.metrics.max_namespace_labels)
    }
}

pub(crate) fn quota(rate: f64, burst: u32) -> Result<Quota, QuotaError> {
    Quota::per_second(rate)?.with_burst(burst)
}

fn quota_error(error: QuotaError) -> ConfigError {
    ConfigError::RateLimiter(BuildError::GlobalQuota(error))
}
