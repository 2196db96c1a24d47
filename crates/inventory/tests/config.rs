//! Every `INFRAHUB_*` variable: its default, its parsing, and its error on a bad value (the
//! error names the variable and the value).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pacer_inventory::{Config, ConfigError};

fn env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_env_vars(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

fn bad(variable: &str, value: &str) {
    let error = env(&[(variable, value)]).unwrap_err();
    match &error {
        ConfigError::Env {
            variable: v,
            value: got,
            ..
        } => {
            assert_eq!(v, variable);
            assert_eq!(got, value);
        }
        other => panic!("{variable}={value:?}: expected an Env error, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains(variable) && text.contains(value), "{text}");
}

#[test]
fn defaults_are_the_sdks() {
    let config = env(&[]).unwrap();
    assert_eq!(config.address, "http://localhost:8000");
    assert!(config.api_token.is_none() && config.username.is_none() && config.password.is_none());
    assert_eq!(config.default_branch, "main");
    assert_eq!(config.timeout, Duration::from_secs(60));
    assert!(config.rate_limit_retry_enabled);
    assert_eq!(config.rate_limit_max_retries, 5);
    assert_eq!(config.rate_limit_backoff_base, Duration::from_millis(500));
    assert_eq!(config.rate_limit_backoff_max, Duration::from_secs(60));
    assert!(!config.retry_on_failure);
    assert_eq!(config.pagination_size, 50);
    assert_eq!(config.max_concurrent_execution, 5);
    // Pooled connections are dropped before uvicorn's 5 s keep-alive closes them.
    assert_eq!(
        config
            .pacer_config()
            .validate()
            .unwrap()
            .pool_idle_timeout(),
        Some(Duration::from_secs(4))
    );
    // Other prefixes are ignored.
    assert_eq!(
        env(&[("OTHER_TIMEOUT", "x")]).unwrap().timeout,
        Duration::from_secs(60)
    );
}

#[test]
fn address() {
    assert_eq!(
        env(&[("INFRAHUB_ADDRESS", "https://infrahub.example:8443/")])
            .unwrap()
            .address,
        "https://infrahub.example:8443"
    );
    bad("INFRAHUB_ADDRESS", "infrahub:8000");
    bad("INFRAHUB_ADDRESS", "ftp://infrahub");
    bad("INFRAHUB_ADDRESS", "http://");
}

#[test]
fn credentials() {
    let config = env(&[("INFRAHUB_API_TOKEN", "tok")]).unwrap();
    assert_eq!(config.api_token.unwrap().expose(), "tok");
    let config = env(&[("INFRAHUB_USERNAME", "admin"), ("INFRAHUB_PASSWORD", "pw")]).unwrap();
    assert_eq!(config.username.as_deref(), Some("admin"));
    assert_eq!(config.password.unwrap().expose(), "pw");
    // Empty means unset.
    assert!(
        env(&[("INFRAHUB_API_TOKEN", "")])
            .unwrap()
            .api_token
            .is_none()
    );
    // A user without a password (and no token) is refused.
    assert!(matches!(
        env(&[("INFRAHUB_USERNAME", "admin")]),
        Err(ConfigError::Invalid {
            setting: "username",
            ..
        })
    ));
}

#[test]
fn default_branch() {
    assert_eq!(
        env(&[("INFRAHUB_DEFAULT_BRANCH", "dev")])
            .unwrap()
            .default_branch,
        "dev"
    );
    bad("INFRAHUB_DEFAULT_BRANCH", " ");
}

#[test]
fn timeout() {
    assert_eq!(
        env(&[("INFRAHUB_TIMEOUT", "2.5")]).unwrap().timeout,
        Duration::from_millis(2500)
    );
    for value in ["soon", "0", "-1", "inf", "NaN", "1e30"] {
        bad("INFRAHUB_TIMEOUT", value);
    }
}

#[test]
fn booleans() {
    for (value, expected) in [
        ("true", true),
        ("FALSE", false),
        ("1", true),
        ("0", false),
        ("yes", true),
        ("off", false),
    ] {
        let config = env(&[
            ("INFRAHUB_RATE_LIMIT_RETRY_ENABLED", value),
            ("INFRAHUB_RETRY_ON_FAILURE", value),
        ])
        .unwrap();
        assert_eq!(config.rate_limit_retry_enabled, expected, "{value}");
        assert_eq!(config.retry_on_failure, expected, "{value}");
    }
    bad("INFRAHUB_RATE_LIMIT_RETRY_ENABLED", "maybe");
    bad("INFRAHUB_RETRY_ON_FAILURE", "2");
}

#[test]
fn retries_and_backoff() {
    let config = env(&[
        ("INFRAHUB_RATE_LIMIT_MAX_RETRIES", "0"),
        ("INFRAHUB_RATE_LIMIT_BACKOFF_BASE", "0.25"),
        ("INFRAHUB_RATE_LIMIT_BACKOFF_MAX", "10"),
    ])
    .unwrap();
    assert_eq!(config.rate_limit_max_retries, 0);
    assert_eq!(config.rate_limit_backoff_base, Duration::from_millis(250));
    assert_eq!(config.rate_limit_backoff_max, Duration::from_secs(10));
    for value in ["-1", "1.5", "many", "4294967296"] {
        bad("INFRAHUB_RATE_LIMIT_MAX_RETRIES", value);
    }
    for value in ["0", "-0.5", "x"] {
        bad("INFRAHUB_RATE_LIMIT_BACKOFF_BASE", value);
        bad("INFRAHUB_RATE_LIMIT_BACKOFF_MAX", value);
    }
    // The base may not exceed the max.
    // (pacer's own settings read the same variable and refuse it first.)
    let error = env(&[("INFRAHUB_RATE_LIMIT_BACKOFF_BASE", "90")]).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                setting: "rate_limit_backoff_base",
                ..
            } | ConfigError::Pacer(_)
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("backoff"), "{error}");
}

#[test]
fn pagination_and_concurrency() {
    let config = env(&[
        ("INFRAHUB_PAGINATION_SIZE", "200"),
        ("INFRAHUB_MAX_CONCURRENT_EXECUTION", "12"),
    ])
    .unwrap();
    assert_eq!(config.pagination_size, 200);
    assert_eq!(config.max_concurrent_execution, 12);
    for value in ["0", "-3", "ten", "2.5"] {
        bad("INFRAHUB_PAGINATION_SIZE", value);
        bad("INFRAHUB_MAX_CONCURRENT_EXECUTION", value);
    }
}

#[test]
fn pacer_limits_use_the_same_prefix() {
    let config = env(&[("INFRAHUB_GLOBAL_RATE_LIMIT_TPS", "7")]).unwrap();
    assert_eq!(config.pacer.rate_limit.global_rate, 7.0);
    let error = env(&[("INFRAHUB_GLOBAL_RATE_LIMIT_TPS", "fast")]).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("INFRAHUB_GLOBAL_RATE_LIMIT_TPS") && text.contains("fast"),
        "{text}"
    );
}
