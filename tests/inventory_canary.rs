//! The canary: the password, the API token, the login and refresh tokens the server hands
//! out, the proxy's credentials and a password in the address are all set to values holding
//! one canary string; the async and blocking clients run through success paths (login,
//! refresh after a `401`, replay) and failure paths (refused key, refused login, stalled
//! login, address with user-info, an unreachable proxy with credentials). The canary must appear in no `Debug` or `Display` output,
//! no captured `tracing` output (every level) and not in the metrics text.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use pacer::auth::SecretString;
use pacer_inventory::{BuiltinTagFilter, Config, Error, InventoryClient};
use pacer_testbed::hostile::{Behaviour, HostileServer, Rule};
use pacer_testbed::support::LogCapture;
use prometheus_client::registry::Registry;
use tracing_subscriber::filter::LevelFilter;

const CANARY: &str = "CANARY-7f3a9c";

fn token_answer(body: String) -> Behaviour {
    Behaviour::Respond {
        status: StatusCode::OK,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(body),
    }
}

/// A server handing out canary tokens; its second GraphQL request is refused (`401`), so the
/// client refreshes (with the canary refresh token) and replays.
async fn canary_server() -> HostileServer {
    HostileServer::builder()
        .rule(Rule::new(
            "/api/auth/login",
            token_answer(format!(
                r#"{{"access_token":"{CANARY}-access","refresh_token":"{CANARY}-refresh","expires_in":3600}}"#
            )),
        ))
        .rule(Rule::new(
            "/api/auth/refresh",
            token_answer(format!(r#"{{"access_token":"{CANARY}-access-2"}}"#)),
        ))
        .rule(Rule::new("/graphql", Behaviour::UnauthorizedForever).nth(2))
        .start()
        .await
        .unwrap()
}

fn login_config(server: &HostileServer) -> Config {
    let mut config = Config::default();
    config.address = server.url().to_owned();
    config.username = Some("admin".into());
    config.password = Some(SecretString::from(format!("{CANARY}-password")));
    config.timeout = Duration::from_secs(1);
    config.max_retry_duration = Duration::from_secs(3);
    config.rate_limit_backoff_base = Duration::from_millis(10);
    config.rate_limit_backoff_max = Duration::from_millis(100);
    config
}

fn api_key_config(server: &HostileServer) -> Config {
    let mut config = login_config(server);
    config.username = None;
    config.password = None;
    config.api_token = Some(SecretString::from(format!("{CANARY}-api-token")));
    config
}

#[test]
fn the_canary_never_leaves() {
    let captured = LogCapture::install_global(LevelFilter::TRACE);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut registry = Registry::default();
    let metrics = Config::default()
        .pacer_config()
        .metrics_builder()
        .register(&mut registry);
    let mut texts: Vec<String> = Vec::new();
    let filter = BuiltinTagFilter::default();

    // ---- async: success (login, a 401, refresh, replay) ----
    let server = runtime.block_on(canary_server());
    let config = login_config(&server);
    texts.push(format!("{config:?}"));
    let client = InventoryClient::with_metrics(config.clone(), metrics.clone()).unwrap();
    texts.push(format!("{client:?}"));
    runtime.block_on(async {
        assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
        assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
        assert_eq!(client.tag_count(&filter).await.unwrap(), 0);
    });
    let paths: Vec<String> = server.journal().into_iter().map(|e| e.path).collect();
    assert!(paths.iter().any(|p| p == "/api/auth/refresh"), "{paths:?}");

    // ---- async: failures ----
    // A refused API key.
    server.clear_rules();
    server.rule(Rule::new("/graphql", Behaviour::UnauthorizedForever));
    let api_client =
        InventoryClient::with_metrics(api_key_config(&server), metrics.clone()).unwrap();
    texts.push(format!("{api_client:?}"));
    let error = runtime.block_on(api_client.tag_count(&filter)).unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    texts.push(format!("{error} {error:?}"));
    // A refused login (a fresh client: no token yet).
    server.clear_rules();
    server.rule(Rule::new("/api/auth/login", Behaviour::UnauthorizedForever));
    let refused = InventoryClient::with_metrics(config.clone(), metrics.clone()).unwrap();
    let error = runtime.block_on(refused.tag_count(&filter)).unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
    texts.push(format!("{error} {error:?}"));
    // A stalled login.
    server.clear_rules();
    server.rule(Rule::new("/api/auth/login", Behaviour::StallHead));
    let stalled = InventoryClient::with_metrics(config.clone(), metrics.clone()).unwrap();
    let error = runtime.block_on(stalled.tag_count(&filter)).unwrap_err();
    assert!(matches!(error, Error::Auth(_)), "{error:?}");
    texts.push(format!("{error} {error:?}"));
    // A password in the address.
    let mut with_userinfo = config.clone();
    with_userinfo.address = format!("http://admin:{CANARY}-url@{}", server.addr());
    let error = InventoryClient::new(with_userinfo.clone()).unwrap_err();
    texts.push(format!("{error} {error:?} {with_userinfo:?}"));
    let error = Config::from_env_vars([(
        "INFRAHUB_ADDRESS".to_owned(),
        format!("https://admin:{CANARY}-url@infrahub.example"),
    )])
    .unwrap_err();
    texts.push(format!("{error} {error:?}"));
    let error = Config::from_env_vars([(
        "INFRAHUB_PROXY".to_owned(),
        format!("not a url {CANARY}-proxy"),
    )])
    .unwrap_err();
    texts.push(format!("{error} {error:?}"));
    // A proxy with credentials that cannot be reached: the error names the proxy, never its
    // password.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut proxied = login_config(&server);
    proxied.proxy = Some(SecretString::from(format!(
        "http://user:{CANARY}-proxy@127.0.0.1:{closed_port}"
    )));
    texts.push(format!("{proxied:?}"));
    let client = InventoryClient::with_metrics(proxied, metrics.clone()).unwrap();
    texts.push(format!("{client:?}"));
    let error = runtime.block_on(client.tag_count(&filter)).unwrap_err();
    texts.push(format!("{error} {error:?}"));
    drop(server);

    // ---- blocking: success and failure ----
    let server = runtime.block_on(canary_server());
    let blocking = pacer_inventory::blocking::InventoryClient::with_metrics(
        login_config(&server),
        metrics.clone(),
    )
    .unwrap();
    texts.push(format!("{blocking:?}"));
    for _ in 0..3 {
        assert_eq!(blocking.tag_count(&filter).unwrap(), 0);
    }
    server.clear_rules();
    server.rule(Rule::new("/graphql", Behaviour::UnauthorizedForever));
    let error = blocking.tag_count(&filter).unwrap_err();
    texts.push(format!("{error} {error:?}"));
    let blocking_key = pacer_inventory::blocking::InventoryClient::with_metrics(
        api_key_config(&server),
        metrics.clone(),
    )
    .unwrap();
    let error = blocking_key.tag_count(&filter).unwrap_err();
    texts.push(format!("{error} {error:?} {blocking_key:?}"));
    drop(server);

    // ---- nothing shows the canary ----
    let mut metrics_text = String::new();
    prometheus_client::encoding::text::encode(&mut metrics_text, &registry).unwrap();
    assert!(metrics_text.contains("pacer_"), "{metrics_text}");
    let logs = captured.text();
    assert!(!logs.is_empty());
    for text in texts.iter().chain([&metrics_text, &logs]) {
        assert!(!text.contains(CANARY), "the canary leaked: {text}");
    }
}
