//! pacer-inventory authentication against the fake Infrahub: API key, login, refresh of an
//! expired access token with one replay, a new login when the refresh token expired too, and
//! secrets kept out of `Debug`, `Display` and errors.
#![allow(clippy::unwrap_used)]

#[path = "support/inventory.rs"]
mod support;

use std::time::Duration;

use pacer_inventory::{BuiltinTagFilter, Config, Error, InventoryClient, SecretString};

fn sequence(testbed: &pacer_testbed::Testbed) -> Vec<(String, &'static str)> {
    testbed
        .infrahub_requests()
        .into_iter()
        .map(|r| (r.path, r.auth))
        .collect()
}

fn owned(expected: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    expected
        .iter()
        .map(|(p, a)| ((*p).to_owned(), *a))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn login_then_refresh_on_expiry_then_login_again() {
    let testbed = support::builder()
        // Short lifetimes: every pause stays below the server's 30 s idle timeout, so pooled
        // connections are still open when the next request goes out.
        .token_lifetime(Duration::from_secs(3))
        .refresh_lifetime(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let client = InventoryClient::new(support::login_config(&testbed)).unwrap();
    let filter = BuiltinTagFilter::default();

    client.tag_count(&filter).await.unwrap();
    client.tag_count(&filter).await.unwrap();
    assert_eq!(
        sequence(&testbed),
        owned(&[
            ("/api/auth/login", "none"),
            ("/graphql/main", "bearer"),
            ("/graphql/main", "bearer"),
        ])
    );

    // The access token expires: the refused call is refreshed and replayed once.
    testbed.clear_infrahub_requests();
    tokio::time::advance(Duration::from_secs(4)).await;
    client.tag_count(&filter).await.unwrap();
    assert_eq!(
        sequence(&testbed),
        owned(&[
            ("/graphql/main", "bearer"),
            ("/api/auth/refresh", "bearer"),
            ("/graphql/main", "bearer"),
        ])
    );
    assert_eq!(testbed.stats().count("/graphql/main", 401), 1);

    // Both tokens expire: the refresh is refused, so the client logs in again.
    testbed.clear_infrahub_requests();
    tokio::time::advance(Duration::from_secs(11)).await;
    client.tag_count(&filter).await.unwrap();
    assert_eq!(
        sequence(&testbed),
        owned(&[
            ("/graphql/main", "bearer"),
            ("/api/auth/refresh", "bearer"),
            ("/api/auth/login", "none"),
            ("/graphql/main", "bearer"),
        ])
    );
}

#[tokio::test]
async fn api_key_is_sent_and_a_wrong_one_is_unauthorized() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap();
    assert_eq!(sequence(&testbed), owned(&[("/graphql/main", "api-key")]));

    let mut config = support::config(&testbed);
    config.api_token = Some(SecretString::from("wrong-key-s3cr3t"));
    let client = InventoryClient::new(config).unwrap();
    let error = client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    for text in [format!("{error}"), format!("{error:?}")] {
        assert!(!text.contains("wrong-key-s3cr3t"), "{text}");
    }
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_errors() {
    let testbed = support::start().await;
    let password = "pa55-w0rd-never-shown";
    let token = "t0ken-never-shown";

    // A wrong password: the login is refused, and nothing shows the password.
    let mut config = support::login_config(&testbed);
    config.password = Some(SecretString::from(password));
    let client = InventoryClient::new(config.clone()).unwrap();
    let error = client
        .tag_count(&BuiltinTagFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Unauthorized { .. }), "{error:?}");
    let mut config_with_token = config.clone();
    config_with_token.api_token = Some(SecretString::from(token));
    let texts = [
        format!("{error}"),
        format!("{error:?}"),
        format!("{config:?}"),
        format!("{config_with_token:?}"),
        format!("{client:?}"),
        format!(
            "{:?}",
            InventoryClient::new(config_with_token.clone()).unwrap()
        ),
        format!("{:?}", SecretString::from(password)),
    ];
    for text in &texts {
        assert!(!text.contains(password) && !text.contains(token), "{text}");
    }
    // The journal shows that a login was sent, not its body.
    assert!(
        testbed
            .infrahub_requests()
            .iter()
            .all(|r| !r.body.contains(password))
    );

    // Environment errors name the variable and value, but never a secret's value (secrets
    // cannot be invalid, and they are kept away from the parsers that quote values).
    let error = Config::from_env_vars([
        ("INFRAHUB_API_TOKEN".to_owned(), token.to_owned()),
        ("INFRAHUB_PASSWORD".to_owned(), password.to_owned()),
        ("INFRAHUB_TIMEOUT".to_owned(), "soon".to_owned()),
    ])
    .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        text.contains("INFRAHUB_TIMEOUT") && text.contains("soon"),
        "{text}"
    );
    assert!(!text.contains(password) && !text.contains(token), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_tenant_does_not_delay_another_tenants_first_call() {
    let testbed = support::start().await;
    let mut config = support::login_config(&testbed);
    config.pacer.rate_limit.max_wait_secs = 3_600.0;
    config.pacer.rate_limit.overrides.insert(
        "tenant-a".into(),
        pacer::config::QuotaConfig {
            rate: 0.01,
            burst: 1,
        },
    );
    // The stack, with its limiter at hand: tenant A's bucket is emptied before any login.
    let stack = pacer::client::Client::from_config(&config.pacer_config()).unwrap();
    let tenant_a = pacer::Namespace::new("tenant-a");
    while stack.rate_limiter().try_acquire(&tenant_a).is_ok() {}
    let client = InventoryClient::with_service(config, stack).unwrap();
    let filter = BuiltinTagFilter::default();

    // Tenant A's first call needs a login, then waits ~100 s for its own bucket.
    let started = tokio::time::Instant::now();
    let a = tokio::spawn({
        let client = client.namespace("tenant-a");
        let filter = filter.clone();
        async move { client.tag_count(&filter).await }
    });
    tokio::task::yield_now().await;

    // Tenant B's first call is not held behind A's bucket: the login goes out under the
    // token namespace, and B's own request under B's.
    client
        .namespace("tenant-b")
        .tag_count(&filter)
        .await
        .unwrap();
    let b_took = started.elapsed();
    assert!(b_took < Duration::from_secs(5), "{b_took:?}");
    assert!(!a.is_finished());
    // One login served both tenants.
    assert_eq!(testbed.stats().count("/api/auth/login", 200), 1);

    // A finishes once its bucket refills.
    a.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
}
