//! The pieces of the stack straight from a [`Config`]: each validates the whole configuration
//! first, then builds from the [`ValidConfig`](super::ValidConfig).

use super::error::ConfigError;
use super::schema::Config;
use crate::events::observer::Events;
use crate::rate_limit::builder::RateLimiterBuilder;
use crate::rate_limit::limiter::RateLimiter;
use crate::retry::RetryPolicy;
use crate::retry_after::RetryAfterLayer;

impl Config {
    /// Builds the rate limiter these settings describe (no observer attached: use
    /// [`rate_limiter_builder`](Self::rate_limiter_builder) to add one).
    pub fn rate_limiter(&self) -> Result<RateLimiter, ConfigError> {
        Ok(self.validate()?.rate_limiter(Events::none()))
    }

    /// The rate limiter builder these settings describe, to add an observer before building.
    pub fn rate_limiter_builder(&self) -> Result<RateLimiterBuilder, ConfigError> {
        Ok(self.validate()?.rate_limiter_builder())
    }

    /// The retry policy these settings describe (default classifier, no observer: add one with
    /// [`RetryPolicy::observer`]).
    pub fn retry_policy(&self) -> Result<RetryPolicy, ConfigError> {
        Ok(self.validate()?.retry_policy())
    }

    /// The `Retry-After` layer these settings describe, with a new pause gate.
    pub fn retry_after_layer(&self) -> Result<RetryAfterLayer, ConfigError> {
        Ok(self.validate()?.retry_after_layer())
    }

    /// A [`Metrics`](crate::metrics::Metrics) builder with these settings' prefix, label cap
    /// and idle time, every namespace with a rate-limit override pinned to a label of its own
    /// (it does no arithmetic on the numbers, so it needs no validation).
    #[cfg(feature = "metrics")]
    pub fn metrics_builder(&self) -> crate::metrics::MetricsBuilder {
        crate::metrics::Metrics::builder()
            .prefix(self.metrics.prefix.clone())
            .max_namespace_labels(self.metrics.max_namespace_labels)
            .namespace_label_idle(std::time::Duration::from_secs(
                self.metrics.namespace_label_idle_secs,
            ))
            .pin_namespaces(self.rate_limit.overrides.keys().map(String::as_str))
    }
}
