//! The namespace-label cardinality cache: the first `max_namespace_labels` namespaces get a
//! label value (and cached request counters) of their own, every other one shares `other`.

use std::sync::{Arc, OnceLock, RwLock};

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use http::Request;
use prometheus_client::metrics::counter::Counter;

use super::labels::{METHODS, NamespaceLabel, STATUS_CLASSES};
use crate::namespace::Namespace;

/// The request counters of one `namespace` label value, one per method and status class,
/// resolved from the family on first use so that a request never looks its labels up again.
pub(super) struct NamespaceSeries {
    pub(super) label: NamespaceLabel,
    pub(super) requests: [[OnceLock<Counter>; STATUS_CLASSES]; METHODS],
}

impl NamespaceSeries {
    pub(super) fn new(namespace: Namespace) -> Arc<Self> {
        Arc::new(Self {
            label: NamespaceLabel(namespace),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
        })
    }
}

/// The namespaces that have a label value of their own: the first `cap` seen; every other
/// namespace shares the `other` series.
pub(super) struct NamespaceLabels {
    pub(super) cap: usize,
    pub(super) known: RwLock<HashMap<Namespace, Arc<NamespaceSeries>, RandomState>>,
    pub(super) other: Arc<NamespaceSeries>,
    /// The series of requests without a `Namespace` extension, once looked up.
    pub(super) default: OnceLock<Arc<NamespaceSeries>>,
}

impl NamespaceLabels {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            known: RwLock::new(HashMap::default()),
            other: NamespaceSeries::new(Namespace::new("other")),
            default: OnceLock::new(),
        }
    }

    pub(super) fn label(&self, namespace: &Namespace) -> NamespaceLabel {
        self.series(namespace).label.clone()
    }

    /// The series of a request's namespace (the default one when it names none).
    pub(super) fn series_of<B>(&self, request: &Request<B>) -> Arc<NamespaceSeries> {
        match request.extensions().get::<Namespace>() {
            Some(namespace) => self.series(namespace),
            None => Arc::clone(
                self.default
                    .get_or_init(|| self.series(&Namespace::default())),
            ),
        }
    }

    pub(super) fn series(&self, namespace: &Namespace) -> Arc<NamespaceSeries> {
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
