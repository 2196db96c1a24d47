//! [`Metrics`] as an [`Observer`]: the other layers' events become counters and histograms.

use std::sync::Arc;

use super::cardinality::NamespaceSeries;
use super::families::Metrics;
use super::labels::{LimitLabels, RetryLabels};
use crate::events::event::Event;
use crate::events::observer::Observer;
use crate::namespace::Namespace;
use crate::rate_limit::level::Level;

impl Observer for Metrics {
    fn observe(&self, event: &Event<'_>) {
        let inner = &self.inner;
        match *event {
            Event::RateLimitWait {
                namespace,
                level,
                waited,
            } => {
                let (_slot, labels) = self.limit_labels(namespace, level);
                inner
                    .wait
                    .get_or_create(&labels)
                    .observe(waited.as_secs_f64());
            }
            Event::RateLimitRefused {
                namespace, level, ..
            } => {
                let (_slot, labels) = self.limit_labels(namespace, level);
                inner.refusals.get_or_create(&labels).inc();
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
                        reason: reason.label(from_server),
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
            Event::StoreError { kind, .. } => {
                inner
                    .store_errors
                    .get_or_create(&super::labels::StoreErrorLabels { kind })
                    .inc();
            }
        }
    }
}

impl Metrics {
    /// The labels of a rate-limit event, with the series that keeps their slot while held.
    fn limit_labels(
        &self,
        namespace: &Namespace,
        level: Level,
    ) -> (Arc<NamespaceSeries>, LimitLabels) {
        let series = self.namespace_series(namespace);
        let labels = LimitLabels {
            namespace: series.label.clone(),
            level: level.as_str(),
        };
        (series, labels)
    }
}
