//! [`Layers`]: the configured pieces of the ready stack, and the [`Overrides`] a
//! [`ClientBuilder`](super::ClientBuilder) may give instead. Its own file so that
//! [`ServiceBuilderExt`](super::ServiceBuilderExt) can take it without importing the client.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError, ValidConfig};
use crate::events::observer::{Events, Observer};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::retry_after::RetryAfterLayer;

/// The configured pieces of the stack, ready to be applied with
/// [`ServiceBuilderExt::pacer`](super::ServiceBuilderExt::pacer). Each piece is shared state or cheap configuration: clones
/// share the rate limiter, the pause gate, the retry budget and the metrics.
#[derive(Clone, Debug)]
pub struct Layers {
    /// Where the logical requests are measured; also the observer of the limiter and the
    /// retry policy built by [`Layers::from_config`].
    pub metrics: Metrics,
    /// The retry policy (caps, backoff, budget, deadline).
    pub retry: RetryPolicy,
    /// The shared `Retry-After` pauses.
    pub retry_after: RetryAfterLayer,
    /// The two-level rate limiter (wait mode).
    pub rate_limiter: RateLimiter,
    /// The per-attempt timeout.
    pub timeout: Option<Duration>,
    /// The idle-read timeout of response bodies ([`Client::from_layers`](super::Client::from_layers) applies it; the
    /// [`ServiceBuilderExt::pacer`](super::ServiceBuilderExt::pacer) stack over a service of your own does not).
    pub read_timeout: Option<Duration>,
}

impl Layers {
    /// Every piece as `config` describes it, reporting to `metrics`; the configuration is
    /// validated once, first.
    pub fn from_config(config: &Config, metrics: Metrics) -> Result<Self, ConfigError> {
        Ok(Self::from_valid(&config.validate()?, metrics))
    }

    /// Every piece as the validated `config` describes it, reporting to `metrics`.
    pub fn from_valid(config: &ValidConfig, metrics: Metrics) -> Self {
        Self::build(config, metrics, None, Overrides::default())
    }

    /// The pieces `overrides` does not give, built from `config`.
    pub(super) fn build(
        config: &ValidConfig,
        metrics: Metrics,
        observer: Option<Arc<dyn Observer>>,
        overrides: Overrides,
    ) -> Self {
        // Every layer reports to the metrics, and to the caller's observer when there is one.
        let events: Events = match observer {
            Some(extra) => (metrics.clone(), extra).into(),
            None => metrics.clone().into(),
        };
        let rate_limiter = match overrides.rate_limiter {
            Some(limiter) => limiter,
            None => config.rate_limiter(events.clone()),
        };
        let retry = match overrides.retry_policy {
            Some(policy) => policy,
            None => config.retry_policy().observer(events.clone()),
        };
        let retry_after = match overrides.retry_after {
            Some(layer) => layer,
            None => {
                let layer = config.retry_after_layer().observer(events);
                match config.shared_pause(&rate_limiter) {
                    Some(shared) => layer.shared(shared),
                    None => layer,
                }
            }
        };
        metrics.observe_limiter(&rate_limiter);
        Self {
            metrics,
            retry,
            retry_after,
            rate_limiter,
            timeout: config.timeout(),
            read_timeout: config.read_timeout(),
        }
    }
}

/// Pieces given to a [`ClientBuilder`](super::ClientBuilder) instead of being built from its configuration.
#[derive(Debug, Default)]
pub(super) struct Overrides {
    pub(super) rate_limiter: Option<RateLimiter>,
    pub(super) retry_policy: Option<RetryPolicy>,
    pub(super) retry_after: Option<RetryAfterLayer>,
}
