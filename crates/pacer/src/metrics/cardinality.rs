//! The namespace-label policy: which namespaces get a `namespace` label value of their own.
//!
//! - **Pinned** namespaces (the default one, and those [`MetricsBuilder::pin_namespaces`]
//!   names, such as the rate limiter's overrides) always have their own series and do not count
//!   against the cap.
//! - Any other namespace takes one of `cap` **slots** on first use; while every slot is taken,
//!   a new namespace is counted as `other`.
//! - A slot is **released** when its namespace has had no request for `idle` and none is in
//!   flight, at the next sweep: its series leave the registry and the next new namespace takes
//!   the slot. A sweep runs only when a new namespace finds every slot taken, and at most once
//!   per [`SWEEP_INTERVAL`], so below the cap nothing is ever released and a flood costs one
//!   sweep a second.
//!
//! So a flood of junk namespaces takes the slots only while it lasts: `idle` after it ends,
//! real tenants get labels again.
//!
//! [`MetricsBuilder::pin_namespaces`]: super::MetricsBuilder::pin_namespaces

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use http::Request;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tokio::time::Instant;

use super::labels::{
    LimitLabels, METHOD_LABELS, METHODS, NamespaceLabel, RequestLabels, STATUS_CLASS_LABELS,
    STATUS_CLASSES,
};
use crate::namespace::Namespace;
use crate::rate_limit::level::Level;

/// How often, at most, a full table is swept for idle slots.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The request counters of one `namespace` label value, one per method and status class,
/// resolved from the family on first use so that a request never looks its labels up again.
pub(super) struct NamespaceSeries {
    pub(super) label: NamespaceLabel,
    pub(super) requests: [[OnceLock<Counter>; STATUS_CLASSES]; METHODS],
    pinned: bool,
    /// Whole seconds since [`NamespaceLabels::epoch`] of the last request seen.
    last_seen: AtomicU64,
}

impl NamespaceSeries {
    fn new(namespace: Namespace, pinned: bool, now: u64) -> Arc<Self> {
        Arc::new(Self {
            label: NamespaceLabel(namespace),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            pinned,
            last_seen: AtomicU64::new(now),
        })
    }

    fn touch(&self, now: u64) {
        // A load first: the common case writes nothing, so requests of one namespace on
        // several threads do not bounce the cache line.
        if self.last_seen.load(Ordering::Relaxed) != now {
            self.last_seen.store(now, Ordering::Relaxed);
        }
    }
}

/// The families whose series carry a `namespace` label: a released slot's series leave them.
pub(super) struct LabelledFamilies {
    pub(super) requests: Family<RequestLabels, Counter>,
    pub(super) wait: Family<LimitLabels, Histogram, fn() -> Histogram>,
    pub(super) refusals: Family<LimitLabels, Counter>,
}

/// The namespaces that have a label value of their own (see the module docs).
pub(super) struct NamespaceLabels {
    pub(super) cap: usize,
    idle_secs: u64,
    epoch: Instant,
    table: RwLock<Table>,
    other: Arc<NamespaceSeries>,
    /// The series of requests without a `Namespace` extension (pinned).
    default: Arc<NamespaceSeries>,
    families: LabelledFamilies,
}

struct Table {
    series: HashMap<Namespace, Arc<NamespaceSeries>, RandomState>,
    /// Entries of `series` that are not pinned: the slots taken.
    slots_taken: usize,
    /// When (seconds since the epoch) a full table may be swept again.
    next_sweep: u64,
}

impl NamespaceLabels {
    pub(super) fn new(
        cap: usize,
        idle: Duration,
        pinned: impl IntoIterator<Item = Namespace>,
        families: LabelledFamilies,
    ) -> Self {
        let epoch = Instant::now();
        let default = NamespaceSeries::new(Namespace::default(), true, 0);
        let mut series = HashMap::default();
        series.insert(Namespace::default(), Arc::clone(&default));
        for namespace in pinned {
            series.insert(namespace.clone(), NamespaceSeries::new(namespace, true, 0));
        }
        Self {
            cap,
            idle_secs: idle.as_secs(),
            epoch,
            table: RwLock::new(Table {
                series,
                slots_taken: 0,
                next_sweep: 0,
            }),
            other: NamespaceSeries::new(Namespace::new("other"), true, 0),
            default,
            families,
        }
    }

    /// The series of a request's namespace (the default one when it names none), at `now`.
    pub(super) fn series_of<B>(&self, request: &Request<B>, now: Instant) -> Arc<NamespaceSeries> {
        match request.extensions().get::<Namespace>() {
            Some(namespace) => self.series(namespace, now),
            None => Arc::clone(&self.default),
        }
    }

    /// The series `namespace` counts into at `now`. Holding the answer keeps the slot: a slot
    /// is never released while a caller holds its series.
    pub(super) fn series(&self, namespace: &Namespace, now: Instant) -> Arc<NamespaceSeries> {
        let now = now.saturating_duration_since(self.epoch).as_secs();
        {
            let table = self.table.read().unwrap_or_else(|p| p.into_inner());
            if let Some(series) = table.series.get(namespace) {
                series.touch(now);
                return Arc::clone(series);
            }
            if table.slots_taken >= self.cap && now < table.next_sweep {
                return Arc::clone(&self.other);
            }
        }
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = table.series.get(namespace) {
            series.touch(now);
            return Arc::clone(series);
        }
        if table.slots_taken >= self.cap && now >= table.next_sweep {
            table.next_sweep = now.saturating_add(SWEEP_INTERVAL.as_secs());
            self.sweep(&mut table, now);
        }
        if table.slots_taken < self.cap {
            let series = NamespaceSeries::new(namespace.clone(), false, now);
            table.series.insert(namespace.clone(), Arc::clone(&series));
            table.slots_taken += 1;
            series
        } else {
            Arc::clone(&self.other)
        }
    }

    /// Releases every slot idle for `idle` with no holder, and removes its series.
    fn sweep(&self, table: &mut Table, now: u64) {
        let idle_secs = self.idle_secs;
        let mut released = Vec::new();
        table.series.retain(|_, series| {
            let idle = now.saturating_sub(series.last_seen.load(Ordering::Relaxed)) >= idle_secs;
            // The table's own reference is the only one: no request in flight, no event
            // being recorded.
            let keep = series.pinned || !idle || Arc::strong_count(series) > 1;
            if !keep {
                released.push(Arc::clone(series));
            }
            keep
        });
        table.slots_taken -= released.len();
        for series in released {
            self.remove_series(&series);
        }
    }

    fn remove_series(&self, series: &NamespaceSeries) {
        for (method, by_class) in series.requests.iter().enumerate() {
            for (status_class, counter) in by_class.iter().enumerate() {
                if counter.get().is_some() {
                    self.families.requests.remove(&RequestLabels {
                        method: METHOD_LABELS[method],
                        status_class: STATUS_CLASS_LABELS[status_class],
                        namespace: series.label.clone(),
                    });
                }
            }
        }
        for level in [Level::Global, Level::Namespace, Level::Store] {
            let labels = LimitLabels {
                namespace: series.label.clone(),
                level: level.as_str(),
            };
            self.families.wait.remove(&labels);
            self.families.refusals.remove(&labels);
        }
    }
}
