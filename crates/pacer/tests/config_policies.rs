//! Policies chosen in a `Config` reach the layers built from it: proactive pacing
//! (`retry_after.proactive`) and the retry budget's floor following the global rate.
#![cfg(feature = "client")]
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use pacer::client::Layers;
use pacer::config::{Config, Proactive};
use pacer::metrics::Metrics;
use pacer::retry::RetryBudget;
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

fn layers(config: &Config) -> Layers {
    let mut registry = prometheus_client::registry::Registry::default();
    Layers::from_config(config, Metrics::new(&mut registry)).unwrap()
}

/// Sends `/first` then `/second` through the `Retry-After` layer of `config`, over a server
/// whose every answer is `200` with `header`; answers when `/second` reached the server.
async fn second_request_delay(config: &Config, header: (&'static str, &'static str)) -> Duration {
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = seen.clone();
    let upstream = service_fn(move |req: Request<()>| {
        log.lock()
            .unwrap()
            .push((req.uri().path().to_owned(), Instant::now()));
        let res = Response::builder()
            .header(header.0, header.1)
            .header("x-ratelimit-remaining", "0")
            .body(())
            .unwrap();
        async move { Ok::<_, Infallible>(res) }
    });
    let svc = layers(config).retry_after.layer(upstream);
    let t0 = Instant::now();
    for path in ["/first", "/second"] {
        let req = Request::get(format!("http://api.test{path}"))
            .body(())
            .unwrap();
        assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), 200);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].0, "/second");
    seen[1].1 - t0
}

#[tokio::test(start_paused = true)]
async fn proactive_ratelimit_from_a_file_pauses_on_r0() {
    let config = Config::from_toml_str(
        "[retry_after]\nproactive = \"ratelimit\"\nrelease_window_secs = 0\n",
    )
    .unwrap();
    assert_eq!(config.retry_after.proactive, Proactive::RateLimit);
    let waited = second_request_delay(&config, ("ratelimit", "\"default\";r=0;t=5")).await;
    assert_eq!(waited, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn proactive_is_off_by_default() {
    let config = Config::default();
    let waited = second_request_delay(&config, ("ratelimit", "\"default\";r=0;t=5")).await;
    assert_eq!(waited, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn proactive_x_ratelimit_reset_delta_from_the_environment() {
    let config = Config::default()
        .merge_env_vars(
            "INFRAHUB",
            [
                (
                    "INFRAHUB_RETRY_AFTER_PROACTIVE".to_owned(),
                    "x-ratelimit-reset-delta".to_owned(),
                ),
                (
                    "INFRAHUB_RATE_LIMIT_PAUSE_RELEASE_WINDOW".to_owned(),
                    "0".to_owned(),
                ),
            ],
        )
        .unwrap();
    assert_eq!(
        config.retry_after.proactive,
        Proactive::XRateLimitResetDelta
    );
    let waited = second_request_delay(&config, ("x-ratelimit-reset", "7")).await;
    assert_eq!(waited, Duration::from_secs(7));
}

#[test]
fn a_bad_proactive_value_names_the_setting() {
    let error = Config::from_toml_str("[retry_after]\nproactive = \"maybe\"\n").unwrap_err();
    assert!(error.to_string().contains("proactive"), "{error}");
    let error = Config::default()
        .merge_env_vars(
            "APP",
            [("APP_RETRY_AFTER_PROACTIVE".to_owned(), "yes".to_owned())],
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("APP_RETRY_AFTER_PROACTIVE"),
        "{error}"
    );
    // serde_json names the value and the allowed ones.
    let error = Config::from_json_str(r#"{"retry_after": {"proactive": "maybe"}}"#).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("maybe") && text.contains("x-ratelimit-reset-epoch"),
        "{text}"
    );
}

/// How many retries `budget` allows at one instant with nothing banked.
fn retries_at_once(budget: &RetryBudget) -> usize {
    (0..10_000).take_while(|_| budget.withdraw()).count()
}

#[tokio::test(start_paused = true)]
async fn the_ready_stacks_budget_floor_follows_the_global_rate() {
    let mut config = Config::default();
    config.rate_limit.global_rate = 40.5;
    let layers = layers(&config);
    let budget = layers.retry.retry_budget().expect("budget on by default");
    assert_eq!(budget.min_retries_per_sec(), 41);
    let configured = retries_at_once(budget);

    // The standalone budget keeps its small fixed floor.
    let standalone = RetryBudget::default();
    assert_eq!(standalone.min_retries_per_sec(), 10);
    let fixed = retries_at_once(&standalone);
    assert!(configured > fixed, "{configured} <= {fixed}");

    // Set explicitly, the floor is what it says, from a file or the environment.
    let config = Config::from_toml_str("[retry]\nbudget_min_per_sec = 3\n").unwrap();
    let layers = self::layers(&config);
    assert_eq!(
        layers.retry.retry_budget().unwrap().min_retries_per_sec(),
        3
    );
    let config = Config::default()
        .merge_env_vars(
            "APP",
            [(
                "APP_RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC".to_owned(),
                "auto".to_owned(),
            )],
        )
        .unwrap();
    assert_eq!(config.retry.budget_min_per_sec, None);
    assert_eq!(
        self::layers(&config)
            .retry
            .retry_budget()
            .unwrap()
            .min_retries_per_sec(),
        50
    );
}
