//! [`ServiceBuilderExt`]: pacer's layers on a `tower::ServiceBuilder`.

use std::time::Duration;

use http::HeaderName;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use tower::ServiceBuilder;
use tower::layer::util::Stack;
use tower::timeout::TimeoutLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use super::layers::Layers;
use crate::metrics::{Metrics, MetricsLayer};
use crate::rate_limit::{RateLimitLayer, RateLimiter};
use crate::retry::{RetryLayer, RetryPolicy};
use crate::retry_after::RetryAfterLayer;

/// What "no per-attempt timeout" means: a century (tokio clamps far-off deadlines itself).
const NO_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The request headers [`ServiceBuilderExt::sensitive_credentials`] marks sensitive:
/// `Authorization`, `Proxy-Authorization`, `Cookie` and Infrahub's `X-INFRAHUB-KEY`.
pub fn sensitive_headers() -> [HeaderName; 4] {
    [
        AUTHORIZATION,
        PROXY_AUTHORIZATION,
        COOKIE,
        HeaderName::from_static("x-infrahub-key"),
    ]
}

/// The layer stack [`ServiceBuilderExt::pacer`] adds on top of `L`, outermost first:
/// sensitive headers, metrics, retry, Retry-After, rate limit, per-attempt timeout.
pub type PacerStack<L> = Stack<
    TimeoutLayer,
    Stack<
        RateLimitLayer,
        Stack<
            RetryAfterLayer,
            Stack<RetryLayer, Stack<MetricsLayer, Stack<SetSensitiveRequestHeadersLayer, L>>>,
        >,
    >,
>;

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// pacer's layers as `tower::ServiceBuilder` methods, like tower-http's `ServiceBuilderExt`:
/// compose them over any hyper-based service.
///
/// [`pacer`](Self::pacer) adds the whole stack in the design's order (what
/// [`Client`](super::Client) is made of); the other methods add one layer each, for stacks of
/// your own. The names avoid tower's own `ServiceBuilder` methods (`retry`, `rate_limit`,
/// `timeout`), which take tower's types.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use pacer::client::{Layers, ServiceBuilderExt};
/// use pacer::config::Config;
/// use prometheus_client::registry::Registry;
/// use tower::ServiceBuilder;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::default();
/// let mut registry = Registry::default();
/// let layers = Layers::from_config(&config, config.metrics_builder().register(&mut registry))?;
///
/// // Plain HTTP with hyper-util's own connector: the whole stack in one call...
/// let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let client = ServiceBuilder::new().pacer(&layers).service(hyper.clone());
///
/// // ...or layer by layer, leaving out what you do not want (here: no retries, no timeout).
/// let client = ServiceBuilder::new()
///     .sensitive_credentials()
///     .metrics(layers.metrics.clone())
///     .honour_retry_after(layers.retry_after.clone())
///     .keyed_rate_limit(layers.rate_limiter.clone())
///     .service(hyper);
/// # Ok(()) }
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// The whole stack of `layers`, outermost first: sensitive credential headers, metrics,
    /// retry, Retry-After, rate limit, per-attempt timeout.
    fn pacer(self, layers: &Layers) -> ServiceBuilder<PacerStack<L>>;

    /// Marks the [`sensitive_headers`] of requests sensitive (tower-http's
    /// `SetSensitiveRequestHeadersLayer`).
    fn sensitive_credentials(self) -> ServiceBuilder<Stack<SetSensitiveRequestHeadersLayer, L>>;

    /// Measures each logical request ([`MetricsLayer`]).
    fn metrics(self, metrics: Metrics) -> ServiceBuilder<Stack<MetricsLayer, L>>;

    /// Retries with `policy` ([`RetryLayer`]).
    fn retry_with(self, policy: RetryPolicy) -> ServiceBuilder<Stack<RetryLayer, L>>;

    /// Shares `Retry-After` pauses ([`RetryAfterLayer`]).
    fn honour_retry_after(
        self,
        layer: RetryAfterLayer,
    ) -> ServiceBuilder<Stack<RetryAfterLayer, L>>;

    /// Waits for `limiter`'s global and per-namespace slots ([`RateLimitLayer`]).
    fn keyed_rate_limit(self, limiter: RateLimiter) -> ServiceBuilder<Stack<RateLimitLayer, L>>;

    /// Bounds each attempt by `timeout` (tower's `TimeoutLayer`, which also boxes the inner
    /// service's errors); `None` for no bound.
    fn attempt_timeout(self, timeout: Option<Duration>) -> ServiceBuilder<Stack<TimeoutLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn pacer(self, layers: &Layers) -> ServiceBuilder<PacerStack<L>> {
        self.sensitive_credentials()
            .metrics(layers.metrics.clone())
            .retry_with(layers.retry.clone())
            .honour_retry_after(layers.retry_after.clone())
            .keyed_rate_limit(layers.rate_limiter.clone())
            .attempt_timeout(layers.timeout)
    }

    fn sensitive_credentials(self) -> ServiceBuilder<Stack<SetSensitiveRequestHeadersLayer, L>> {
        self.layer(SetSensitiveRequestHeadersLayer::new(sensitive_headers()))
    }

    fn metrics(self, metrics: Metrics) -> ServiceBuilder<Stack<MetricsLayer, L>> {
        self.layer(MetricsLayer::new(metrics))
    }

    fn retry_with(self, policy: RetryPolicy) -> ServiceBuilder<Stack<RetryLayer, L>> {
        self.layer(RetryLayer::new(policy))
    }

    fn honour_retry_after(
        self,
        layer: RetryAfterLayer,
    ) -> ServiceBuilder<Stack<RetryAfterLayer, L>> {
        self.layer(layer)
    }

    fn keyed_rate_limit(self, limiter: RateLimiter) -> ServiceBuilder<Stack<RateLimitLayer, L>> {
        self.layer(RateLimitLayer::new(limiter))
    }

    fn attempt_timeout(self, timeout: Option<Duration>) -> ServiceBuilder<Stack<TimeoutLayer, L>> {
        // Always the same layer type, so that the stack's type does not depend on the
        // setting; "no timeout" is a timer that never fires in practice.
        self.layer(TimeoutLayer::new(timeout.unwrap_or(NO_TIMEOUT)))
    }
}
