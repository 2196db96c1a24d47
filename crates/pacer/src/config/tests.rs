#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::namespace::Namespace;
use crate::retry::{Backoff, Jitter, RetryPolicy};
use crate::retry_after::{PauseKey, RetryAfterMode};

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_are_the_design_table() {
    let config = Config::default();
    let rl = &config.rate_limit;
    assert_eq!((rl.global_rate, rl.global_burst), (50.0, 100));
    assert_eq!((rl.namespace_rate, rl.namespace_burst), (5.0, 10));
    assert_eq!(rl.max_wait_secs, 30.0);
    assert_eq!(config.metrics.prefix, "pacer");
    assert_eq!(config.retry.max_retries, 5);
    assert_eq!(
        config.validate().unwrap().backoff(),
        Backoff::new(Duration::from_millis(500), Duration::from_secs(60)).jitter(Jitter::Full)
    );
    assert_eq!(config.retry_after.max_secs, 60.0);
    assert_eq!(config.retry_after.mode, RetryAfterMode::Clamp);
    assert_eq!(config.retry_after.pause_scope, PauseScope::Upstream);
    assert_eq!(
        config.validate().unwrap().timeout(),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        config.validate().unwrap().deadline(),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        config.validate().unwrap().read_timeout(),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        config.validate().unwrap().pool_idle_timeout(),
        Some(Duration::from_secs(90))
    );
    assert!(config.validate().unwrap().retry_budget().is_some());
    config.validate().unwrap();
    // The policy built from the defaults is the retry module's own default policy, with the
    // default total deadline of 300 s, except the budget's floor, which follows the global
    // rate (50 retries per second).
    assert_eq!(
        format!("{:?}", config.retry_policy().unwrap()),
        format!(
            "{:?}",
            RetryPolicy::new()
                .deadline(Duration::from_secs(300))
                .budget(
                    crate::retry::RetryBudget::builder()
                        .min_retries_per_sec(50)
                        .build()
                )
        )
    );
    // An empty document is the defaults.
    assert_eq!(Config::from_toml_str("").unwrap(), config);
    assert_eq!(Config::from_json_str("{}").unwrap(), config);
}

#[test]
fn environment_overrides_with_a_prefix() {
    let config = Config::default()
        .merge_env_vars(
            "KEYCLOAK_API",
            env(&[
                ("KEYCLOAK_API_GLOBAL_RATE_LIMIT_TPS", "20"),
                ("KEYCLOAK_API_GLOBAL_RATE_LIMIT_BURST", "40"),
                ("KEYCLOAK_API_NAMESPACE_RATE_LIMIT_TPS", "0.5"),
                ("KEYCLOAK_API_RATE_LIMIT_MAX_WAIT", "2.5"),
                ("KEYCLOAK_API_TIMEOUT", "off"),
                ("OTHER_GLOBAL_RATE_LIMIT_TPS", "nonsense"),
            ]),
        )
        .unwrap();
    assert_eq!(config.rate_limit.global_rate, 20.0);
    assert_eq!(config.rate_limit.global_burst, 40);
    assert_eq!(config.rate_limit.namespace_rate, 0.5);
    assert_eq!(config.rate_limit.max_wait_secs, 2.5);
    assert_eq!(config.validate().unwrap().timeout(), None);
}

#[test]
fn metrics_label_settings_from_the_environment() {
    let config = Config::default()
        .merge_env_vars(
            "P",
            env(&[
                ("P_METRICS_MAX_NAMESPACE_LABELS", "20"),
                ("P_METRICS_NAMESPACE_LABEL_IDLE_SECS", "90"),
            ]),
        )
        .unwrap();
    assert_eq!(config.metrics.max_namespace_labels, 20);
    assert_eq!(config.metrics.namespace_label_idle_secs, 90);
    let from_toml =
        Config::from_toml_str("[metrics]\nnamespace_label_idle_secs = 0\n").unwrap_err();
    assert!(
        from_toml
            .to_string()
            .contains("metrics.namespace_label_idle_secs"),
        "{from_toml}"
    );
}

#[test]
fn bad_environment_values_name_the_variable_and_value() {
    for (variable, value) in [
        ("P_GLOBAL_RATE_LIMIT_TPS", "fast"),
        ("P_GLOBAL_RATE_LIMIT_TPS", "0"),
        ("P_GLOBAL_RATE_LIMIT_TPS", "-3"),
        ("P_GLOBAL_RATE_LIMIT_TPS", "NaN"),
        ("P_GLOBAL_RATE_LIMIT_BURST", "0"),
        ("P_GLOBAL_RATE_LIMIT_BURST", "1.5"),
        ("P_RATE_LIMIT_MAX_WAIT", "-1"),
        ("P_RATE_LIMIT_MAX_WAIT", "inf"),
        ("P_RATE_LIMIT_INITIAL_FILL", "2"),
        ("P_RATE_LIMIT_MAX_NAMESPACES", "0"),
        ("P_METRICS_PREFIX", "9lives"),
        ("P_METRICS_NAMESPACE_LABEL_IDLE_SECS", "0"),
        ("P_METRICS_NAMESPACE_LABEL_IDLE_SECS", "-5"),
        ("P_METRICS_NAMESPACE_LABEL_IDLE_SECS", "1.5"),
        ("P_RATE_LIMIT_MAX_RETRIES", "many"),
        ("P_RATE_LIMIT_MAX_RETRIES", "-1"),
        ("P_RATE_LIMIT_BACKOFF_BASE", "soon"),
        ("P_RATE_LIMIT_BACKOFF_BASE", "120"), // above the default max of 60
        ("P_RATE_LIMIT_BACKOFF_MAX", "0.1"),  // below the default base of 0.5
        ("P_RATE_LIMIT_BACKOFF_MAX", "1e9"),
        ("P_RATE_LIMIT_BACKOFF_JITTER", "lots"),
        ("P_RATE_LIMIT_RETRY_BUDGET", "maybe"),
        ("P_RATE_LIMIT_RETRY_BUDGET_RATIO", "-0.5"),
        ("P_RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC", "1.5"),
        ("P_RATE_LIMIT_RETRY_AFTER_MAX", "-60"),
        ("P_RATE_LIMIT_RETRY_AFTER_MODE", "ignore"),
        ("P_RATE_LIMIT_PAUSE_SCOPE", "galaxy"),
        ("P_RATE_LIMIT_PAUSE_RELEASE_WINDOW", "NaN"),
        ("P_TIMEOUT", "forever"),
        ("P_DEADLINE", "-5"),
        ("P_POOL_IDLE_TIMEOUT", "-1"),
        ("P_POOL_IDLE_TIMEOUT", "a while"),
        ("P_TLS_EXTRA_CA_FILE", ""),
    ] {
        let error = Config::default()
            .merge_env_vars("P", env(&[(variable, value)]))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(variable) && message.contains(value),
            "{message}"
        );
    }
}

#[test]
fn retry_settings_from_the_environment() {
    let config = Config::default()
        .merge_env_vars(
            "INFRAHUB",
            env(&[
                ("INFRAHUB_RATE_LIMIT_MAX_RETRIES", "2"),
                ("INFRAHUB_RATE_LIMIT_BACKOFF_BASE", "0.1"),
                ("INFRAHUB_RATE_LIMIT_BACKOFF_MAX", "4"),
                ("INFRAHUB_RATE_LIMIT_BACKOFF_JITTER", "Decorrelated"),
                ("INFRAHUB_RATE_LIMIT_RETRY_BUDGET", "off"),
                ("INFRAHUB_RATE_LIMIT_RETRY_AFTER_MAX", "10"),
                ("INFRAHUB_RATE_LIMIT_RETRY_AFTER_MODE", "fail"),
                ("INFRAHUB_RATE_LIMIT_PAUSE_SCOPE", "namespace"),
                ("INFRAHUB_DEADLINE", "90"),
                ("INFRAHUB_POOL_IDLE_TIMEOUT", "4"),
                ("INFRAHUB_TLS_EXTRA_CA_FILE", "/etc/ssl/private-ca.pem"),
            ]),
        )
        .unwrap();
    assert_eq!(config.retry.max_retries, 2);
    assert_eq!(
        config.validate().unwrap().backoff(),
        Backoff::new(Duration::from_millis(100), Duration::from_secs(4))
            .jitter(Jitter::Decorrelated)
    );
    assert!(config.validate().unwrap().retry_budget().is_none());
    assert_eq!(config.retry_after.mode, RetryAfterMode::FailFast);
    assert_eq!(config.retry_after.pause_scope, PauseScope::Namespace);
    assert_eq!(
        config.validate().unwrap().deadline(),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        config.validate().unwrap().pool_idle_timeout(),
        Some(Duration::from_secs(4))
    );
    assert_eq!(
        config.tls.extra_ca_file.as_deref(),
        Some(Path::new("/etc/ssl/private-ca.pem"))
    );
    let policy = format!("{:?}", config.retry_policy().unwrap());
    assert!(policy.contains("max_retries: 2"), "{policy}");
    assert!(policy.contains("budget: None"), "{policy}");
    assert!(policy.contains("deadline: Some(90s)"), "{policy}");
    assert!(policy.contains("FailFast"), "{policy}");
    // Base and max set together in either order are checked together.
    let config = Config::default()
        .merge_env_vars(
            "P",
            env(&[
                ("P_RATE_LIMIT_BACKOFF_MAX", "100"),
                ("P_RATE_LIMIT_BACKOFF_BASE", "80"),
            ]),
        )
        .unwrap();
    assert_eq!(
        config.validate().unwrap().backoff().base(),
        Duration::from_secs(80)
    );
}

#[tokio::test(start_paused = true)]
async fn namespace_pause_scope_keys_pauses_by_tenant() {
    use tower::{Layer, ServiceExt, service_fn};

    let upstream = service_fn(|req: http::Request<()>| async move {
        let busy = req.uri().path() == "/busy";
        let res = http::Response::builder()
            .status(if busy { 429 } else { 200 })
            .header("retry-after", "5")
            .body(())
            .unwrap();
        Ok::<_, std::convert::Infallible>(res)
    });
    let request = |path: &str, namespace: &str| {
        let mut req = http::Request::get(format!("http://api.test{path}"))
            .body(())
            .unwrap();
        req.extensions_mut().insert(Namespace::new(namespace));
        req
    };
    for (scope, other_tenant_waits) in [("upstream", true), ("namespace", false)] {
        let config =
            Config::from_toml_str(&format!("[retry_after]\npause_scope = \"{scope}\"\n")).unwrap();
        let svc = config.retry_after_layer().unwrap().layer(upstream);
        let res = svc.clone().oneshot(request("/busy", "a")).await.unwrap();
        assert_eq!(res.status(), 429);
        // The refused tenant is paused in both scopes.
        let refused_key = match scope {
            "upstream" => PauseKey::authority("api.test"),
            _ => PauseKey::new("api.test", Some("a")),
        };
        assert!(svc.gate().is_paused(refused_key), "{scope}");
        let start = tokio::time::Instant::now();
        svc.clone().oneshot(request("/ok", "b")).await.unwrap();
        assert_eq!(
            start.elapsed() >= Duration::from_secs(5),
            other_tenant_waits,
            "{scope}"
        );
    }
}

#[test]
fn every_section_round_trips_through_toml_and_json() {
    let mut config = Config::default();
    config.retry.jitter = Jitter::Equal;
    config.retry_after.mode = RetryAfterMode::FailFast;
    config.retry_after.pause_scope = PauseScope::Namespace;
    config.deadline_secs = Some(12.5);
    config.tls.extra_ca_file = Some(PathBuf::from("ca.pem"));
    let toml_text = r#"
        deadline_secs = 12.5
        [retry]
        jitter = "equal"
        [retry_after]
        mode = "fail"
        pause_scope = "namespace"
        [tls]
        extra_ca_file = "ca.pem"
    "#;
    assert_eq!(Config::from_toml_str(toml_text).unwrap(), config);
    let json_text = serde_json::to_string(&config).unwrap();
    assert_eq!(Config::from_json_str(&json_text).unwrap(), config);
    let error = Config::from_toml_str("[retry]\njitter = \"wild\"\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("wild"), "{error}");
    // Parsing validates: a clash between two settings is refused there, naming both.
    let error = Config::from_toml_str("[retry]\nbackoff_base_secs = 9\nbackoff_max_secs = 3\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("backoff_base_secs") && error.contains("9/3"),
        "{error}"
    );
}

#[test]
fn files_parse_and_unknown_settings_are_errors() {
    let dir = std::env::temp_dir().join(format!("pacer-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("pacer.toml");
    std::fs::write(
        &toml_path,
        "timeout_secs = 5\n[rate_limit.overrides.platform]\nrate = 10\nburst = 20\n",
    )
    .unwrap();
    let config = Config::from_file(&toml_path).unwrap();
    assert_eq!(
        config.validate().unwrap().timeout(),
        Some(Duration::from_secs(5))
    );
    let limiter = config.rate_limiter().unwrap();
    assert_eq!(
        limiter.namespace_quota(&Namespace::new("platform")).burst(),
        20
    );

    let json_path = dir.join("pacer.json");
    std::fs::write(&json_path, r#"{"rate_limit": {"global_rat": 3}}"#).unwrap();
    let error = Config::from_file(&json_path).unwrap_err().to_string();
    assert!(
        error.contains("pacer.json") && error.contains("global_rat"),
        "{error}"
    );

    let error = Config::from_toml_str("[rate_limit]\nnamespace_rate = 0\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("namespace_rate"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
