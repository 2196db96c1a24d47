//! [`Guard`]: records one logical request (count, duration, in-flight) when dropped.

use std::sync::Arc;

use tokio::time::Instant;

use super::cardinality::NamespaceSeries;
use super::families::Metrics;
use super::labels::{DurationLabels, METHOD_LABELS, RequestLabels, STATUS_CLASS_LABELS};

/// Records one logical request when dropped.
pub(super) struct Guard {
    pub(super) metrics: Metrics,
    pub(super) series: Arc<NamespaceSeries>,
    pub(super) method: usize,
    pub(super) status_class: usize,
    pub(super) start: Instant,
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
