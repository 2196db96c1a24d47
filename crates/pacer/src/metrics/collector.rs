//! The scrape-time gauges of a rate limiter (tracked namespaces, global tokens), read through a
//! weak handle so that the metrics never keep the limiter alive.

use std::fmt;
use std::sync::{Mutex, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use crate::rate_limit::limiter::WeakRateLimiter;

#[derive(Debug)]
pub(super) struct LimiterCollector {
    pub(super) limiter: Weak<Mutex<Option<WeakRateLimiter>>>,
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
