//! Shared set-up: a testbed and a client for it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use pacer::retry::{Backoff, RetryPolicy};
use pacer_admin::{AdminClient, Credentials};
use pacer_testbed::Testbed;

/// Retries that wait little (tests assert counts, never durations) but as many as the default.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(5)
        .backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(50),
        ))
        .without_budget()
}

pub fn service_account(testbed: &Testbed) -> Credentials {
    let creds = testbed.credentials();
    Credentials::client_credentials(
        creds.keycloak_realm.clone(),
        creds.keycloak_client_id.clone(),
        creds.keycloak_client_secret.clone(),
    )
}

pub fn client(testbed: &Testbed) -> AdminClient {
    AdminClient::builder(testbed.keycloak_url(), service_account(testbed))
        .retry_policy(quick_retries())
        .config(roomy_config())
        .build()
        .unwrap()
}

/// Limits high enough that only the tests about limits ever wait.
pub fn roomy_config() -> pacer::config::Config {
    let mut config = pacer::config::Config::default();
    config.rate_limit.global_rate = 10_000.0;
    config.rate_limit.global_burst = 10_000;
    config.rate_limit.namespace_rate = 10_000.0;
    config.rate_limit.namespace_burst = 10_000;
    config
}

/// Small bounds for the hostile suites: 1 s per attempt, 4 s per call, 2 retries quickly,
/// `Retry-After` capped at 1 s.
pub fn tight_config() -> pacer::config::Config {
    let mut config = roomy_config();
    config.timeout_secs = Some(1.0);
    config.deadline_secs = Some(4.0);
    config.retry.max_retries = 2;
    config.retry.backoff_base_secs = 0.01;
    config.retry.backoff_max_secs = 0.05;
    config.retry.budget = false;
    config.retry_after.max_secs = 1.0;
    config
}

/// Password credentials (the hostile server grants any).
pub fn any_credentials() -> Credentials {
    Credentials::password("master", "admin", "admin-password")
}
