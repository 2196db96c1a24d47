//! pacer-admin against `pacer_testbed::hostile` on real sockets, async and blocking: for
//! each misbehaviour the call ends with a typed error (the variant is asserted) within its
//! configured bound (1 s per attempt, 4 s per call, see `common::tight_config`), nothing
//! panics, and the client keeps working afterwards where the server recovers. The bound is
//! checked generously (`BOUND`, several times the configured deadline), never as a race.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use pacer::auth::{AuthError, InvalidAnswer};
use pacer_admin::types::ClientRepresentation;
use pacer_admin::{AdminClient, Error};
use pacer_testbed::hostile::{Behaviour, HostileServer, Rule, keycloak_token_path};

/// Far above the configured 4 s deadline: a call still running then hangs.
const BOUND: Duration = Duration::from_secs(20);

async fn server(rules: Vec<Rule>) -> HostileServer {
    let mut builder = HostileServer::builder();
    for rule in rules {
        builder = builder.rule(rule);
    }
    builder.start().await.unwrap()
}

fn client(server: &HostileServer) -> AdminClient {
    AdminClient::builder(server.url(), common::any_credentials())
        .config(common::tight_config())
        .build()
        .unwrap()
}

fn token(behaviour: Behaviour) -> Rule {
    Rule::new(keycloak_token_path("master"), behaviour)
}

fn token_body(body: &str) -> Rule {
    token(Behaviour::Respond {
        status: StatusCode::OK,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Bytes::from(body.to_owned()),
    })
}

/// One read: `GET /admin/realms/master`.
async fn read(client: &AdminClient) -> Result<(), Error> {
    let realms = client.namespace("ops").realms();
    tokio::time::timeout(BOUND, realms.get("master"))
        .await
        .expect("the call ended within its bound")
        .map(drop)
}

/// One create: `POST /admin/realms/master/clients`.
async fn create(client: &AdminClient) -> Result<String, Error> {
    let rep = ClientRepresentation {
        client_id: Some("app".into()),
        ..Default::default()
    };
    let team = client.namespace("ops");
    let clients = team.clients("master");
    tokio::time::timeout(BOUND, clients.create(&rep))
        .await
        .expect("the call ended within its bound")
}

fn invalid_answer(error: &Error) -> bool {
    matches!(error, Error::Auth(AuthError::InvalidAnswer(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_expires_in_is_capped_and_later_calls_work() {
    let server = server(vec![token(Behaviour::TokenExpiresInMax)]).await;
    let client = client(&server);
    read(&client).await.unwrap();
    read(&client).await.unwrap();
    assert_eq!(server.count(&keycloak_token_path("master")), 1, "cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetimes_that_are_not_lifetimes_are_invalid_answers_and_later_calls_work() {
    let max = u64::MAX;
    for body in [
        format!(
            r#"{{"access_token":"t","expires_in":{max},"refresh_token":"r","refresh_expires_in":{max}}}"#
        ),
        r#"{"access_token":"t","expires_in":1e30}"#.to_owned(),
        r#"{"access_token":"t","expires_in":-1}"#.to_owned(),
        r#"{"access_token":"t","expires_in":"abc"}"#.to_owned(),
        r#"{"access_token":"t","expires_in":300,"refresh_token":"r","refresh_expires_in":1e30}"#
            .to_owned(),
        r#"{"access_token":"t","expires_in":300,"refresh_token":"r","refresh_expires_in":-1}"#
            .to_owned(),
        r#"{"access_token":"t","expires_in":300,"refresh_token":"r","refresh_expires_in":"abc"}"#
            .to_owned(),
    ] {
        let server = server(vec![token_body(&body).nth(1)]).await;
        let client = client(&server);
        match read(&client).await {
            // u64::MAX is a number: capped, the call succeeds.
            Ok(()) => assert!(body.contains(&max.to_string()), "{body}"),
            Err(error) => assert!(invalid_answer(&error), "{body}: {error:?}"),
        }
        // The next token answer is a normal one: the client is not stuck.
        read(&client).await.unwrap();
        read(&client).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_token_json_is_an_invalid_answer() {
    for behaviour in [
        Behaviour::TokenExpiresInHuge,
        Behaviour::TokenExpiresInString,
    ] {
        let server = server(vec![token(behaviour.clone())]).await;
        let error = read(&client(&server)).await.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Auth(AuthError::InvalidAnswer(InvalidAnswer::WrongShape { .. }))
            ),
            "{behaviour:?}: {error:?}"
        );
    }
    let server = server(vec![token_body("{\"access_token\": \"t\", ")]).await;
    let error = read(&client(&server)).await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Auth(AuthError::InvalidAnswer(InvalidAnswer::NotJson { .. }))
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_answers_of_the_wrong_shape_are_invalid_answers() {
    for behaviour in [
        Behaviour::TokenWithoutAccessToken,
        Behaviour::TokenExpiresInNegative,
        Behaviour::TokenWithNewline,
    ] {
        let server = server(vec![token(behaviour.clone())]).await;
        let error = read(&client(&server)).await.unwrap_err();
        assert!(invalid_answer(&error), "{behaviour:?}: {error:?}");
        assert!(!format!("{error:?} {error}").contains("x-injected"));
    }
    let server = server(vec![token_body(r#"[{"access_token":"t"}]"#)]).await;
    let error = read(&client(&server)).await.unwrap_err();
    assert!(invalid_answer(&error), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_json_of_the_wrong_shape_is_a_decode_error() {
    for behaviour in [
        Behaviour::JsonArrayForObject,
        Behaviour::JsonStringForNumber,
        Behaviour::JsonNull,
        Behaviour::JsonDeeplyNested,
        Behaviour::JsonInvalidUtf8,
        Behaviour::HtmlPage,
    ] {
        let server = server(vec![Rule::new("/admin", behaviour.clone())]).await;
        let error = read(&client(&server)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Decode { .. }),
            "{behaviour:?}: {error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_faults_are_transport_errors() {
    for behaviour in [
        Behaviour::HugeHeader {
            bytes: 8 * 1024 * 1024,
        },
        Behaviour::StallHead,
        Behaviour::PartialHeadStall,
        Behaviour::ResetBeforeResponse,
        Behaviour::MalformedStatusLine,
    ] {
        let server = server(vec![Rule::new("/admin", behaviour.clone())]).await;
        let error = read(&client(&server)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Transport(_)),
            "{behaviour:?}: {error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_token_endpoint_is_an_auth_error() {
    let server = server(vec![token(Behaviour::StallHead)]).await;
    let error = read(&client(&server)).await.unwrap_err();
    assert!(matches!(&error, Error::Auth(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_locations_are_refused() {
    for behaviour in [
        Behaviour::CreatedOnOtherHost,
        Behaviour::CreatedElsewhere,
        Behaviour::CreatedWithDotDot,
    ] {
        let server = server(vec![Rule::new("/admin", behaviour.clone())]).await;
        let error = create(&client(&server)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Decode { .. }),
            "{behaviour:?}: {error:?}"
        );
    }
    for behaviour in [
        Behaviour::CreatedEmptyLocation,
        Behaviour::CreatedWithoutLocation,
    ] {
        let server = server(vec![Rule::new("/admin", behaviour.clone())]).await;
        let error = create(&client(&server)).await.unwrap_err();
        assert!(
            matches!(&error, Error::MissingLocation),
            "{behaviour:?}: {error:?}"
        );
    }
    // The server's own Location, inside the collection, is taken.
    let server = server(Vec::new()).await;
    let id = create(&client(&server)).await.unwrap();
    assert!(id.starts_with("hostile-"), "{id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_429_with_growing_retry_after_is_rate_limited() {
    let server = server(vec![Rule::new("/admin", Behaviour::ThrottleGrowing)]).await;
    let error = read(&client(&server)).await.unwrap_err();
    assert!(matches!(&error, Error::RateLimited { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_forever_is_unauthorized_after_one_renewal() {
    let server = server(vec![Rule::new("/admin", Behaviour::UnauthorizedForever)]).await;
    let error = read(&client(&server)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Unauthorized { status } if *status == StatusCode::UNAUTHORIZED),
        "{error:?}"
    );
    assert_eq!(server.count("/admin/realms/master"), 2, "one replay");
}

// ---------------------------------------------------------------------------------------
// The blocking client, from a plain thread, against a server on a runtime kept alive.

fn blocking_case(rules: Vec<Rule>, check: impl FnOnce(&pacer_admin::blocking::AdminClient)) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(server(rules));
    let client =
        pacer_admin::blocking::AdminClient::builder(server.url(), common::any_credentials())
            .config(common::tight_config())
            .build()
            .unwrap();
    let started = std::time::Instant::now();
    check(&client);
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    drop(client);
    drop(server);
}

fn blocking_read(client: &pacer_admin::blocking::AdminClient) -> Result<(), Error> {
    client.namespace("ops").realms().get("master").map(drop)
}

#[test]
fn blocking_huge_expires_in_and_bad_tokens() {
    blocking_case(vec![token(Behaviour::TokenExpiresInMax)], |client| {
        blocking_read(client).unwrap();
        blocking_read(client).unwrap();
    });
    for behaviour in [
        Behaviour::TokenExpiresInHuge,
        Behaviour::TokenExpiresInString,
        Behaviour::TokenWithoutAccessToken,
    ] {
        blocking_case(vec![token(behaviour).nth(1)], |client| {
            let error = blocking_read(client).unwrap_err();
            assert!(invalid_answer(&error), "{error:?}");
            blocking_read(client).unwrap();
        });
    }
}

#[test]
fn blocking_wrong_shapes_socket_faults_locations_and_throttling() {
    blocking_case(
        vec![Rule::new("/admin", Behaviour::JsonArrayForObject)],
        |client| {
            let error = blocking_read(client).unwrap_err();
            assert!(matches!(&error, Error::Decode { .. }), "{error:?}");
        },
    );
    for behaviour in [
        Behaviour::HugeHeader {
            bytes: 8 * 1024 * 1024,
        },
        Behaviour::StallHead,
        Behaviour::ResetBeforeResponse,
    ] {
        blocking_case(vec![Rule::new("/admin", behaviour)], |client| {
            let error = blocking_read(client).unwrap_err();
            assert!(matches!(&error, Error::Transport(_)), "{error:?}");
        });
    }
    blocking_case(
        vec![Rule::new("/admin", Behaviour::CreatedOnOtherHost)],
        |client| {
            let rep = ClientRepresentation {
                client_id: Some("app".into()),
                ..Default::default()
            };
            let error = client
                .namespace("ops")
                .clients("master")
                .create(&rep)
                .unwrap_err();
            assert!(matches!(&error, Error::Decode { .. }), "{error:?}");
        },
    );
    blocking_case(
        vec![Rule::new("/admin", Behaviour::ThrottleGrowing)],
        |client| {
            let error = blocking_read(client).unwrap_err();
            assert!(matches!(&error, Error::RateLimited { .. }), "{error:?}");
        },
    );
}

#[test]
fn blocking_calls_inside_a_runtime_are_refused_and_dropping_there_is_fine() {
    let client = pacer_admin::blocking::AdminClient::builder(
        "http://127.0.0.1:9",
        common::any_credentials(),
    )
    .build()
    .unwrap();
    let outer = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let in_runtime = client.clone();
    let error = outer
        .block_on(async move { blocking_read(&in_runtime) })
        .unwrap_err();
    assert!(matches!(&error, Error::InRuntime(_)), "{error:?}");
    assert!(error.to_string().contains("async runtime"), "{error}");
    // Also from a current-thread runtime, and the reconcile helpers too.
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = current
        .block_on(async { client.namespace("ops").server_info() })
        .unwrap_err();
    assert!(matches!(&error, Error::InRuntime(_)), "{error:?}");
    // Dropping the last clone inside a runtime does not panic.
    outer.block_on(async move { drop(client) });
}

// Dripping and stalled bodies: the per-attempt timeout / deadline must cover the body.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_drip_and_stall_end_within_the_deadline() {
    for behaviour in [
        Behaviour::DripBody {
            interval: Duration::from_millis(500),
        },
        Behaviour::StallBody,
        Behaviour::TruncatedBody,
        Behaviour::ResetInBody,
    ] {
        let server = server(vec![Rule::new("/admin", behaviour.clone())]).await;
        let error = read(&client(&server)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Transport(_)),
            "{behaviour:?}: {error:?}"
        );
    }
}

#[test]
fn body_stall_blocking_ends_within_the_deadline() {
    blocking_case(vec![Rule::new("/admin", Behaviour::StallBody)], |client| {
        let error = blocking_read(client).unwrap_err();
        assert!(matches!(&error, Error::Transport(_)), "{error:?}");
    });
}
