//! pacer-inventory under load shedding: the fake Infrahub answers `429` with `Retry-After`;
//! the client absorbs it (also on the login call), clamps long delays to the backoff max,
//! gives up with `RateLimitError` when the retries run out, and retries transient failures
//! only for queries and only when asked to. Paused tokio time: waits are exact.
#![allow(clippy::unwrap_used)]

#[path = "support/inventory.rs"]
mod support;

use std::time::Duration;

use pacer_inventory::{BuiltinTagCreate, BuiltinTagFilter, Error, InventoryClient, RateLimitError};
use tokio::time::Instant;

fn tag(name: &str) -> BuiltinTagCreate {
    let mut tag = BuiltinTagCreate::default();
    tag.name = Some(name.into());
    tag
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_and_the_storm_absorbed() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    testbed.faults().storm(3, Some(Duration::from_secs(2)));
    let started = Instant::now();
    // A mutation too: a 429 was refused unprocessed, so retrying it cannot write twice.
    let created = client.tag_create(&tag("calm")).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(created.name.as_deref(), Some("calm"));
    assert_eq!(testbed.stats().too_many_requests(), 3);
    // Three server-given delays of 2 s each (plus the pause gate's short release jitter).
    assert!(waited >= Duration::from_secs(6), "{waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    // Exactly one request reached the fake: nothing was created twice.
    assert_eq!(testbed.infrahub_requests().len(), 1);
    assert_eq!(
        client
            .tag_count(&BuiltinTagFilter::default())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn the_login_call_absorbs_429s_too() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::login_config(&testbed)).unwrap();
    testbed.faults().scope_to(Some("/api/auth/login"));
    testbed.faults().storm(2, Some(Duration::from_secs(1)));
    client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap();
    assert_eq!(testbed.stats().count("/api/auth/login", 429), 2);
    assert_eq!(testbed.stats().count("/api/auth/login", 200), 1);
    assert_eq!(testbed.stats().count("/graphql/main", 200), 1);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_give_rate_limit_error() {
    let testbed = support::start().await;
    let mut config = support::config(&testbed);
    config.rate_limit_max_retries = 2;
    let client = InventoryClient::new(config).unwrap();
    testbed.faults().storm(100, Some(Duration::from_secs(3)));
    let error = client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap_err();
    let Error::RateLimit(RateLimitError {
        url,
        attempts,
        retry_after,
    }) = error
    else {
        panic!("expected RateLimitError, got {error:?}");
    };
    assert_eq!(url, format!("{}/graphql/main", testbed.infrahub_url()));
    assert_eq!(attempts, 3);
    assert_eq!(retry_after, Some(Duration::from_secs(3)));
    assert_eq!(testbed.stats().too_many_requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn disabled_429_retries_fail_at_once() {
    let testbed = support::start().await;
    let mut config = support::config(&testbed);
    config.rate_limit_retry_enabled = false;
    let client = InventoryClient::new(config).unwrap();
    testbed.faults().storm(1, Some(Duration::from_secs(5)));
    let error = client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap_err();
    let limit = error.as_rate_limit().unwrap();
    assert_eq!(limit.attempts, 1);
    assert_eq!(limit.retry_after, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn a_long_retry_after_is_clamped_to_the_backoff_max() {
    let testbed = support::start().await;
    let mut config = support::config(&testbed);
    config.rate_limit_backoff_max = Duration::from_secs(5);
    let client = InventoryClient::new(config).unwrap();
    testbed.faults().storm(1, Some(Duration::from_secs(120)));
    let started = Instant::now();
    client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
    assert!(waited < Duration::from_secs(7), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_only_for_queries_and_only_when_asked() {
    let testbed = support::start().await;
    let filter = BuiltinTagFilter::default();

    // Off (the default): a 503 is returned as is.
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    testbed.faults().unavailable(1, None);
    assert!(matches!(
        client.tag_count(&filter).await,
        Err(Error::Http { status: 503, .. })
    ));

    // On: the query is retried...
    let mut config = support::config(&testbed);
    config.retry_on_failure = true;
    let client = InventoryClient::new(config).unwrap();
    testbed.faults().unavailable(2, None);
    assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
    assert_eq!(testbed.stats().responses(503), 3);

    // ...the mutation never: it may have been applied.
    testbed.faults().unavailable(1, None);
    assert!(matches!(
        client.tag_create(&tag("once")).await,
        Err(Error::Http { status: 503, .. })
    ));
    assert_eq!(testbed.stats().responses(503), 4);
    assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_after_retry_delay_within_max_retry_duration() {
    let testbed = support::start().await;
    let filter = BuiltinTagFilter::default();
    let mut config = support::config(&testbed);
    config.retry_on_failure = true;
    // The SDK's fixed delay: 2 s before every retry.
    config.retry_delay = Duration::from_secs(2);
    config.retry_max_delay = Duration::from_secs(2);
    let client = InventoryClient::new(config.clone()).unwrap();
    testbed.faults().unavailable(2, None);
    let started = Instant::now();
    assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    // Doubling up to the cap: 1 s, 2 s, 4 s, 4 s.
    config.retry_delay = Duration::from_secs(1);
    config.retry_max_delay = Duration::from_secs(4);
    let client = InventoryClient::new(config.clone()).unwrap();
    testbed.faults().unavailable(4, None);
    let started = Instant::now();
    assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(11), "{waited:?}");
    assert!(waited < Duration::from_secs(12), "{waited:?}");

    // A server failing for good: the call ends at max_retry_duration with the last failure.
    config.max_retry_duration = Duration::from_secs(6);
    let client = InventoryClient::new(config).unwrap();
    testbed.faults().unavailable(1_000, None);
    let started = Instant::now();
    let error = client.tag_count(&filter).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(
            &error,
            Error::Http { status: 503, .. } | Error::Transport(_)
        ),
        "{error:?}"
    );
    assert!(waited <= Duration::from_secs(6), "{waited:?}");
}
