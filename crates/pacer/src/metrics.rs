//! Prometheus metrics with prometheus-client: [`Metrics`] registers them, [`MetricsLayer`]
//! measures each logical request, and [`Metrics`] is also an [`Observer`] of the other layers'
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
//! | `pacer_retries_total` | counter | `reason` | retries: `throttled`, `server_error`, `timeout`, `transport` |
//! | `pacer_retries_exhausted_total` | counter | | requests that failed with no retry left |
//! | `pacer_retry_budget_exhausted_total` | counter | | retries skipped for an empty retry budget |
//! | `pacer_retry_after_seconds` | histogram | | server-given delays honoured instead of the backoff |
//! | `pacer_pauses_total` | counter | | shared pauses of an upstream opened by a `RetryAfterLayer` (after a `429`/`503` with `Retry-After`, or a proactive source) |
//! | `pacer_pause_seconds` | histogram | | server-given delays honoured by holding every request to the upstream: one observation per pause opened or pushed back by a second or more |
//! | `pacer_paused_upstreams` | gauge | | pauses running now |
//! | `pacer_timeouts_total` | counter | | attempts that timed out |
//! | `pacer_rate_limit_store_fallbacks_total` | counter | | decisions made by the failure policy while the shared store was unavailable |
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
//! At most [`MetricsBuilder::max_namespace_labels`] (default 100) distinct `namespace` values are
//! reported, first come first served; any other namespace is counted as `other`, so a flood of
//! namespaces cannot grow the registry. Methods outside the standard nine are reported as
//! `OTHER`.
//!
//! # Cost per request
//!
//! [`MetricsLayer`] resolves a request's namespace once (a read lock and a hash look-up) and
//! otherwise touches only cached handles: each namespace label keeps its request counters
//! per method and status class (60 slots, about 1 KiB, filled on first use), so recording a
//! request is a few atomic operations plus the histogram's own lock, with no label look-up.
//! Events cost one branch without an observer; see the README's benchmarks.

use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::task::{Context, Poll, ready};
use tokio::time::Instant;

use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tower_layer::Layer;
use tower_service::Service;

use crate::Namespace;
use crate::events::{Event, Observer};
use crate::rate_limit::level::Level;
use crate::rate_limit::limiter::RateLimiter;
use crate::rate_limit::limiter::WeakRateLimiter;

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

const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const WAIT_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
const RETRY_AFTER_BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// A namespace as a label value: its name, or `other` past the cap.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct NamespaceLabel(Namespace);

impl EncodeLabelValue for NamespaceLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status_class: &'static str,
    namespace: NamespaceLabel,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DurationLabels {
    method: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabels {
    namespace: NamespaceLabel,
    level: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RetryLabels {
    reason: &'static str,
}

/// The registered metrics; cheap to clone (shared). Pass clones to [`MetricsLayer`] and, as the
/// observer, to the other layers' builders.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    /// `duration`'s histograms by method and status class, resolved on first use.
    durations: [[OnceLock<Histogram>; STATUS_CLASSES]; METHODS],
    in_flight: Gauge,
    wait: Family<LimitLabels, Histogram, fn() -> Histogram>,
    refusals: Family<LimitLabels, Counter>,
    retries: Family<RetryLabels, Counter>,
    retries_exhausted: Counter,
    budget_exhausted: Counter,
    retry_after: Histogram,
    pauses: Counter,
    pause_delay: Histogram,
    paused: Gauge,
    timeouts: Counter,
    store_fallbacks: Counter,
    namespaces: NamespaceLabels,
    limiter: Arc<Mutex<Option<WeakRateLimiter>>>,
}

impl Metrics {
    /// Registers the metrics in `registry` with the prefix `pacer` and at most 100 namespace
    /// label values.
    pub fn new(registry: &mut Registry) -> Self {
        Self::builder().register(registry)
    }

    /// A builder to choose the prefix and the namespace label cap.
    pub fn builder() -> MetricsBuilder {
        MetricsBuilder {
            prefix: "pacer".to_owned(),
            max_namespace_labels: 100,
        }
    }

    /// Reports `limiter`'s tracked namespaces and global bucket level at scrape time. Holds the
    /// limiter weakly, so the metrics never keep it alive.
    pub fn observe_limiter(&self, limiter: &RateLimiter) {
        let mut slot = self
            .inner
            .limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(limiter.downgrade());
    }

    fn namespace(&self, namespace: &Namespace) -> NamespaceLabel {
        self.inner.namespaces.label(namespace)
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("max_namespace_labels", &self.inner.namespaces.cap)
            .finish_non_exhaustive()
    }
}

/// Builds and registers [`Metrics`].
#[derive(Debug, Clone)]
pub struct MetricsBuilder {
    prefix: String,
    max_namespace_labels: usize,
}

impl MetricsBuilder {
    /// The prefix of every metric name (default `pacer`); empty for none.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many distinct `namespace` label values are reported before the rest count as
    /// `other` (default 100).
    pub fn max_namespace_labels(mut self, max: usize) -> Self {
        self.max_namespace_labels = max;
        self
    }

    /// Registers the metrics in `registry`.
    pub fn register(self, registry: &mut Registry) -> Metrics {
        let registry = if self.prefix.is_empty() {
            registry
        } else {
            registry.sub_registry_with_prefix(&self.prefix)
        };
        let limiter = Arc::new(Mutex::new(None));
        let inner = Inner {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            durations: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            in_flight: Gauge::default(),
            wait: Family::new_with_constructor(wait_histogram),
            refusals: Family::default(),
            retries: Family::default(),
            retries_exhausted: Counter::default(),
            budget_exhausted: Counter::default(),
            retry_after: Histogram::new(RETRY_AFTER_BUCKETS),
            pauses: Counter::default(),
            pause_delay: Histogram::new(RETRY_AFTER_BUCKETS),
            paused: Gauge::default(),
            timeouts: Counter::default(),
            store_fallbacks: Counter::default(),
            namespaces: NamespaceLabels::new(self.max_namespace_labels),
            limiter: Arc::clone(&limiter),
        };
        registry.register(
            "requests",
            "Logical requests (after all retries) by method, status class and namespace",
            inner.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from the call until the response body ended",
            Unit::Seconds,
            inner.duration.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Logical requests whose response body has not ended",
            inner.in_flight.clone(),
        );
        registry.register_with_unit(
            "rate_limit_wait",
            "Time requests waited for a rate-limit slot, by namespace and level",
            Unit::Seconds,
            inner.wait.clone(),
        );
        registry.register(
            "rate_limit_refusals",
            "Requests refused by the rate limiter, by namespace and level",
            inner.refusals.clone(),
        );
        registry.register("retries", "Retries by reason", inner.retries.clone());
        registry.register(
            "retries_exhausted",
            "Requests that failed with no retry left",
            inner.retries_exhausted.clone(),
        );
        registry.register(
            "retry_budget_exhausted",
            "Retries skipped because the retry budget was empty",
            inner.budget_exhausted.clone(),
        );
        registry.register_with_unit(
            "retry_after",
            "Server-given delays (Retry-After) honoured instead of the computed backoff",
            Unit::Seconds,
            inner.retry_after.clone(),
        );
        registry.register(
            "pauses",
            "Shared pauses of an upstream opened after a Retry-After",
            inner.pauses.clone(),
        );
        registry.register_with_unit(
            "pause",
            "Server-given delays honoured by pausing every request to the upstream (opened or pushed back)",
            Unit::Seconds,
            inner.pause_delay.clone(),
        );
        registry.register(
            "paused_upstreams",
            "Upstream pauses running now",
            inner.paused.clone(),
        );
        registry.register(
            "timeouts",
            "Attempts that timed out",
            inner.timeouts.clone(),
        );
        registry.register_collector(Box::new(LimiterCollector {
            limiter: Arc::downgrade(&limiter),
        }));
        Metrics {
            inner: Arc::new(inner),
        }
    }
}

/// The request counters of one `namespace` label value, one per method and status class,
/// resolved from the family on first use so that a request never looks its labels up again.
struct NamespaceSeries {
    label: NamespaceLabel,
    requests: [[OnceLock<Counter>; STATUS_CLASSES]; METHODS],
}

impl NamespaceSeries {
    fn new(namespace: Namespace) -> Arc<Self> {
        Arc::new(Self {
            label: NamespaceLabel(namespace),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
        })
    }
}

/// The namespaces that have a label value of their own: the first `cap` seen; every other
/// namespace shares the `other` series.
struct NamespaceLabels {
    cap: usize,
    known: RwLock<hashbrown::HashMap<Namespace, Arc<NamespaceSeries>, foldhash::fast::RandomState>>,
    other: Arc<NamespaceSeries>,
    /// The series of requests without a `Namespace` extension, once looked up.
    default: OnceLock<Arc<NamespaceSeries>>,
}

impl NamespaceLabels {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            known: RwLock::new(hashbrown::HashMap::default()),
            other: NamespaceSeries::new(Namespace::new("other")),
            default: OnceLock::new(),
        }
    }

    fn label(&self, namespace: &Namespace) -> NamespaceLabel {
        self.series(namespace).label.clone()
    }

    /// The series of a request's namespace (the default one when it names none).
    fn series_of<B>(&self, request: &Request<B>) -> Arc<NamespaceSeries> {
        match request.extensions().get::<Namespace>() {
            Some(namespace) => self.series(namespace),
            None => Arc::clone(
                self.default
                    .get_or_init(|| self.series(&Namespace::default())),
            ),
        }
    }

    fn series(&self, namespace: &Namespace) -> Arc<NamespaceSeries> {
        {
            let known = self.known.read().unwrap_or_else(|p| p.into_inner());
            if let Some(series) = known.get(namespace) {
                return Arc::clone(series);
            }
            if known.len() >= self.cap {
                return Arc::clone(&self.other);
            }
        }
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = known.get(namespace) {
            Arc::clone(series)
        } else if known.len() < self.cap {
            let series = NamespaceSeries::new(namespace.clone());
            known.insert(namespace.clone(), Arc::clone(&series));
            series
        } else {
            Arc::clone(&self.other)
        }
    }
}

#[derive(Debug)]
struct LimiterCollector {
    limiter: Weak<Mutex<Option<WeakRateLimiter>>>,
}

impl Collector for LimiterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Some(slot) = self.limiter.upgrade() else {
            return Ok(());
        };
        let limiter = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(WeakRateLimiter::upgrade);
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let namespaces = ConstGauge::new(limiter.tracked_namespaces() as i64);
        namespaces.encode(encoder.encode_descriptor(
            "rate_limit_namespaces",
            "Namespaces with a rate-limit bucket of their own",
            None,
            namespaces.metric_type(),
        )?)?;
        let tokens = ConstGauge::new(i64::from(limiter.global_available()));
        tokens.encode(encoder.encode_descriptor(
            "rate_limit_global_tokens",
            "Requests the global rate-limit bucket admits at once right now",
            None,
            tokens.metric_type(),
        )?)?;
        Ok(())
    }
}

impl Observer for Metrics {
    fn observe(&self, event: &Event<'_>) {
        let inner = &self.inner;
        match *event {
            Event::RateLimitWait {
                namespace,
                level,
                waited,
            } => {
                inner
                    .wait
                    .get_or_create(&self.limit_labels(namespace, level))
                    .observe(waited.as_secs_f64());
            }
            Event::RateLimitRefused {
                namespace, level, ..
            } => {
                inner
                    .refusals
                    .get_or_create(&self.limit_labels(namespace, level))
                    .inc();
            }
            Event::Retry {
                reason,
                delay,
                from_server,
                ..
            } => {
                inner
                    .retries
                    .get_or_create(&RetryLabels {
                        reason: reason.as_str(),
                    })
                    .inc();
                if from_server {
                    inner.retry_after.observe(delay.as_secs_f64());
                }
            }
            Event::RetriesExhausted { .. } => {
                inner.retries_exhausted.inc();
            }
            Event::RetryBudgetExhausted { .. } => {
                inner.budget_exhausted.inc();
            }
            Event::PauseStarted {
                delay, extended, ..
            } => {
                if !extended {
                    inner.pauses.inc();
                    inner.paused.inc();
                }
                inner.pause_delay.observe(delay.as_secs_f64());
            }
            Event::PauseEnded { .. } => {
                inner.paused.dec();
            }
            Event::Timeout { .. } => {
                inner.timeouts.inc();
            }
            Event::StoreFallback { .. } => {
                inner.store_fallbacks.inc();
            }
        }
    }
}

impl Metrics {
    fn limit_labels(&self, namespace: &Namespace, level: Level) -> LimitLabels {
        LimitLabels {
            namespace: self.namespace(namespace),
            level: level.as_str(),
        }
    }
}

/// Measures each logical request with [`Metrics`]: counts by method, status class and
/// namespace, duration until the response body ends, in-flight requests.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`MetricsLayer`] produces.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<MetricsBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let series = self.metrics.inner.namespaces.series_of(&request);
        let method = method_index(request.method());
        self.metrics.inner.in_flight.inc();
        let guard = Guard {
            metrics: self.metrics.clone(),
            series,
            method,
            status_class: ERROR_CLASS,
            start: Instant::now(),
        };
        ResponseFuture {
            future: self.inner.call(request),
            guard: Some(guard),
        }
    }
}

pin_project! {
    /// The response future of [`MetricsService`].
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        guard: Option<Guard>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<MetricsBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        // The guard records when dropped: here for an error or an empty body, otherwise when
        // the body ends.
        let mut guard = this.guard.take();
        Poll::Ready(result.map(|response| {
            if let Some(guard) = &mut guard {
                guard.status_class = status_class_index(response.status().as_u16());
            }
            let guard = guard.filter(|_| !response.body().is_end_stream());
            response.map(|body| MetricsBody { body, guard })
        }))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// A response body that records the request's metrics when it ends or is dropped.
    pub struct MetricsBody<B> {
        #[pin]
        body: B,
        guard: Option<Guard>,
    }
}

impl<B> MetricsBody<B> {
    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.body
    }
}

impl<B: Body> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.body.as_mut().poll_frame(cx));
        if frame.is_none() || this.body.is_end_stream() {
            drop(this.guard.take());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> fmt::Debug for MetricsBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsBody").finish_non_exhaustive()
    }
}

/// Records one logical request when dropped.
struct Guard {
    metrics: Metrics,
    series: Arc<NamespaceSeries>,
    method: usize,
    status_class: usize,
    start: Instant,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let inner = &self.metrics.inner;
        let (method, status_class) = (self.method, self.status_class);
        inner.in_flight.dec();
        inner.durations[method][status_class]
            .get_or_init(|| {
                inner
                    .duration
                    .get_or_create(&DurationLabels {
                        method: METHOD_LABELS[method],
                        status_class: STATUS_CLASS_LABELS[status_class],
                    })
                    .clone()
            })
            .observe(self.start.elapsed().as_secs_f64());
        self.series.requests[method][status_class]
            .get_or_init(|| {
                inner
                    .requests
                    .get_or_create(&RequestLabels {
                        method: METHOD_LABELS[method],
                        status_class: STATUS_CLASS_LABELS[status_class],
                        namespace: self.series.label.clone(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// The `method` label values: the nine standard methods, then `OTHER`.
const METHOD_LABELS: [&str; METHODS] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "OTHER",
];
const METHODS: usize = 10;

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => 9,
    }
}

/// The `status_class` label values: `1xx` to `5xx`, then `error` (no response).
const STATUS_CLASS_LABELS: [&str; STATUS_CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];
const STATUS_CLASSES: usize = 6;
const ERROR_CLASS: usize = 5;

fn status_class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::rate_limit::{Quota, RateLimitLayer};

    fn encode(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    /// The value of the sample `series` (name and labels exactly as encoded).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            value.parse().ok()
        })
    }

    fn request(method: Method, namespace: &str) -> Request<String> {
        let mut request = Request::builder()
            .method(method)
            .body(String::new())
            .unwrap();
        request.extensions_mut().insert(Namespace::new(namespace));
        request
    }

    #[tokio::test(start_paused = true)]
    async fn counts_requests_by_method_status_class_and_namespace() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let service = ServiceBuilder::new()
            .layer(MetricsLayer::new(metrics))
            .service(service_fn(|req: Request<String>| async move {
                let status = if req.method() == Method::POST {
                    201
                } else {
                    503
                };
                let mut response = Response::new(String::from("body"));
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, Infallible>(response)
            }));
        for _ in 0..3 {
            let response = service
                .clone()
                .oneshot(request(Method::POST, "a"))
                .await
                .unwrap();
            response.into_body().collect().await.unwrap();
        }
        let response = service
            .clone()
            .oneshot(request(Method::GET, "b"))
            .await
            .unwrap();
        drop(response); // a dropped body still ends the request
        let method = Method::from_bytes(b"BREW").unwrap();
        service.clone().oneshot(request(method, "b")).await.unwrap();

        let text = encode(&registry);
        let requests = |labels: &str| sample(&text, &format!("pacer_requests_total{{{labels}}}"));
        assert_eq!(
            requests(r#"method="POST",status_class="2xx",namespace="a""#),
            Some(3.0)
        );
        assert_eq!(
            requests(r#"method="GET",status_class="5xx",namespace="b""#),
            Some(1.0)
        );
        assert_eq!(
            requests(r#"method="OTHER",status_class="5xx",namespace="b""#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"pacer_request_duration_seconds_count{method="POST",status_class="2xx"}"#
            ),
            Some(3.0)
        );
        assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn duration_runs_until_the_body_ends() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let (sender, receiver) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        let receiver = std::sync::Mutex::new(Some(receiver));
        let service = ServiceBuilder::new()
            .layer(MetricsLayer::new(metrics))
            .service(service_fn(move |_req: Request<String>| {
                let receiver = receiver.lock().unwrap().take().unwrap();
                async move {
                    let stream = tokio_stream_from(receiver);
                    Ok::<_, Infallible>(Response::new(StreamBody::new(stream)))
                }
            }));
        tokio::time::advance(Duration::from_millis(1)).await;
        let response = service.oneshot(request(Method::GET, "a")).await.unwrap();
        assert_eq!(
            sample(&encode(&registry), "pacer_in_flight_requests"),
            Some(1.0)
        );
        let mut body = response.into_body();
        sender
            .send(Ok(Frame::data(Bytes::from("x"))))
            .await
            .unwrap();
        body.frame().await.unwrap().unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        drop(sender);
        assert!(body.frame().await.is_none());

        let text = encode(&registry);
        assert_eq!(
            sample(
                &text,
                r#"pacer_request_duration_seconds_sum{method="GET",status_class="2xx"}"#
            ),
            Some(2.0)
        );
        assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(0.0));
    }

    /// A `Stream` over an mpsc receiver, without pulling in tokio-stream.
    fn tokio_stream_from<T>(
        mut receiver: mpsc::Receiver<T>,
    ) -> impl futures_core_stream::Stream<Item = T> {
        futures_core_stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }

    mod futures_core_stream {
        pub(super) use futures_util::stream::{Stream, poll_fn};
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_waits_and_refusals_are_observed() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let limiter = RateLimiter::builder()
            .per_namespace(Quota::per_second(1).unwrap().with_burst(1).unwrap())
            .max_wait(Duration::from_millis(2500))
            .observer(metrics.clone())
            .build()
            .unwrap();
        metrics.observe_limiter(&limiter);
        let service = ServiceBuilder::new()
            .layer(MetricsLayer::new(metrics))
            .layer(RateLimitLayer::new(limiter))
            .service(service_fn(|_req: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            }));
        let calls: Vec<_> = (0..4)
            .map(|_| tokio::spawn(service.clone().oneshot(request(Method::GET, "team-a"))))
            .collect();
        let mut failures = 0;
        for call in calls {
            if call.await.unwrap().is_err() {
                failures += 1;
            }
        }
        assert_eq!(failures, 1); // the fourth would wait 3 s > 2.5 s

        let text = encode(&registry);
        let wait = |suffix: &str| {
            sample(
                &text,
                &format!(
                    r#"pacer_rate_limit_wait_seconds_{suffix}{{namespace="team-a",level="namespace"}}"#
                ),
            )
        };
        assert_eq!(wait("count"), Some(2.0));
        assert_eq!(wait("sum"), Some(3.0)); // 1 s + 2 s
        assert_eq!(
            sample(
                &text,
                r#"pacer_rate_limit_refusals_total{namespace="team-a",level="namespace"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"pacer_requests_total{method="GET",status_class="error",namespace="team-a"}"#
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "pacer_rate_limit_namespaces"), Some(1.0));
        // Three requests at 0, 1 and 2 s; at 50 req/s only the last one has not come back.
        assert_eq!(sample(&text, "pacer_rate_limit_global_tokens"), Some(99.0));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_by_reason_exhaustion_and_honoured_retry_after_are_counted() {
        use std::sync::atomic::{AtomicU32, Ordering};

        use crate::retry::{RetryLayer, RetryPolicy};

        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        // Per logical request: 429 with Retry-After 2, then 503, then 200. POSTs stop at the 503.
        let service = ServiceBuilder::new()
            .layer(MetricsLayer::new(metrics.clone()))
            .layer(RetryLayer::new(
                RetryPolicy::new()
                    .max_retries(2)
                    .without_budget()
                    .seed(1)
                    .observer(metrics.clone()),
            ))
            .service(service_fn(move |_req: Request<String>| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    let mut response = Response::new(String::new());
                    match n % 3 {
                        0 => {
                            *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                            response
                                .headers_mut()
                                .insert("retry-after", http::HeaderValue::from_static("2"));
                        }
                        1 => *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE,
                        _ => {}
                    }
                    Ok::<_, Infallible>(response)
                }
            }));
        let start = Instant::now();
        let ok = service
            .clone()
            .oneshot(request(Method::GET, "a"))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert!(start.elapsed() >= Duration::from_secs(2));
        let post = service
            .clone()
            .oneshot(request(Method::POST, "a"))
            .await
            .unwrap();
        assert_eq!(post.status(), 503); // a POST is not retried on 503
        calls.store(0, Ordering::SeqCst);
        let limited = RetryPolicy::new()
            .max_retries(1)
            .without_budget()
            .observer(metrics.clone());
        let exhausted = ServiceBuilder::new()
            .layer(RetryLayer::new(limited))
            .service(service_fn(|_req: Request<String>| async {
                let mut response = Response::new(String::new());
                *response.status_mut() = http::StatusCode::BAD_GATEWAY;
                Ok::<_, Infallible>(response)
            }));
        let last = exhausted.oneshot(request(Method::GET, "a")).await.unwrap();
        assert_eq!(last.status(), 502);

        let text = encode(&registry);
        assert_eq!(
            sample(&text, r#"pacer_retries_total{reason="throttled"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"pacer_retries_total{reason="server_error"}"#),
            Some(2.0)
        );
        assert_eq!(sample(&text, "pacer_retries_exhausted_total"), Some(1.0));
        assert_eq!(sample(&text, "pacer_retry_after_seconds_count"), Some(2.0));
        assert_eq!(sample(&text, "pacer_retry_after_seconds_sum"), Some(4.0));
    }

    #[tokio::test(start_paused = true)]
    async fn namespace_labels_are_capped() {
        let mut registry = Registry::default();
        let metrics = Metrics::builder().prefix("svc").register(&mut registry);
        let service = ServiceBuilder::new()
            .layer(MetricsLayer::new(metrics))
            .service(service_fn(|_req: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            }));
        for i in 0..10_000 {
            service
                .clone()
                .oneshot(request(Method::GET, &format!("tenant-{i}")))
                .await
                .unwrap();
        }
        let text = encode(&registry);
        let series = text
            .lines()
            .filter(|line| line.starts_with("svc_requests_total{"))
            .count();
        assert_eq!(series, 101);
        assert_eq!(
            sample(
                &text,
                r#"svc_requests_total{method="GET",status_class="2xx",namespace="other"}"#
            ),
            Some(9900.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"svc_requests_total{method="GET",status_class="2xx",namespace="tenant-99"}"#
            ),
            Some(1.0)
        );
    }
}
