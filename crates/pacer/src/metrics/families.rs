//! [`Metrics`]: the registered metric families, and [`MetricsBuilder`], which registers them.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::cardinality::{LabelledFamilies, NamespaceLabels, NamespaceSeries};
use super::collector::LimiterCollector;
use super::labels::{
    DurationLabels, LimitLabels, METHODS, RequestLabels, RetryLabels, STATUS_CLASSES,
    StoreErrorLabels,
};
use crate::namespace::Namespace;
use crate::rate_limit::limiter::{RateLimiter, WeakRateLimiter};

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

/// The registered metrics; cheap to clone (shared). Pass clones to [`MetricsLayer`](super::MetricsLayer) and, as the
/// observer, to the other layers' builders.
#[derive(Clone)]
pub struct Metrics {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) requests: Family<RequestLabels, Counter>,
    pub(super) duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    /// `duration`'s histograms by method and status class, resolved on first use.
    pub(super) durations: [[OnceLock<Histogram>; STATUS_CLASSES]; METHODS],
    pub(super) in_flight: Gauge,
    pub(super) wait: Family<LimitLabels, Histogram, fn() -> Histogram>,
    pub(super) refusals: Family<LimitLabels, Counter>,
    pub(super) retries: Family<RetryLabels, Counter>,
    pub(super) retries_exhausted: Counter,
    pub(super) budget_exhausted: Counter,
    pub(super) retry_after: Histogram,
    pub(super) pauses: Counter,
    pub(super) pause_delay: Histogram,
    pub(super) paused: Gauge,
    pub(super) timeouts: Counter,
    pub(super) store_fallbacks: Counter,
    pub(super) store_errors: Family<StoreErrorLabels, Counter>,
    pub(super) namespaces: NamespaceLabels,
    pub(super) limiter: Arc<Mutex<Option<WeakRateLimiter>>>,
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
            namespace_label_idle: DEFAULT_NAMESPACE_LABEL_IDLE,
            pinned: Vec::new(),
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

    /// The series `namespace` is recorded in now; hold it while recording, so that its slot
    /// cannot be released under the recording.
    pub(super) fn namespace_series(&self, namespace: &Namespace) -> Arc<NamespaceSeries> {
        self.inner
            .namespaces
            .series(namespace, tokio::time::Instant::now())
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("max_namespace_labels", &self.inner.namespaces.cap)
            .finish_non_exhaustive()
    }
}

/// How long a namespace label slot stays taken without a request, by default.
pub const DEFAULT_NAMESPACE_LABEL_IDLE: Duration = Duration::from_secs(300);

/// Builds and registers [`Metrics`].
#[derive(Debug, Clone)]
pub struct MetricsBuilder {
    prefix: String,
    max_namespace_labels: usize,
    namespace_label_idle: Duration,
    pinned: Vec<Namespace>,
}

impl MetricsBuilder {
    /// The prefix of every metric name (default `pacer`); empty for none.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many namespaces (besides the pinned ones) have a `namespace` label value of their
    /// own at once; while every slot is taken, new ones count as `other` (default 100). See
    /// [the cardinality policy](super#cardinality).
    pub fn max_namespace_labels(mut self, max: usize) -> Self {
        self.max_namespace_labels = max;
        self
    }

    /// How long a namespace without requests keeps its label slot once every slot is taken
    /// (default [`DEFAULT_NAMESPACE_LABEL_IDLE`], 5 minutes; whole seconds count). A released
    /// namespace's series leave the registry; if it comes back it starts again from zero,
    /// which Prometheus' `rate()` and `increase()` read as a counter reset.
    pub fn namespace_label_idle(mut self, idle: Duration) -> Self {
        self.namespace_label_idle = idle;
        self
    }

    /// Namespaces that always have a label value of their own, outside the cap: the
    /// namespaces you configured overrides for, the tenants you alert on. Adds to earlier calls.
    pub fn pin_namespaces<N: Into<Namespace>>(
        mut self,
        namespaces: impl IntoIterator<Item = N>,
    ) -> Self {
        self.pinned.extend(namespaces.into_iter().map(Into::into));
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
        let requests = Family::default();
        let wait = Family::new_with_constructor(wait_histogram as fn() -> Histogram);
        let refusals = Family::default();
        let namespaces = NamespaceLabels::new(
            self.max_namespace_labels,
            self.namespace_label_idle,
            self.pinned,
            LabelledFamilies {
                requests: requests.clone(),
                wait: wait.clone(),
                refusals: refusals.clone(),
            },
        );
        let inner = Inner {
            requests,
            duration: Family::new_with_constructor(duration_histogram),
            durations: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            in_flight: Gauge::default(),
            wait,
            refusals,
            retries: Family::default(),
            retries_exhausted: Counter::default(),
            budget_exhausted: Counter::default(),
            retry_after: Histogram::new(RETRY_AFTER_BUCKETS),
            pauses: Counter::default(),
            pause_delay: Histogram::new(RETRY_AFTER_BUCKETS),
            paused: Gauge::default(),
            timeouts: Counter::default(),
            store_fallbacks: Counter::default(),
            store_errors: Family::default(),
            namespaces,
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
        registry.register(
            "rate_limit_store_fallbacks",
            "Rate-limit decisions made by the failure policy while the shared store was unavailable",
            inner.store_fallbacks.clone(),
        );
        registry.register(
            "rate_limit_store_errors",
            "Failed calls to the shared rate-limit store, by kind (timeout, backend, protocol, unsupported)",
            inner.store_errors.clone(),
        );
        registry.register_collector(Box::new(LimiterCollector {
            limiter: Arc::downgrade(&limiter),
        }));
        Metrics {
            inner: Arc::new(inner),
        }
    }
}
