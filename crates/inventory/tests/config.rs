//! Every `INFRAHUB_*` variable: its default, its parsing, and its error on a bad value (the
//! error names the variable and the value).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pacer::auth::ExposeSecret;
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
    assert_eq!(config.retry_delay, Duration::from_secs(5));
    assert_eq!(config.retry_max_delay, Duration::from_secs(5));
    assert_eq!(config.max_retry_duration, Duration::from_secs(300));
    assert!(config.proxy.is_none());
    assert!(!config.tls_insecure);
    assert!(config.tls_ca_file.is_none());
    // The SDK's bound on retrying is the default total deadline of every call.
    assert_eq!(config.pacer_config().deadline_secs, Some(300.0));
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
    assert_eq!(config.api_token.unwrap().expose_secret(), "tok");
    let config = env(&[("INFRAHUB_USERNAME", "admin"), ("INFRAHUB_PASSWORD", "pw")]).unwrap();
    assert_eq!(config.username.as_deref(), Some("admin"));
    assert_eq!(config.password.unwrap().expose_secret(), "pw");
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

#[test]
fn address_with_user_info_is_refused_without_echoing_the_password() {
    let error = env(&[(
        "INFRAHUB_ADDRESS",
        "https://admin:hunter2-s3cret@infrahub.example",
    )])
    .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(matches!(&error, ConfigError::Env { variable, .. } if variable == "INFRAHUB_ADDRESS"));
    assert!(text.contains("user-info"), "{text}");
    assert!(!text.contains("hunter2-s3cret"), "{text}");
    // Set directly, the address is refused by `validate` (and so by every constructor).
    let mut config = Config::default();
    config.address = "http://u:hunter2-s3cret@localhost:8000".into();
    let error = config.validate().unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                setting: "address",
                ..
            }
        ),
        "{text}"
    );
    assert!(!text.contains("hunter2-s3cret"), "{text}");
    let error = pacer_inventory::InventoryClient::new(config).unwrap_err();
    assert!(!format!("{error} {error:?}").contains("hunter2-s3cret"));
}

#[test]
fn retry_delay() {
    // The SDK waits `retry_delay` every time: the cap follows the delay unless named.
    let config = env(&[("INFRAHUB_RETRY_DELAY", "2")]).unwrap();
    assert_eq!(config.retry_delay, Duration::from_secs(2));
    assert_eq!(config.retry_max_delay, Duration::from_secs(2));
    for value in ["0", "-1", "soon", "NaN", "inf", "1e30"] {
        bad("INFRAHUB_RETRY_DELAY", value);
    }
}

#[test]
fn retry_max_delay() {
    let config = env(&[
        ("INFRAHUB_RETRY_DELAY", "1"),
        ("INFRAHUB_RETRY_MAX_DELAY", "30"),
    ])
    .unwrap();
    assert_eq!(config.retry_delay, Duration::from_secs(1));
    assert_eq!(config.retry_max_delay, Duration::from_secs(30));
    for value in ["0", "-1", "later", "NaN", "1e30"] {
        bad("INFRAHUB_RETRY_MAX_DELAY", value);
    }
    // A cap below the delay is refused, naming the setting.
    let error = env(&[
        ("INFRAHUB_RETRY_DELAY", "10"),
        ("INFRAHUB_RETRY_MAX_DELAY", "1"),
    ])
    .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                setting: "retry_delay",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn max_retry_duration() {
    let config = env(&[("INFRAHUB_MAX_RETRY_DURATION", "30")]).unwrap();
    assert_eq!(config.max_retry_duration, Duration::from_secs(30));
    assert_eq!(config.pacer_config().deadline_secs, Some(30.0));
    // A shorter pacer deadline wins.
    let config = env(&[
        ("INFRAHUB_MAX_RETRY_DURATION", "30"),
        ("INFRAHUB_DEADLINE", "10"),
    ])
    .unwrap();
    assert_eq!(config.pacer_config().deadline_secs, Some(10.0));
    for value in ["0", "-5", "forever", "inf", "1e30"] {
        bad("INFRAHUB_MAX_RETRY_DURATION", value);
    }
}

#[test]
fn proxy() {
    let config = env(&[("INFRAHUB_PROXY", "http://user:pr0xy-s3cret@proxy.corp:3128")]).unwrap();
    let proxy = config.proxy.as_ref().unwrap();
    assert_eq!(
        proxy.expose_secret(),
        "http://user:pr0xy-s3cret@proxy.corp:3128"
    );
    assert!(!format!("{config:?}").contains("pr0xy-s3cret"));
    // It is the proxy of pacer's client, shown redacted there too.
    let pacer = config.pacer_config();
    let pacer_proxy = pacer.proxy.as_ref().unwrap();
    assert_eq!(pacer_proxy.redacted(), "http://***@proxy.corp:3128/");
    assert!(!format!("{pacer:?}").contains("pr0xy-s3cret"));
    assert!(env(&[("INFRAHUB_PROXY", "")]).unwrap().proxy.is_none());
    // The SDK takes SOCKS proxies through httpx extras; pacer's client does not, and says so.
    let error = env(&[("INFRAHUB_PROXY", "socks5://proxy.corp:1080")]).unwrap_err();
    assert!(error.to_string().contains("INFRAHUB_PROXY"), "{error}");
    // A bad proxy names the variable but never quotes the value (it may hold credentials).
    for value in [
        "not a url pw-xyz",
        "ftp://u:pw-xyz@proxy:21",
        "http://u:pw-xyz@",
    ] {
        let error = env(&[("INFRAHUB_PROXY", value)]).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(
            matches!(&error, ConfigError::Env { variable, .. } if variable == "INFRAHUB_PROXY"),
            "{text}"
        );
        assert!(!text.contains("pw-xyz"), "{text}");
    }
}

#[test]
fn tls_insecure() {
    assert!(
        env(&[("INFRAHUB_TLS_INSECURE", "true")])
            .unwrap()
            .tls_insecure
    );
    assert!(!env(&[("INFRAHUB_TLS_INSECURE", "0")]).unwrap().tls_insecure);
    let insecure = env(&[("INFRAHUB_TLS_INSECURE", "yes")]).unwrap();
    assert!(insecure.pacer_config().tls.insecure);
    assert!(!Config::default().pacer_config().tls.insecure);
    bad("INFRAHUB_TLS_INSECURE", "sometimes");
}

#[test]
fn tls_ca_file() {
    let config = env(&[("INFRAHUB_TLS_CA_FILE", "/etc/ssl/corp-ca.pem")]).unwrap();
    assert_eq!(
        config.tls_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ssl/corp-ca.pem"))
    );
    // It is pacer's extra CA file.
    assert_eq!(
        config.pacer_config().tls.extra_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ssl/corp-ca.pem"))
    );
    assert!(
        env(&[("INFRAHUB_TLS_CA_FILE", " ")])
            .unwrap()
            .tls_ca_file
            .is_none()
    );
    assert!(
        env(&[("INFRAHUB_TLS_CA_FILE", "none")])
            .unwrap()
            .tls_ca_file
            .is_none()
    );
}
