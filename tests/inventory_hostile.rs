//! pacer-inventory against `pacer_testbed::hostile` on real sockets, async and blocking: a
//! lying `count`, a repeating page, an empty page, JSON of the wrong shape, malformed token
//! answers, a huge `expires_in`, a gigantic header, a stalled head, a reset, endless `429`s
//! with a growing `Retry-After`. Each call ends with the typed outcome asserted, within its
//! configured bound (per-attempt timeout 1 s, total deadline 5 s), and nothing panics.
#![allow(clippy::unwrap_used)]

#[path = "support/inventory.rs"]
mod support;

use std::time::Duration;

use pacer::auth::{AuthError, SecretString};
use pacer_inventory::{BuiltinTagFilter, Config, Error, InventoryClient, Selection};
use pacer_testbed::hostile::{Behaviour, HostileServer, Rule};
use serde_json::Map;

/// Generous: the configured bounds (1 s per attempt, 5 s in all) plus slack for a loaded
/// machine. A call still running then has no bound.
const BOUND: Duration = Duration::from_secs(30);

fn config(server: &HostileServer, login: bool) -> Config {
    let mut config = Config::default();
    config.address = server.url().to_owned();
    if login {
        config.username = Some("admin".into());
        config.password = Some(SecretString::from("hostile-password"));
    } else {
        config.api_token = Some(SecretString::from("hostile-api-token"));
    }
    config.timeout = Duration::from_secs(1);
    config.max_retry_duration = Duration::from_secs(5);
    config.rate_limit_max_retries = 2;
    config.rate_limit_backoff_base = Duration::from_millis(10);
    config.rate_limit_backoff_max = Duration::from_millis(500);
    config.pagination_size = 5;
    support::unthrottled(&mut config);
    config
}

fn filter() -> BuiltinTagFilter {
    BuiltinTagFilter::default()
}

fn selection() -> Selection {
    Selection::attributes(["name"])
}

/// One test module per misbehaviour: `async_client` and `blocking_client` make the same call
/// against a server with `rules`, and assert its outcome matches `expect`; a second call
/// follows and must match `then` (later calls keep working, or keep failing typed).
macro_rules! hostile {
    (
        $name:ident,
        rules: [$($rule:expr),* $(,)?],
        login: $login:expr,
        call: $method:ident($($arg:expr),*),
        expect: $pattern:pat $(if $guard:expr)?,
        then: $then:pat
    ) => {
        mod $name {
            use super::*;

            fn rules() -> Vec<Rule> {
                vec![$($rule),*]
            }

            async fn server() -> HostileServer {
                let mut builder = HostileServer::builder();
                for rule in rules() {
                    builder = builder.rule(rule);
                }
                builder.start().await.unwrap()
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn async_client() {
                let server = server().await;
                let client = InventoryClient::new(config(&server, $login)).unwrap();
                let started = tokio::time::Instant::now();
                let result = tokio::time::timeout(BOUND, client.$method($($arg),*))
                    .await
                    .expect("the call is bounded");
                assert!(started.elapsed() < BOUND);
                assert!(matches!(&result, $pattern $(if $guard)?), "{result:?}");
                let again = tokio::time::timeout(BOUND, client.$method($($arg),*))
                    .await
                    .expect("the call is bounded");
                assert!(matches!(&again, $then), "{again:?}");
            }

            #[test]
            fn blocking_client() {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                let server = runtime.block_on(server());
                let client =
                    pacer_inventory::blocking::InventoryClient::new(config(&server, $login))
                        .unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let first = client.$method($($arg),*);
                    let first_ok = matches!(&first, $pattern $(if $guard)?);
                    let text = format!("{first:?}");
                    let again = client.$method($($arg),*);
                    let then = (matches!(&again, $then), format!("{again:?}"));
                    let _ = tx.send((first_ok, text, then));
                });
                let (first_ok, text, (then_ok, then_text)) =
                    rx.recv_timeout(BOUND).expect("the call is bounded");
                assert!(first_ok, "{text}");
                assert!(then_ok, "{then_text}");
                drop(server);
            }
        }
    };
}

// ---- paging ----

hostile!(lying_count_ends_on_the_short_page,
    rules: [Rule::new("/graphql", Behaviour::PagesHugeCount)],
    login: false,
    call: tag_all(&filter()),
    expect: Ok(tags) if tags.len() == 1,
    then: _);

hostile!(lying_count_dynamic_ends_on_the_short_page,
    rules: [Rule::new("/graphql", Behaviour::PagesHugeCount)],
    login: false,
    call: node_all("BuiltinTag", &selection(), &Map::new()),
    expect: Ok(nodes) if nodes.len() == 1,
    then: _);

hostile!(repeating_page_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::PagesSameForever)],
    login: false,
    call: tag_all(&filter()),
    expect: Err(Error::Decode(_)),
    then: _);

hostile!(repeating_page_dynamic_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::PagesSameForever)],
    login: false,
    call: node_all("BuiltinTag", &selection(), &Map::new()),
    expect: Err(Error::Decode(_)),
    then: _);

hostile!(empty_page_ends_paging,
    rules: [Rule::new("/graphql", Behaviour::PagesEmptyForever)],
    login: false,
    call: tag_all(&filter()),
    expect: Ok(tags) if tags.is_empty(),
    then: _);

hostile!(empty_page_dynamic_ends_paging,
    rules: [Rule::new("/graphql", Behaviour::PagesEmptyForever)],
    login: false,
    call: node_all("BuiltinTag", &selection(), &Map::new()),
    expect: Ok(nodes) if nodes.is_empty(),
    then: _);

// ---- JSON of the wrong shape ----

hostile!(array_for_object_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::JsonArrayForObject)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Decode(_)),
    then: _);

hostile!(string_for_count_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::GraphqlCountString)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Decode(_)),
    then: _);

hostile!(data_null_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::GraphqlDataNull)],
    login: false,
    call: node_all("BuiltinTag", &selection(), &Map::new()),
    expect: Err(Error::Decode(_)),
    then: _);

hostile!(deeply_nested_json_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::JsonDeeplyNested)],
    login: false,
    call: server_version(),
    expect: Err(Error::Decode(_)),
    then: _);

hostile!(html_page_is_a_decode_error,
    rules: [Rule::new("/graphql", Behaviour::HtmlPage)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Decode(_)),
    then: _);

// ---- token answers ----

hostile!(token_without_access_token_is_an_auth_error,
    rules: [Rule::new("/api/auth/login", Behaviour::TokenWithoutAccessToken)],
    login: true,
    call: tag_count(&filter()),
    expect: Err(Error::Auth(AuthError::InvalidAnswer(_))),
    then: Err(Error::Auth(AuthError::InvalidAnswer(_))));

hostile!(token_with_a_newline_is_an_auth_error,
    rules: [Rule::new("/api/auth/login", Behaviour::TokenWithNewline)],
    login: true,
    call: tag_count(&filter()),
    expect: Err(Error::Auth(AuthError::InvalidAnswer(_))),
    then: _);

hostile!(token_lifetime_as_a_string_is_ignored,
    rules: [Rule::new("/api/auth/login", Behaviour::TokenExpiresInString)],
    login: true,
    call: tag_count(&filter()),
    expect: Ok(0),
    then: Ok(0));

hostile!(token_lifetime_negative_is_ignored,
    rules: [Rule::new("/api/auth/login", Behaviour::TokenExpiresInNegative)],
    login: true,
    call: tag_count(&filter()),
    expect: Ok(0),
    then: Ok(0));

hostile!(token_lifetime_u64_max_is_capped,
    rules: [Rule::new("/api/auth/login", Behaviour::TokenExpiresInMax)],
    login: true,
    call: tag_count(&filter()),
    expect: Ok(0),
    then: Ok(0));

hostile!(token_lifetime_1e300_is_capped,
    rules: [Rule::new("/api/auth/login", Behaviour::TokenExpiresInHuge)],
    login: true,
    call: tag_count(&filter()),
    expect: Ok(0),
    then: Ok(0));

hostile!(unauthorized_forever_renews_once_then_fails,
    rules: [Rule::new("/graphql", Behaviour::UnauthorizedForever)],
    login: true,
    call: tag_count(&filter()),
    expect: Err(Error::Unauthorized { status: 401, .. }),
    then: _);

// ---- the response head and the connection ----

hostile!(gigantic_header_is_a_transport_error,
    rules: [Rule::new("/graphql", Behaviour::HugeHeader { bytes: 4 * 1024 * 1024 })],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Transport(_)),
    then: _);

hostile!(stalled_head_times_out,
    rules: [Rule::new("/graphql", Behaviour::StallHead)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Transport(_)),
    then: _);

hostile!(stalled_login_head_times_out,
    rules: [Rule::new("/api/auth/login", Behaviour::StallHead)],
    login: true,
    call: tag_count(&filter()),
    expect: Err(Error::Auth(_)),
    then: _);

hostile!(reset_is_a_transport_error,
    rules: [Rule::new("/graphql", Behaviour::ResetBeforeResponse)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Transport(_)),
    then: _);

// ---- throttling ----

hostile!(endless_429_with_growing_retry_after_is_a_rate_limit_error,
    rules: [Rule::new("/graphql", Behaviour::ThrottleGrowing)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::RateLimit(error)) if error.attempts == 3,
    then: _);

hostile!(retry_after_of_a_day_is_clamped_then_a_rate_limit_error,
    rules: [Rule::new("/graphql", Behaviour::ThrottleFixed { seconds: 86_400 })],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::RateLimit(_)),
    then: _);

// ---- the response body (bounded by the per-attempt `timeout`, which covers the body; a body
// is not retried without `retry_on_failure`) ----

hostile!(body_drip_times_out,
    rules: [Rule::new("/graphql", Behaviour::DripBody { interval: Duration::from_millis(200) })],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Transport(e)) if e.is::<tower::timeout::error::Elapsed>(),
    then: _);

hostile!(body_stall_times_out,
    rules: [Rule::new("/graphql", Behaviour::StallBody)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Transport(e)) if e.is::<tower::timeout::error::Elapsed>(),
    then: _);

hostile!(body_reset_is_a_transport_error,
    rules: [Rule::new("/graphql", Behaviour::ResetInBody)],
    login: false,
    call: tag_count(&filter()),
    expect: Err(Error::Transport(_)),
    then: _);

// ---- the blocking facade inside a runtime ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_called_or_dropped_inside_a_runtime_is_a_clear_error() {
    let server = HostileServer::start().await.unwrap();
    let config = config(&server, false);
    let client = std::thread::spawn(move || {
        pacer_inventory::blocking::InventoryClient::new(config).unwrap()
    })
    .join()
    .unwrap();
    // Called here (a runtime thread), it refuses instead of stalling or panicking.
    let error = client.tag_count(&filter()).unwrap_err();
    assert!(matches!(&error, Error::Blocking(_)), "{error:?}");
    assert!(error.to_string().contains("async runtime"), "{error}");
    let error = client
        .batch(Vec::<
            fn(InventoryClient) -> std::future::Ready<Result<(), Error>>,
        >::new())
        .unwrap_err();
    assert!(matches!(error, Error::Blocking(_)), "{error:?}");
    // From a plain thread it works.
    let client = std::thread::spawn(move || {
        assert_eq!(client.tag_count(&filter()).unwrap(), 0);
        client
    })
    .join()
    .unwrap();
    // Dropped here (the last clone), it does not panic.
    drop(client);
}
