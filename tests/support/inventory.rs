//! Shared by the `inventory_*` tests: a testbed serving the generated kinds, and client
//! configurations pointing at it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use pacer_inventory::{Config, SecretString};
use pacer_testbed::{Testbed, TestbedBuilder, generated_inventory_kinds};

pub fn builder() -> TestbedBuilder {
    Testbed::builder().kinds(generated_inventory_kinds())
}

pub async fn start() -> Testbed {
    builder().start().await.unwrap()
}

/// A client configuration for `testbed` with its API key, fast backoff and client-side limits
/// high enough not to slow the tests down.
pub fn config(testbed: &Testbed) -> Config {
    let mut config = Config::default();
    config.address = testbed.infrahub_url().to_owned();
    config.api_token = Some(SecretString::from(
        testbed.credentials().infrahub_api_key.clone(),
    ));
    config.rate_limit_backoff_base = Duration::from_millis(10);
    unthrottled(&mut config);
    config
}

/// Client-side limits high enough not to slow a test down.
pub fn unthrottled(config: &mut Config) {
    let limits = &mut config.pacer.rate_limit;
    limits.global_rate = 10_000.0;
    limits.global_burst = 10_000;
    limits.namespace_rate = 10_000.0;
    limits.namespace_burst = 10_000;
}

/// As [`config`], logging in with the testbed's user instead of the API key.
pub fn login_config(testbed: &Testbed) -> Config {
    let mut config = config(testbed);
    config.api_token = None;
    config.username = Some(testbed.credentials().infrahub_user.clone());
    config.password = Some(SecretString::from(
        testbed.credentials().infrahub_password.clone(),
    ));
    config
}
