//! Every numeric setting set to hostile values (-1, NaN, +inf, 0, 1e300) directly, through
//! TOML, JSON and the environment: every constructor, getter and factory answers a
//! `ConfigError` naming the setting or the variable, or works; none panics.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::events::observer::Events;
use crate::rate_limit::Quota;

/// A numeric setting: where it lives, its variable, and whether zero means something.
struct Field {
    /// The name in files and errors.
    name: &'static str,
    /// The variable after the prefix.
    variable: &'static str,
    /// The TOML table it sits in (`""` for the top level).
    table: &'static str,
    /// The key in that table.
    key: &'static str,
    set: fn(&mut Config, f64),
    zero_ok: bool,
}

const FIELDS: &[Field] = &[
    Field {
        name: "rate_limit.global_rate",
        variable: "GLOBAL_RATE_LIMIT_TPS",
        table: "rate_limit",
        key: "global_rate",
        set: |c, v| c.rate_limit.global_rate = v,
        zero_ok: false,
    },
    Field {
        name: "rate_limit.namespace_rate",
        variable: "NAMESPACE_RATE_LIMIT_TPS",
        table: "rate_limit",
        key: "namespace_rate",
        set: |c, v| c.rate_limit.namespace_rate = v,
        zero_ok: false,
    },
    Field {
        name: "rate_limit.max_wait_secs",
        variable: "RATE_LIMIT_MAX_WAIT",
        table: "rate_limit",
        key: "max_wait_secs",
        set: |c, v| c.rate_limit.max_wait_secs = v,
        zero_ok: true,
    },
    Field {
        name: "rate_limit.initial_fill",
        variable: "RATE_LIMIT_INITIAL_FILL",
        table: "rate_limit",
        key: "initial_fill",
        set: |c, v| c.rate_limit.initial_fill = v,
        zero_ok: true,
    },
    Field {
        name: "retry.backoff_base_secs",
        variable: "RATE_LIMIT_BACKOFF_BASE",
        table: "retry",
        key: "backoff_base_secs",
        set: |c, v| c.retry.backoff_base_secs = v,
        zero_ok: true,
    },
    Field {
        name: "retry.backoff_max_secs",
        variable: "RATE_LIMIT_BACKOFF_MAX",
        table: "retry",
        key: "backoff_max_secs",
        // The base must not exceed the max: a zero max needs a zero base.
        set: |c, v| {
            c.retry.backoff_max_secs = v;
            c.retry.backoff_base_secs = 0.0;
        },
        zero_ok: true,
    },
    Field {
        name: "retry.budget_ratio",
        variable: "RATE_LIMIT_RETRY_BUDGET_RATIO",
        table: "retry",
        key: "budget_ratio",
        set: |c, v| c.retry.budget_ratio = v,
        zero_ok: true,
    },
    Field {
        name: "retry_after.max_secs",
        variable: "RATE_LIMIT_RETRY_AFTER_MAX",
        table: "retry_after",
        key: "max_secs",
        set: |c, v| c.retry_after.max_secs = v,
        zero_ok: true,
    },
    Field {
        name: "retry_after.release_window_secs",
        variable: "RATE_LIMIT_PAUSE_RELEASE_WINDOW",
        table: "retry_after",
        key: "release_window_secs",
        set: |c, v| c.retry_after.release_window_secs = v,
        zero_ok: true,
    },
    Field {
        name: "timeout_secs",
        variable: "TIMEOUT",
        table: "",
        key: "timeout_secs",
        set: |c, v| c.timeout_secs = Some(v),
        zero_ok: false,
    },
    // -- read timeout --
    Field {
        name: "read_timeout_secs",
        variable: "READ_TIMEOUT_SECS",
        table: "",
        key: "read_timeout_secs",
        set: |c, v| c.read_timeout_secs = Some(v),
        zero_ok: false,
    },
    Field {
        name: "deadline_secs",
        variable: "DEADLINE",
        table: "",
        key: "deadline_secs",
        set: |c, v| c.deadline_secs = Some(v),
        zero_ok: false,
    },
    Field {
        name: "pool_idle_timeout_secs",
        variable: "POOL_IDLE_TIMEOUT",
        table: "",
        key: "pool_idle_timeout_secs",
        set: |c, v| c.pool_idle_timeout_secs = Some(v),
        zero_ok: true,
    },
];

const HOSTILE: [f64; 5] = [-1.0, f64::NAN, f64::INFINITY, 0.0, 1e300];

fn toml_number(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        "inf".to_owned()
    } else {
        format!("{value:?}")
    }
}

fn toml_of(field: &Field, value: f64) -> String {
    let line = format!("{} = {}", field.key, toml_number(value));
    // backoff_max_secs's setter also lowers the base, so that zero is a fair test.
    let base = if field.key == "backoff_max_secs" {
        "\nbackoff_base_secs = 0.0"
    } else {
        ""
    };
    if field.table.is_empty() {
        format!("{line}\n")
    } else {
        format!("[{}]\n{line}{base}\n", field.table)
    }
}

fn json_of(field: &Field, value: f64) -> String {
    let base = if field.key == "backoff_max_secs" {
        ", \"backoff_base_secs\": 0.0"
    } else {
        ""
    };
    if field.table.is_empty() {
        format!("{{\"{}\": {value:?}}}", field.key)
    } else {
        format!(
            "{{\"{}\": {{\"{}\": {value:?}{base}}}}}",
            field.table, field.key
        )
    }
}

/// Whether `value` is a good value of `field`.
fn allowed(field: &Field, value: f64) -> bool {
    if !value.is_finite() || value < 0.0 {
        return false;
    }
    if value == 0.0 {
        return field.zero_ok;
    }
    match field.key {
        "global_rate" | "namespace_rate" => value <= 1e9 && Quota::per_second(value).is_ok(),
        "initial_fill" => value <= 1.0,
        "budget_ratio" => value <= 1000.0,
        "backoff_base_secs" => value <= 60.0, // the default max
        _ => value <= 86_400.0,
    }
}

fn assert_names(error: &ConfigError, what: &str, context: &str) {
    let text = error.to_string();
    assert!(
        text.contains(what),
        "{context}: {text:?} does not name {what}"
    );
}

/// Every way to use `config`: each either works or answers an error naming `field`.
fn use_everything(config: &Config, field: &str, good: bool, context: &str) {
    let outcomes: Vec<(&str, Result<(), ConfigError>)> = vec![
        ("validate", config.validate().map(drop)),
        ("rate_limiter", config.rate_limiter().map(drop)),
        (
            "rate_limiter_builder",
            config.rate_limiter_builder().map(drop),
        ),
        ("retry_policy", config.retry_policy().map(drop)),
        ("retry_after_layer", config.retry_after_layer().map(drop)),
        (
            "merge_env_vars",
            config.clone().merge_env_vars("P", Vec::new()).map(drop),
        ),
        #[cfg(feature = "client")]
        (
            "Layers::from_config",
            crate::client::Layers::from_config(
                config,
                config
                    .metrics_builder()
                    .register(&mut prometheus_client::registry::Registry::default()),
            )
            .map(drop),
        ),
    ];
    for (what, outcome) in outcomes {
        match outcome {
            Ok(()) => assert!(good, "{context}: {what} accepted it"),
            Err(error) => {
                assert!(!good, "{context}: {what} refused it: {error}");
                assert_names(&error, field, &format!("{context}: {what}"));
            }
        }
    }
    #[cfg(feature = "client")]
    for (what, outcome) in [
        (
            "Client::from_config",
            crate::client::Client::from_config(config).map(drop),
        ),
        (
            "Client::builder().build()",
            crate::client::Client::builder(config).build().map(drop),
        ),
    ] {
        match outcome {
            Ok(()) => assert!(good, "{context}: {what} accepted it"),
            Err(crate::client::ClientError::Config(error)) => {
                assert!(!good, "{context}: {what} refused it: {error}");
                assert_names(&error, field, &format!("{context}: {what}"));
            }
            Err(other) => panic!("{context}: {what}: {other}"),
        }
    }
    #[cfg(feature = "metrics")]
    drop(config.metrics_builder());
    if let Ok(valid) = config.validate() {
        // Every getter and factory of the validated value, which cannot fail.
        let _ = (valid.timeout(), valid.deadline(), valid.pool_idle_timeout());
        let _ = valid.read_timeout();
        let _ = (valid.max_wait(), valid.backoff(), valid.retry_budget());
        let _ = (
            valid.retry_policy(),
            valid.pause_gate(),
            valid.retry_after_layer(),
        );
        let _ = valid.rate_limiter(Events::none());
        valid.rate_limiter_builder().build().unwrap();
        assert_eq!(valid.config(), config);
    }
}

#[test]
fn hostile_numbers_set_directly_are_named_errors_from_every_constructor() {
    // Layers and the client need no runtime to be built, but the limiter's clock is tokio's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    for field in FIELDS {
        for value in HOSTILE {
            let mut config = Config::default();
            (field.set)(&mut config, value);
            let context = format!("{} = {value}", field.name);
            use_everything(&config, field.name, allowed(field, value), &context);
        }
    }
}

#[test]
fn hostile_numbers_in_toml_are_named_errors() {
    for field in FIELDS {
        for value in HOSTILE {
            let text = toml_of(field, value);
            match Config::from_toml_str(&text) {
                Ok(config) => {
                    assert!(allowed(field, value), "{text:?} was accepted");
                    config.validate().unwrap();
                }
                Err(error) => {
                    assert!(!allowed(field, value), "{text:?}: {error}");
                    assert_names(&error, field.name, &text);
                }
            }
        }
    }
}

#[test]
fn hostile_numbers_in_json_are_named_errors() {
    // JSON has no NaN or infinity: only the numbers it can write.
    for field in FIELDS {
        for value in [-1.0, 0.0, 1e300] {
            let text = json_of(field, value);
            match Config::from_json_str(&text) {
                Ok(_) => assert!(allowed(field, value), "{text} was accepted"),
                Err(error) => {
                    assert!(!allowed(field, value), "{text}: {error}");
                    assert_names(&error, field.name, &text);
                }
            }
        }
        // What JSON cannot write is a parse error, never a default.
        let text = json_of(field, 1.0).replace("1.0", "NaN");
        assert!(matches!(
            Config::from_json_str(&text),
            Err(ConfigError::Parse { .. })
        ));
    }
}

#[test]
fn hostile_numbers_in_files_are_named_errors() {
    let dir = std::env::temp_dir().join(format!("pacer-config-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hostile.toml");
    std::fs::write(&path, "timeout_secs = nan\n").unwrap();
    let error = Config::from_file(&path).unwrap_err();
    assert_names(&error, "timeout_secs", "from_file");
    let path = dir.join("hostile.json");
    std::fs::write(&path, r#"{"retry": {"backoff_max_secs": 1e300}}"#).unwrap();
    let error = Config::from_file(&path).unwrap_err();
    assert_names(&error, "retry.backoff_max_secs", "from_file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_numbers_in_the_environment_name_the_variable() {
    for field in FIELDS {
        for value in ["-1", "NaN", "inf", "+inf", "0", "1e300"] {
            let variable = format!("P_{}", field.variable);
            let mut config = Config::default();
            if field.key == "backoff_max_secs" {
                config.retry.backoff_base_secs = 0.0;
            }
            let number: f64 = value.parse().unwrap();
            match config.merge_env_vars("P", [(variable.clone(), value.to_owned())]) {
                Ok(config) => {
                    assert!(allowed(field, number), "{variable}={value} was accepted");
                    config.validate().unwrap();
                }
                Err(error) => {
                    assert!(!allowed(field, number), "{variable}={value}: {error}");
                    assert_names(&error, &variable, &format!("{variable}={value}"));
                }
            }
        }
    }
}

#[test]
fn zero_counts_are_named_errors_where_zero_means_nothing() {
    type Set = fn(&mut Config);
    let cases: [(&str, Set); 6] = [
        ("rate_limit.global_rate/global_burst", |c| {
            c.rate_limit.global_burst = 0
        }),
        ("rate_limit.namespace_rate/namespace_burst", |c| {
            c.rate_limit.namespace_burst = 0
        }),
        ("rate_limit.max_namespaces", |c| {
            c.rate_limit.max_namespaces = 0
        }),
        ("metrics.max_namespace_labels", |c| {
            c.metrics.max_namespace_labels = 0
        }),
        ("metrics.namespace_label_idle_secs", |c| {
            c.metrics.namespace_label_idle_secs = 0
        }),
        ("rate_limit.overrides.team-a", |c| {
            c.rate_limit.overrides.insert(
                "team-a".to_owned(),
                QuotaConfig {
                    rate: f64::NAN,
                    burst: 1,
                },
            );
        }),
    ];
    for (field, set) in cases {
        let mut config = Config::default();
        set(&mut config);
        assert_names(&config.validate().unwrap_err(), field, field);
        assert_names(&config.rate_limiter().unwrap_err(), field, field);
    }
    // Zero retries, a zero budget floor and a zero wait are meaningful.
    let mut config = Config::default();
    config.retry.max_retries = 0;
    config.retry.budget_min_per_sec = Some(0);
    config.rate_limit.max_wait_secs = 0.0;
    let valid = config.validate().unwrap();
    assert_eq!(valid.max_wait(), std::time::Duration::ZERO);
}

#[test]
fn the_validated_value_holds_what_the_settings_say() {
    let mut config = Config {
        timeout_secs: Some(2.5),
        deadline_secs: Some(30.0),
        pool_idle_timeout_secs: None,
        ..Config::default()
    };
    config.retry_after.release_window_secs = 0.0;
    let valid = config.validate().unwrap();
    let secs = std::time::Duration::from_secs_f64;
    assert_eq!(valid.timeout(), Some(secs(2.5)));
    assert_eq!(valid.deadline(), Some(secs(30.0)));
    assert_eq!(valid.pool_idle_timeout(), None);
    assert_eq!(
        valid.pause_gate().release_window(),
        std::time::Duration::ZERO
    );
    assert_eq!(valid.max_wait(), secs(30.0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let limiter = valid.rate_limiter(Events::none());
    assert_eq!(
        limiter.global_quota(),
        Quota::per_second(50).unwrap().with_burst(100).unwrap()
    );
    assert_eq!(limiter.max_wait(), secs(30.0));
}

proptest! {
    #[test]
    fn any_number_in_any_numeric_setting_is_a_named_error_or_works(
        index in 0..FIELDS.len(),
        value in proptest::num::f64::ANY,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let field = &FIELDS[index];
        let mut config = Config::default();
        (field.set)(&mut config, value);
        use_everything(&config, field.name, allowed(field, value), &format!("{} = {value}", field.name));
    }
}
