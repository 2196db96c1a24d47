//! Failures of the shared rate-limit store are visible: against a real `redis-server` that is
//! killed mid-run, every failed call is reported as `Event::StoreError` and counted in
//! `pacer_rate_limit_store_errors_total{kind}`, and the failure policy applies. Without
//! `redis-server` on `PATH` the test prints why it skips and passes.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pacer::Namespace;
use pacer::events::{Event, Observer};
use pacer::metrics::Metrics;
use pacer::rate_limit::redis::RedisStore;
use pacer::rate_limit::{Level, RateLimiter, StoreFailure};
use prometheus_client::registry::Registry;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

/// Keeps the store errors it is told about: operation, kind and message.
#[derive(Default, Clone)]
struct StoreErrors(Arc<Mutex<Vec<(String, String, String)>>>);

impl Observer for StoreErrors {
    fn observe(&self, event: &Event<'_>) {
        if let Event::StoreError {
            operation,
            kind,
            error,
        } = event
        {
            self.0.lock().unwrap().push((
                (*operation).to_owned(),
                (*kind).to_owned(),
                error.to_string(),
            ));
        }
    }
}

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

async fn limiter(
    redis: &RedisServer,
    policy: StoreFailure,
) -> (RateLimiter, StoreErrors, Registry) {
    let store = RedisStore::builder()
        .prefix("store-errors")
        .timeout(Duration::from_millis(200))
        .connect(redis.url())
        .await
        .unwrap();
    let mut registry = Registry::with_prefix("pacer");
    let metrics = Metrics::new(&mut registry);
    let errors = StoreErrors::default();
    let limiter = RateLimiter::builder()
        .store(store)
        .on_store_failure(policy)
        .observer((metrics, errors.clone()))
        .build()
        .unwrap();
    (limiter, errors, registry)
}

#[tokio::test]
async fn a_killed_redis_is_reported_counted_and_fails_closed() {
    let mut redis = RedisServer::start();
    let (limiter, errors, registry) = limiter(&redis, StoreFailure::FailClosed).await;
    let namespace = Namespace::new("team-a");
    limiter.acquire(&namespace).await.unwrap();
    assert!(errors.0.lock().unwrap().is_empty());
    assert!(!scrape(&registry).contains("pacer_rate_limit_store_errors_total{"));

    redis.kill();
    let refused = limiter.acquire(&namespace).await.unwrap_err();
    assert_eq!(refused.level, Level::Store);

    let seen = errors.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "decide");
    assert!(seen[0].1 == "backend" || seen[0].1 == "timeout", "{seen:?}");
    assert!(seen[0].2.contains("rate-limit store"), "{seen:?}");
    let text = scrape(&registry);
    let line = format!(
        "pacer_rate_limit_store_errors_total{{kind=\"{}\"}} 1",
        seen[0].1
    );
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("pacer_rate_limit_store_fallbacks_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_killed_redis_under_the_local_policy_still_admits_and_is_reported() {
    let mut redis = RedisServer::start();
    let (limiter, errors, registry) = limiter(&redis, StoreFailure::local_share_of(2)).await;
    let namespace = Namespace::new("team-b");
    redis.kill();
    limiter.acquire(&namespace).await.unwrap();
    assert_eq!(errors.0.lock().unwrap().len(), 1);
    assert_eq!(limiter.store_fallbacks(), 1);
    let text = scrape(&registry);
    assert!(
        text.contains("pacer_rate_limit_store_errors_total{kind="),
        "{text}"
    );
}
