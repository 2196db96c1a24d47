//! The limiter over a shared store, with a store that always fails: the failure policy, its
//! retry interval and its counter, on paused time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::advance;

use super::*;
use crate::namespace::Namespace;

#[derive(Debug, Default)]
struct FailingStore {
    calls: AtomicUsize,
}

impl FailingStore {
    fn fail<T: Send + 'static>(&self) -> StoreFuture<T> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::ready(Err(StoreError::Backend("down".into()))))
    }
}

impl RateLimitStore for FailingStore {
    fn decide(&self, _: StoreRequest) -> StoreFuture<StoreDecision> {
        self.fail()
    }
    fn reserve_global(&self, _: Quota, _: Duration) -> StoreFuture<Result<Duration, Duration>> {
        self.fail()
    }
    fn refund(&self, _: Refund) -> StoreFuture<()> {
        self.fail()
    }
}

fn quota(rate: f64, burst: u32) -> Quota {
    Quota::per_second(rate).unwrap().with_burst(burst).unwrap()
}

fn builder(store: &Arc<FailingStore>) -> RateLimiterBuilder {
    RateLimiter::builder()
        .global(quota(10.0, 10))
        .per_namespace(quota(1000.0, 1000))
        .shared_store(store.clone())
        .store_retry_interval(Duration::from_secs(1))
}

#[tokio::test(start_paused = true)]
async fn fail_closed_refuses_and_leaves_the_store_alone_for_the_interval() {
    let store = Arc::new(FailingStore::default());
    let limiter = builder(&store).build().unwrap();
    let a = Namespace::new("a");
    let refused = limiter.acquire(&a).await.unwrap_err();
    assert_eq!(refused.level, Level::Store);
    assert_eq!(store.calls.load(Ordering::Relaxed), 1);
    assert_eq!(limiter.store_fallbacks(), 1);

    // Left alone: refused at once, told when the store is tried again.
    advance(Duration::from_millis(400)).await;
    let refused = limiter.try_acquire_async(&a).await.unwrap_err();
    assert_eq!(refused.level, Level::Store);
    assert_eq!(refused.retry_after, Duration::from_millis(600));
    assert_eq!(store.calls.load(Ordering::Relaxed), 1);
    assert_eq!(limiter.store_fallbacks(), 2);

    advance(Duration::from_millis(600)).await;
    assert!(limiter.acquire(&a).await.is_err());
    assert_eq!(store.calls.load(Ordering::Relaxed), 2);
    // The synchronous try_acquire cannot ask the store: it decides by the policy.
    assert_eq!(limiter.try_acquire(&a).unwrap_err().level, Level::Store);
    assert_eq!(store.calls.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn local_fallback_decides_at_its_share_of_every_quota() {
    let store = Arc::new(FailingStore::default());
    let limiter = builder(&store)
        .on_store_failure(StoreFailure::local_share_of(2))
        .max_wait(Duration::ZERO)
        .build()
        .unwrap();
    let drain = |limiter: &RateLimiter| {
        let limiter = limiter.clone();
        async move {
            let mut admitted = 0;
            while limiter
                .try_acquire_async(&Namespace::new("a"))
                .await
                .is_ok()
            {
                admitted += 1;
            }
            admitted
        }
    };
    // Half of the global quota: burst 5, then 5 per second.
    assert_eq!(drain(&limiter).await, 5);
    advance(Duration::from_secs(1)).await;
    assert_eq!(drain(&limiter).await, 5);
    assert!(limiter.store_fallbacks() >= 12);
    assert_eq!(store.calls.load(Ordering::Relaxed), 2);
    assert_eq!(limiter.tracked_namespaces(), 1);
    // Wait mode in the fallback, too.
    let waiting = builder(&store)
        .on_store_failure(StoreFailure::Local { share: 0.1 })
        .build()
        .unwrap();
    let a = Namespace::new("a");
    waiting.acquire(&a).await.unwrap();
    let start = tokio::time::Instant::now();
    waiting.acquire(&a).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1)); // 1 req/s at a tenth of 10 req/s
}

#[test]
fn build_rejects_invalid_shares() {
    let store = Arc::new(FailingStore::default());
    for share in [0.0, -1.0, 1.5, f64::NAN] {
        assert_eq!(
            builder(&store)
                .on_store_failure(StoreFailure::Local { share })
                .build()
                .map(drop)
                .unwrap_err()
                .to_string(),
            BuildError::StoreFailureShare(share).to_string()
        );
    }
    assert_eq!(StoreFailure::default(), StoreFailure::FailClosed);
    assert_eq!(
        StoreFailure::local_share_of(0),
        StoreFailure::Local { share: 1.0 }
    );
}

#[test]
fn the_default_backend_is_memory() {
    let limiter = RateLimiter::builder().build().unwrap();
    assert!(limiter.store().is_none());
    assert_eq!(limiter.store_fallbacks(), 0);
    assert!(limiter.try_acquire(&Namespace::new("a")).is_ok());
}

#[tokio::test(start_paused = true)]
async fn fallbacks_are_reported_to_the_observer() {
    use crate::events::{Event, Observer};

    #[derive(Default)]
    struct Fallbacks {
        local: AtomicUsize,
        refused: AtomicUsize,
    }
    impl Observer for Arc<Fallbacks> {
        fn observe(&self, event: &Event<'_>) {
            if let Event::StoreFallback { local, .. } = event {
                let counter = if *local { &self.local } else { &self.refused };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let seen = Arc::new(Fallbacks::default());
    let store = Arc::new(FailingStore::default());
    let closed = builder(&store).observer(seen.clone()).build().unwrap();
    let a = Namespace::new("a");
    assert!(closed.acquire(&a).await.is_err());
    assert!(closed.try_acquire(&a).is_err());
    let local = builder(&store)
        .on_store_failure(StoreFailure::local_share_of(2))
        .observer(seen.clone())
        .build()
        .unwrap();
    local.acquire(&a).await.unwrap();
    assert_eq!(seen.refused.load(Ordering::Relaxed), 2);
    assert_eq!(seen.local.load(Ordering::Relaxed), 1);
    assert_eq!(
        closed.store_fallbacks() + local.store_fallbacks(),
        3,
        "the counter and the events agree"
    );
}
