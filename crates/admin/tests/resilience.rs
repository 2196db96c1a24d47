//! The stack under trouble, against the fake Keycloak over real sockets (so real time: these
//! tests assert counts and outcomes, never durations): token expiry and revocation, a 429
//! storm, per-namespace limits in the metrics, and secrets kept out of everything observable.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pacer::metrics::Metrics;
use pacer::retry::{Backoff, RetryPolicy};
use pacer_admin::{AdminClient, Credentials, Error};
use pacer_testbed::Testbed;
use pacer_testbed::support::LogCapture;
use prometheus_client::registry::Registry;
use tracing_subscriber::filter::LevelFilter;

fn token_requests(testbed: &Testbed) -> usize {
    testbed
        .keycloak_requests()
        .iter()
        .filter(|r| r.target.ends_with("/protocol/openid-connect/token"))
        .count()
}

/// Ends every session of the master realm behind the client's back (as an admin would).
async fn logout_all(testbed: &Testbed) {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let creds = testbed.credentials();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        creds.keycloak_client_id, creds.keycloak_client_secret
    );
    let request = http::Request::post(format!(
        "{}/realms/master/protocol/openid-connect/token",
        testbed.keycloak_url()
    ))
    .header("content-type", "application/x-www-form-urlencoded")
    .body(Full::new(Bytes::from(form)))
    .unwrap();
    let body = http
        .request(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    let token: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
    let request = http::Request::post(format!(
        "{}/admin/realms/master/logout-all",
        testbed.keycloak_url()
    ))
    .header(
        "authorization",
        format!("Bearer {}", token["access_token"].as_str().unwrap()),
    )
    .body(Full::default())
    .unwrap();
    assert_eq!(http.request(request).await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_renewed_before_expiry_and_replayed_once_after_a_401() {
    let testbed = Testbed::builder()
        .token_lifetime(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let client = common::client(&testbed).namespace("ops");
    client.server_info().await.unwrap();
    client.server_info().await.unwrap();
    assert_eq!(token_requests(&testbed), 1, "the token is cached");

    // Past its lifetime: renewed before use (client credentials have no refresh token, so a
    // new grant), and Keycloak never sees the expired token.
    tokio::time::advance(Duration::from_millis(1100)).await;
    client.server_info().await.unwrap();
    assert_eq!(token_requests(&testbed), 2);
    assert_eq!(testbed.stats().responses(401), 0);

    // Revoked while still fresh in the client's eyes: one 401, one renewal, one replay.
    let lived = Testbed::builder().start().await.unwrap();
    let client = common::client(&lived).namespace("ops");
    client.server_info().await.unwrap();
    logout_all(&lived).await;
    lived.clear_keycloak_requests();
    let info = client.server_info().await.unwrap();
    assert!(info.version().is_some());
    let sequence: Vec<(String, String)> = lived
        .keycloak_requests()
        .into_iter()
        .map(|r| (r.method, r.target))
        .collect();
    assert_eq!(
        sequence,
        [
            ("GET".into(), "/admin/serverinfo".into()),
            (
                "POST".into(),
                "/realms/master/protocol/openid-connect/token".into()
            ),
            ("GET".into(), "/admin/serverinfo".into()),
        ]
    );
    assert_eq!(lived.stats().count("/admin/serverinfo", 401), 1);
}

#[tokio::test(start_paused = true)]
async fn the_password_grant_uses_its_refresh_token() {
    let testbed = Testbed::builder()
        .token_lifetime(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let creds = testbed.credentials();
    let client = AdminClient::builder(
        testbed.keycloak_url(),
        Credentials::password(
            "master",
            creds.keycloak_admin_user.clone(),
            creds.keycloak_admin_password.clone(),
        ),
    )
    .config(common::roomy_config())
    .build()
    .unwrap()
    .namespace("ops");
    client.server_info().await.unwrap();
    tokio::time::advance(Duration::from_millis(1100)).await;
    client.server_info().await.unwrap();
    let grants: Vec<String> = testbed
        .keycloak_requests()
        .into_iter()
        .filter(|r| r.target.ends_with("/token"))
        .map(|r| r.body)
        .collect();
    assert_eq!(grants.len(), 2);
    assert!(grants[0].contains("grant_type=password"));
    assert!(
        grants[1].contains("grant_type=refresh_token"),
        "{}",
        grants[1]
    );
}

#[tokio::test]
async fn a_429_storm_with_retry_after_is_absorbed() {
    let testbed = Testbed::start().await.unwrap();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let client = AdminClient::builder(testbed.keycloak_url(), common::service_account(&testbed))
        .config(common::roomy_config())
        .metrics(metrics)
        .retry_policy(common::quick_retries())
        .build()
        .unwrap()
        .namespace("ops");
    // The storm starts with the very first request: the token request rides it out too.
    testbed.faults().storm(3, Some(Duration::from_secs(1)));
    let realms = client.realms().list(&Default::default()).await.unwrap();
    assert!(realms.iter().any(|r| r.realm.as_deref() == Some("master")));
    assert_eq!(testbed.stats().too_many_requests(), 3);

    let (_, text) = pacer::metrics::render(&registry, None).unwrap();
    let retries: f64 = text
        .lines()
        .filter(|l| l.starts_with("pacer_retries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(retries, 3.0, "{text}");

    // A storm longer than the retries: the typed error, with the attempts and Retry-After.
    let client = AdminClient::builder(testbed.keycloak_url(), common::service_account(&testbed))
        .config(common::roomy_config())
        .retry_policy(
            RetryPolicy::new()
                .max_retries(2)
                .backoff(Backoff::new(
                    Duration::from_millis(5),
                    Duration::from_millis(5),
                ))
                .without_budget(),
        )
        .build()
        .unwrap()
        .namespace("ops");
    client.server_info().await.unwrap();
    testbed.faults().storm(10, Some(Duration::ZERO));
    let error = client.realms().list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(error, Error::RateLimited { attempts: 3, retry_after: Some(d) } if d == Duration::ZERO),
        "{error:?}"
    );
    testbed.faults().clear();
}

#[tokio::test]
async fn per_namespace_limits_show_in_the_metrics() {
    let testbed = Testbed::start().await.unwrap();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let mut config = pacer::config::Config::default();
    config.rate_limit.namespace_rate = 10.0;
    config.rate_limit.namespace_burst = 2;
    let client = AdminClient::builder(testbed.keycloak_url(), common::service_account(&testbed))
        .config(config)
        .metrics(metrics)
        .build()
        .unwrap();
    let team_a = client.namespace("team-a");
    let team_b = client.namespace("team-b");
    for _ in 0..6 {
        team_a.server_info().await.unwrap();
    }
    team_b.server_info().await.unwrap();

    let (_, text) = pacer::metrics::render(&registry, None).unwrap();
    let sample = |series: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        })
    };
    assert_eq!(
        sample(r#"pacer_requests_total{method="GET",status_class="2xx",namespace="team-a"}"#),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        sample(r#"pacer_requests_total{method="GET",status_class="2xx",namespace="team-b"}"#),
        Some(1.0)
    );
    // The token request has a namespace of its own: no tenant's quota delays a renewal.
    assert_eq!(
        sample(
            r#"pacer_requests_total{method="POST",status_class="2xx",namespace="keycloak-token"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(r#"pacer_requests_total{method="POST",status_class="2xx",namespace="team-a"}"#),
        None
    );
    // Six requests through a burst of two at 10/s: team-a waited; team-b did not.
    let waited_a =
        sample(r#"pacer_rate_limit_wait_seconds_sum{namespace="team-a",level="namespace"}"#)
            .unwrap_or_default();
    let waited_b =
        sample(r#"pacer_rate_limit_wait_seconds_sum{namespace="team-b",level="namespace"}"#)
            .unwrap_or_default();
    assert!(waited_a >= 0.25, "team-a waited {waited_a}\n{text}");
    assert!(waited_b < 0.05, "team-b waited {waited_b}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn secrets_never_show_in_logs_metrics_debug_or_errors() {
    let captured = LogCapture::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(LevelFilter::TRACE));

    let secret = "pacer-secret-7f3a9";
    let testbed = Testbed::builder()
        .credentials(pacer_testbed::Credentials {
            keycloak_client_secret: secret.into(),
            keycloak_admin_password: "admin-pass-51c2".into(),
            ..Default::default()
        })
        .token_lifetime(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let credentials = Credentials::client_credentials("master", "pacer", secret);
    let client = AdminClient::builder(testbed.keycloak_url(), credentials.clone())
        .config(common::roomy_config())
        .metrics(metrics)
        .retry_policy(common::quick_retries())
        .build()
        .unwrap();
    let team = client.namespace("team-a");
    team.server_info().await.unwrap();
    tokio::time::advance(Duration::from_millis(1100)).await;
    testbed.faults().storm(1, Some(Duration::ZERO));
    team.realms().list(&Default::default()).await.unwrap();

    let wrong = AdminClient::builder(
        testbed.keycloak_url(),
        Credentials::password("master", "admin", "wrong-pass-88e1"),
    )
    .build()
    .unwrap();
    let error = wrong.namespace("x").server_info().await.unwrap_err();
    assert!(
        matches!(&error, Error::Auth(auth) if auth.status() == Some(http::StatusCode::UNAUTHORIZED) && auth.refusal().and_then(|r| r.error()) == Some("invalid_grant")),
        "{error:?}"
    );

    let (_, metrics_text) = pacer::metrics::render(&registry, None).unwrap();
    let logs = captured.text();
    let observable = [
        ("metrics", metrics_text),
        ("logs", logs),
        (
            "client Debug",
            format!("{client:?} {team:?} {credentials:?}"),
        ),
        ("error Display", error.to_string()),
        ("error Debug", format!("{error:?}")),
    ];
    for (what, text) in &observable {
        for needle in [secret, "wrong-pass-88e1", "admin-pass-51c2", "eyJ"] {
            assert!(!text.contains(needle), "{what} contains {needle:?}: {text}");
        }
    }
}
