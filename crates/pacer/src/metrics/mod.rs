//! Prometheus metrics with prometheus-client: [`Metrics`] registers them, [`MetricsLayer`]
//! measures each logical request, and [`Metrics`] is also an [`Observer`](crate::events::Observer) of the other layers'
//! events.
//!
//! ```
//! use pacer::metrics::{Metrics, MetricsLayer};
//! use pacer::rate_limit::{RateLimitLayer, RateLimiter};
//! use prometheus_client::registry::Registry;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let mut registry = Registry::default();
//! let metrics = Metrics::new(&mut registry);
//! let limiter = RateLimiter::builder().observer(metrics.clone()).build()?;
//! metrics.observe_limiter(&limiter); // tracked namespaces and global tokens, at scrape time
//!
//! let client = ServiceBuilder::new()
//!     .layer(MetricsLayer::new(metrics))
//!     .layer(RateLimitLayer::new(limiter))
//!     .service(service_fn(|_req: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
//!     }));
//! client.oneshot(http::Request::new(String::new())).await?;
//!
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains("pacer_requests_total{method=\"GET\",status_class=\"2xx\",namespace=\"default\"} 1"));
//! # Ok(()) }
//! ```
//!
//! # Metrics
//!
//! Names carry a prefix (default `pacer`); prometheus-client appends `_total` to counters and
//! the unit to names registered with one.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `pacer_requests_total` | counter | `method`, `status_class`, `namespace` | logical requests (after all retries), by outcome; `status_class` is `1xx`..`5xx` or `error` |
//! | `pacer_request_duration_seconds` | histogram | `method`, `status_class` | from the call until the response body ends (or is dropped) |
//! | `pacer_in_flight_requests` | gauge | | logical requests whose response body has not ended |
//! | `pacer_rate_limit_wait_seconds` | histogram | `namespace`, `level` | waits for a rate-limit slot, for requests that waited |
//! | `pacer_rate_limit_refusals_total` | counter | `namespace`, `level` | requests refused by the rate limiter |
//! | `pacer_retries_total` | counter | `reason` | retries: [`RetryReason::label`](crate::retry::RetryReason::label): `throttled` (a 429, or any status with a server-given delay), `server_error`, `timeout`, `transport` |
//! | `pacer_retries_exhausted_total` | counter | | requests that failed with no retry left |
//! | `pacer_retry_budget_exhausted_total` | counter | | retries skipped for an empty retry budget |
//! | `pacer_retry_after_seconds` | histogram | | server-given delays honoured instead of the backoff |
//! | `pacer_pauses_total` | counter | | shared pauses of an upstream opened by a `RetryAfterLayer` (after a `429`/`503` with `Retry-After`, or a proactive source) |
//! | `pacer_pause_seconds` | histogram | | server-given delays honoured by holding every request to the upstream: one observation per pause opened or pushed back by a second or more |
//! | `pacer_paused_upstreams` | gauge | | pauses running now |
//! | `pacer_timeouts_total` | counter | | attempts that timed out |
//! | `pacer_rate_limit_store_fallbacks_total` | counter | | decisions made by the failure policy while the shared store was unavailable |
//! | `pacer_rate_limit_store_errors_total` | counter | `kind` | failed calls to the shared store ([`StoreError::kind`](crate::rate_limit::StoreError::kind): `timeout`, `backend`, `protocol`, `unsupported`) |
//! | `pacer_rate_limit_namespaces` | gauge | | namespaces with a bucket of their own, at scrape time |
//! | `pacer_rate_limit_global_tokens` | gauge | | requests the global bucket admits at once, at scrape time |
//!
//! Histogram buckets, in seconds:
//! - request duration: 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
//! - rate-limit wait: 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
//!   10, 30, 60 (sub-millisecond scheduling jitter up to the default 30 s `max_wait`)
//! - Retry-After and pauses: 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300
//!
//! # Cardinality
//!
//! A flood of namespaces cannot grow the registry, and cannot take the labels from real
//! tenants for good:
//!
//! - namespaces named by [`MetricsBuilder::pin_namespaces`] (with
//!   [`Config::metrics_builder`](crate::config::Config::metrics_builder): every namespace with
//!   a rate-limit override) and the default namespace always have a `namespace` label value of
//!   their own;
//! - any other namespace takes one of [`MetricsBuilder::max_namespace_labels`] slots (default
//!   100) on first use; while every slot is taken, a new namespace counts as `other`;
//! - once every slot is taken, a slot whose namespace has had no request for
//!   [`MetricsBuilder::namespace_label_idle`] (default 5 minutes) and has none in flight is
//!   released, checked at most once a second when a new namespace arrives: its series leave
//!   the registry and the new namespace takes the slot. Below the cap nothing is released.
//!
//! So `namespace_label_idle` after a flood of junk namespaces ends, real tenants get labels
//! again. A namespace that comes back after its slot was released starts from zero, which
//! Prometheus reads as a counter reset. Methods outside the standard nine are reported as
//! `OTHER`.
//!
//! # Cost per request
//!
//! [`MetricsLayer`] resolves a request's namespace once (a read lock and a hash look-up) and
//! otherwise touches only cached handles: each namespace label keeps its request counters
//! per method and status class (60 slots, about 1 KiB, filled on first use), so recording a
//! request is a few atomic operations plus the histogram's own lock, with no label look-up.
//! Events cost one branch without an observer; see the README's benchmarks.

mod cardinality;
mod collector;
mod families;
mod future;
mod guard;
mod labels;
mod layer;
mod observer;
mod recorded_body;

use std::fmt;

use prometheus_client::registry::Registry;

pub use families::{DEFAULT_NAMESPACE_LABEL_IDLE, Metrics, MetricsBuilder};
pub use future::ResponseFuture;
pub use layer::{MetricsLayer, MetricsService};
pub use recorded_body::MetricsBody;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the classic Prometheus text format (0.0.4).
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Encodes `registry` for a `/metrics` endpoint in the format the scraper accepts: OpenMetrics
/// when its `Accept` header names `application/openmetrics-text` (as Prometheus does), the
/// classic Prometheus text format otherwise (what older tools such as `promtool check metrics`
/// read). Returns the content type and the body.
pub fn render(
    registry: &Registry,
    accept: Option<&http::HeaderValue>,
) -> Result<(&'static str, String), fmt::Error> {
    let openmetrics = accept
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("application/openmetrics-text"));
    let mut text = String::new();
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut text, registry)?;
        Ok((OPENMETRICS_CONTENT_TYPE, text))
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
        Ok((PROMETHEUS_TEXT_CONTENT_TYPE, text))
    }
}

#[cfg(test)]
mod cardinality_tests;
#[cfg(test)]
mod tests;
