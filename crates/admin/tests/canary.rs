//! The canary: the client secret and the password of the credentials, the access and refresh
//! tokens the server hands out, a proxy's password, a password in the base URL, the secrets
//! of generated representations (a client's `secret`, a credential's `value`, a component's
//! `bindCredential`, an unknown secret-looking field) and the bodies of the secret-bearing
//! operations all hold one canary string. The async and blocking clients run through success
//! paths (login, calls, a `401`, the refresh-token grant and the replay) and failure paths
//! (refused login, a token endpoint's `500`, a stalled login, `500` and `400` answers quoting
//! the canary to a secret operation, an answer that does not decode, an unreachable proxy, a
//! base URL with user-info). The canary must appear in no `Debug` or `Display` output, no
//! captured `tracing` output (every level) and not in the metrics text; the journal of the
//! server shows that every call was made, so the test cannot pass by sending nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use pacer::auth::{AuthError, Grant, TokenSource};
use pacer::config::ProxyUrl;
use pacer::events::TracingObserver;
use pacer_admin::auth::KeycloakTokenSource;
use pacer_admin::types::{
    ClientRepresentation, ClientsListQuery, ComponentExportRepresentation,
    CredentialRepresentation, IdentityProviderRepresentation, RealmRepresentation,
    UserRepresentation,
};
use pacer_admin::{AdminClient, Credentials, Error, REDACTED_EXCERPT};
use pacer_testbed::hostile::{Behaviour, HostileServer, Rule, keycloak_token_path};
use pacer_testbed::support::LogCapture;
use prometheus_client::registry::Registry;
use tower::{Layer, Service, ServiceExt};
use tracing_subscriber::filter::LevelFilter;

const CANARY: &str = "CANARY-5d1e";
const REALM: &str = "master";

fn respond(status: StatusCode, body: String) -> Behaviour {
    Behaviour::Respond {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Bytes::from(body),
    }
}

fn token_answer() -> String {
    format!(
        r#"{{"access_token":"{CANARY}-access","token_type":"Bearer","expires_in":3600,"refresh_token":"{CANARY}-refresh","refresh_expires_in":1800}}"#
    )
}

/// A client secret as Keycloak's `client-secret` operations answer it.
fn secret_answer() -> String {
    format!(r#"{{"type":"secret","value":"{CANARY}-client-secret"}}"#)
}

fn secret_path() -> String {
    format!("/admin/realms/{REALM}/clients/c-1/client-secret")
}

/// A server handing out canary tokens and the canary client secret; the second read of the
/// realm is refused (`401`), so the client renews with the canary refresh token and replays.
async fn canary_server() -> HostileServer {
    HostileServer::builder()
        .rule(Rule::new(
            keycloak_token_path(REALM),
            respond(StatusCode::OK, token_answer()),
        ))
        .rule(
            Rule::new(secret_path(), respond(StatusCode::OK, secret_answer())).method(Method::GET),
        )
        .rule(
            Rule::new(
                format!("/admin/realms/{REALM}"),
                Behaviour::UnauthorizedForever,
            )
            .method(Method::GET)
            .nth(2),
        )
        .start()
        .await
        .unwrap()
}

fn password_credentials() -> Credentials {
    Credentials::password(REALM, "admin", format!("{CANARY}-password"))
}

fn secret_credentials() -> Credentials {
    Credentials::client_credentials(REALM, "operator", format!("{CANARY}-secret"))
}

/// Representations carrying the canary in every kind of secret field.
fn secret_client() -> ClientRepresentation {
    ClientRepresentation {
        client_id: Some("billing".into()),
        secret: Some(format!("{CANARY}-rep-secret")),
        registration_access_token: Some(format!("{CANARY}-registration")),
        attributes: Some(BTreeMap::from([(
            "client.secret.rotated".to_owned(),
            format!("{CANARY}-rotated"),
        )])),
        extra: serde_json::Map::from_iter([
            (
                "newSecretField".to_owned(),
                format!("{CANARY}-extra").into(),
            ),
            ("displayHint".to_owned(), "shown".into()),
        ]),
        ..Default::default()
    }
}

fn secret_credential() -> CredentialRepresentation {
    CredentialRepresentation {
        r#type: Some("password".into()),
        value: Some(format!("{CANARY}-value")),
        secret_data: Some(format!("{CANARY}-secret-data")),
        credential_data: Some(format!("{CANARY}-credential-data")),
        salt: Some(format!("{CANARY}-salt")),
        temporary: Some(false),
        ..Default::default()
    }
}

fn secret_component() -> ComponentExportRepresentation {
    ComponentExportRepresentation {
        name: Some("ldap".into()),
        provider_id: Some("ldap".into()),
        config: Some(BTreeMap::from([
            ("bindDn".to_owned(), vec!["cn=admin".to_owned()]),
            ("bindCredential".to_owned(), vec![format!("{CANARY}-bind")]),
        ])),
        ..Default::default()
    }
}

fn secret_realm() -> RealmRepresentation {
    RealmRepresentation {
        realm: Some("canary".into()),
        smtp_server: Some(BTreeMap::from([
            ("host".to_owned(), "smtp.example".to_owned()),
            ("password".to_owned(), format!("{CANARY}-smtp")),
        ])),
        components: Some(BTreeMap::from([(
            "org.keycloak.storage.UserStorageProvider".to_owned(),
            vec![secret_component()],
        )])),
        clients: Some(vec![secret_client()]),
        users: Some(vec![UserRepresentation {
            username: Some("alice".into()),
            credentials: Some(vec![secret_credential()]),
            ..Default::default()
        }]),
        identity_providers: Some(vec![IdentityProviderRepresentation {
            alias: Some("github".into()),
            config: Some(BTreeMap::from([(
                "clientSecret".to_owned(),
                format!("{CANARY}-idp"),
            )])),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// The refresh-token grant's form as the client sends it (the journal keeps only lengths).
fn refresh_form_len(client_id: &str, secret: Option<&str>) -> usize {
    let mut form =
        format!("client_id={client_id}&grant_type=refresh_token&refresh_token={CANARY}-refresh");
    if let Some(secret) = secret {
        form.push_str(&format!("&client_secret={secret}"));
    }
    form.len()
}

fn token_bodies(server: &HostileServer) -> Vec<usize> {
    let token = keycloak_token_path(REALM);
    server
        .journal()
        .into_iter()
        .filter(|entry| entry.path == token)
        .map(|entry| entry.body_len)
        .collect()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_canary_never_leaves() {
    let captured = LogCapture::install_global(LevelFilter::TRACE);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = common::tight_config();
    let mut registry = Registry::default();
    let metrics = config.metrics_builder().register(&mut registry);
    let mut texts: Vec<String> = Vec::new();

    // ---- values: generated representations and token answers ----
    let (client_rep, credential, component, realm_rep) = (
        secret_client(),
        secret_credential(),
        secret_component(),
        secret_realm(),
    );
    for shown in [
        format!("{client_rep:?}"),
        format!("{credential:?}"),
        format!("{component:?}"),
        format!("{realm_rep:?}"),
    ] {
        // Not vacuous: the fields are printed, their values hidden.
        assert!(shown.contains("<redacted>"), "{shown}");
        texts.push(shown);
    }
    assert!(texts[0].contains("billing") && texts[0].contains("shown"));
    assert!(texts[2].contains("bindCredential") && texts[2].contains("bindDn"));
    let source = KeycloakTokenSource::new("http://kc.invalid", password_credentials());
    let answer = source
        .parse_token(&Grant::Credentials, token_answer().as_bytes())
        .unwrap();
    let refresh = answer.refresh_token.clone().unwrap();
    texts.push(format!(
        "{answer:?} {source:?} {:?} {:?} {:?}",
        Grant::Refresh(&refresh),
        password_credentials(),
        secret_credentials()
    ));
    let newline = format!(r#"{{"access_token":"{CANARY}\r\nX-Injected: 1","expires_in":60}}"#);
    if let Err(error) = source.parse_token(&Grant::Credentials, newline.as_bytes()) {
        texts.push(format!("{error} {error:?}"));
    }
    let shapeless = format!(r#"{{"access_token":["{CANARY}"]}}"#);
    let error = source
        .parse_token(&Grant::Credentials, shapeless.as_bytes())
        .unwrap_err();
    assert!(matches!(error, AuthError::InvalidAnswer(_)), "{error:?}");
    texts.push(format!("{error} {error:?}"));
    texts.push(format!("{:?}", source.layer()));

    // ---- async: success (login, calls, a 401, the refresh grant, replay) ----
    let server = runtime.block_on(canary_server());
    let stack = pacer::client::Client::builder(&config)
        .metrics(metrics.clone())
        .observer(TracingObserver)
        .build()
        .unwrap();
    texts.push(format!("{stack:?} {config:?}"));
    let client =
        AdminClient::from_client(server.url(), password_credentials(), stack.clone()).unwrap();
    let team = client.namespace("team-a");
    let clients = team.clients(REALM);
    texts.push(format!(
        "{client:?} {team:?} {clients:?} {:?}",
        team.users(REALM)
    ));
    runtime.block_on(async {
        assert!(team.realms().get(REALM).await.unwrap().is_some());
        // The second read is refused: renewed with the refresh token, replayed.
        assert!(team.realms().get(REALM).await.unwrap().is_some());
        let secret = clients.secret("c-1").await.unwrap();
        assert_eq!(
            secret.value.as_deref(),
            Some(format!("{CANARY}-client-secret").as_str())
        );
        texts.push(format!("{secret:?}"));
        let id = clients.create(&client_rep).await.unwrap();
        assert!(!id.is_empty());
        team.users(REALM)
            .reset_password("u-1", &credential)
            .await
            .unwrap();
        team.realms().create(&realm_rep).await.unwrap();
    });
    assert_eq!(
        token_bodies(&server),
        vec![
            format!(
                "client_id=admin-cli&grant_type=password&username=admin&password={CANARY}-password"
            )
            .len(),
            refresh_form_len("admin-cli", None),
        ],
        "a login, then the refresh grant after the 401"
    );
    assert_eq!(
        server.count(&format!("/admin/realms/{REALM}")),
        3,
        "two reads and a replay"
    );
    // The bearer layer's own future, before and after its first poll.
    runtime.block_on(async {
        let layered = KeycloakTokenSource::new(server.url(), secret_credentials())
            .layer()
            .layer(stack.clone());
        texts.push(format!("{layered:?}"));
        let request = http::Request::get(format!("{}/admin/realms/{REALM}", server.url()))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let mut layered = layered;
        let mut future = Box::pin(layered.ready().await.unwrap().call(request));
        texts.push(format!("{future:?}"));
        let response = match tokio::time::timeout(Duration::ZERO, &mut future).await {
            Ok(response) => response,
            Err(_) => {
                texts.push(format!("{future:?}"));
                future.await
            }
        };
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    });

    // ---- async: failures ----
    let mut errors: Vec<Error> = Vec::new();
    // A 500 quoting the canary to a secret operation (retried, then the error).
    server.clear_rules();
    server.rule(Rule::new(
        keycloak_token_path(REALM),
        respond(StatusCode::OK, token_answer()),
    ));
    server.rule(Rule::new(
        secret_path(),
        respond(StatusCode::INTERNAL_SERVER_ERROR, secret_answer()),
    ));
    let before = server.count(&secret_path());
    for result in [
        runtime.block_on(clients.secret("c-1")),
        runtime.block_on(clients.regenerate_secret("c-1")),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Server { excerpt, .. } if excerpt == REDACTED_EXCERPT),
            "{error:?}"
        );
        errors.push(error);
    }
    assert!(server.count(&secret_path()) >= before + 2);
    // A 400 and an answer that does not decode, both quoting the canary.
    server.clear_rules();
    server.rule(Rule::new(
        secret_path(),
        respond(
            StatusCode::BAD_REQUEST,
            format!("invalid secret {CANARY}-400"),
        ),
    ));
    let error = runtime
        .block_on(clients.regenerate_secret("c-1"))
        .unwrap_err();
    assert!(
        matches!(&error, Error::Status { excerpt, .. } if excerpt == REDACTED_EXCERPT),
        "{error:?}"
    );
    errors.push(error);
    server.clear_rules();
    server.rule(Rule::new(
        secret_path(),
        respond(
            StatusCode::OK,
            format!(r#"{{"type":"secret","counter":"{CANARY}-counter"}}"#),
        ),
    ));
    let error = runtime.block_on(clients.secret("c-1")).unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    errors.push(error);
    // An operation that is not secret by its path, whose answer holds a secret and does not
    // decode (a newer Keycloak changing a type): the excerpt hides the secret's value.
    server.clear_rules();
    server.rule(Rule::new(
        format!("/admin/realms/{REALM}/clients"),
        respond(
            StatusCode::OK,
            format!(r#"[{{"clientId":"billing","secret":"{CANARY}-listed","enabled":"yes"}}]"#),
        ),
    ));
    let error = runtime
        .block_on(clients.list(&ClientsListQuery::default()))
        .unwrap_err();
    assert!(
        matches!(&error, Error::Decode { excerpt, .. } if excerpt.contains("billing")),
        "{error:?}"
    );
    errors.push(error);
    // A 500 echoing a create's body (with the client's secret).
    server.clear_rules();
    server.rule(Rule::new(
        format!("/admin/realms/{REALM}/clients"),
        respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::to_string(&client_rep).unwrap(),
        ),
    ));
    let error = runtime.block_on(clients.create(&client_rep)).unwrap_err();
    assert!(matches!(error, Error::Server { .. }), "{error:?}");
    errors.push(error);
    // A refused login, a token endpoint's 500 quoting the canary, a stalled login: fresh
    // clients, so that no token is cached.
    for (behaviour, expected) in [
        (Behaviour::UnauthorizedForever, "refused"),
        (
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("password={CANARY}-password"),
            ),
            "status",
        ),
        (Behaviour::StallHead, "unreachable"),
    ] {
        server.clear_rules();
        server.rule(Rule::new(keycloak_token_path(REALM), behaviour));
        let fresh = AdminClient::builder(server.url(), password_credentials())
            .config(config.clone())
            .metrics(metrics.clone())
            .build()
            .unwrap();
        let error = runtime
            .block_on(fresh.namespace("team-a").realms().get(REALM))
            .unwrap_err();
        let ok = match (&error, expected) {
            (Error::Auth(auth), "refused") => auth.is_refused(),
            (Error::Auth(AuthError::Status { .. }), "status") => true,
            (Error::Auth(AuthError::Unreachable(_) | AuthError::TimedOut { .. }), _) => {
                expected == "unreachable"
            }
            _ => false,
        };
        assert!(ok, "{expected}: {error:?}");
        errors.push(error);
    }
    // A password in the base URL: refused before anything is built or sent.
    let with_userinfo = format!("http://admin:{CANARY}-url@{}", server.addr());
    let builder =
        AdminClient::builder(with_userinfo.clone(), password_credentials()).config(config.clone());
    texts.push(format!("{builder:?}"));
    let refusals = [
        builder.build().unwrap_err(),
        AdminClient::new(with_userinfo.clone(), password_credentials(), &config).unwrap_err(),
        AdminClient::from_client(with_userinfo.clone(), password_credentials(), stack.clone())
            .unwrap_err(),
    ];
    for refusal in &refusals {
        assert!(refusal.to_string().contains("user-info"), "{refusal}");
        texts.push(format!("{refusal} {refusal:?}"));
    }
    texts.push(format!(
        "{:?}",
        KeycloakTokenSource::new(&with_userinfo, password_credentials())
    ));
    // A proxy with credentials that cannot be reached: nothing arrives at the server.
    let mut proxied = config.clone();
    proxied.proxy = Some(
        ProxyUrl::parse(&format!(
            "http://user:{CANARY}-proxy@127.0.0.1:{}",
            closed_port()
        ))
        .unwrap(),
    );
    texts.push(format!("{proxied:?}"));
    server.clear_rules();
    let arrived = server.requests();
    let through_proxy = AdminClient::builder(server.url(), password_credentials())
        .config(proxied.clone())
        .metrics(metrics.clone())
        .build()
        .unwrap();
    texts.push(format!("{through_proxy:?}"));
    let error = runtime
        .block_on(through_proxy.namespace("team-a").realms().get(REALM))
        .unwrap_err();
    assert!(matches!(error, Error::Auth(_)), "{error:?}");
    errors.push(error);
    assert_eq!(server.requests(), arrived, "nothing went around the proxy");
    drop(server);

    // ---- blocking: success and failure ----
    let server = runtime.block_on(canary_server());
    let blocking = pacer_admin::blocking::AdminClient::builder(server.url(), secret_credentials())
        .config(config.clone())
        .metrics(metrics.clone());
    texts.push(format!("{blocking:?}"));
    let blocking = blocking.build().unwrap();
    let team = blocking.namespace("team-b");
    let clients = team.clients(REALM);
    texts.push(format!("{blocking:?} {team:?} {clients:?}"));
    assert!(team.realms().get(REALM).unwrap().is_some());
    assert!(team.realms().get(REALM).unwrap().is_some());
    let secret = clients.secret("c-1").unwrap();
    assert!(secret.value.is_some());
    texts.push(format!("{secret:?}"));
    assert!(!clients.create(&client_rep).unwrap().is_empty());
    team.users(REALM)
        .reset_password("u-1", &credential)
        .unwrap();
    assert_eq!(
        token_bodies(&server),
        vec![
            format!(
                "client_id=operator&grant_type=client_credentials&client_secret={CANARY}-secret"
            )
            .len(),
            refresh_form_len("operator", Some(&format!("{CANARY}-secret"))),
        ],
        "a grant, then the refresh grant after the 401"
    );
    server.clear_rules();
    server.rule(Rule::new(
        secret_path(),
        respond(StatusCode::INTERNAL_SERVER_ERROR, secret_answer()),
    ));
    let error = clients.regenerate_secret("c-1").unwrap_err();
    assert!(
        matches!(&error, Error::Server { excerpt, .. } if excerpt == REDACTED_EXCERPT),
        "{error:?}"
    );
    errors.push(error);
    // A refused and a stalled login, each for a fresh client.
    for behaviour in [Behaviour::UnauthorizedForever, Behaviour::StallHead] {
        let stalls = behaviour == Behaviour::StallHead;
        server.clear_rules();
        server.rule(Rule::new(keycloak_token_path(REALM), behaviour));
        let refused =
            pacer_admin::blocking::AdminClient::builder(server.url(), secret_credentials())
                .config(config.clone())
                .metrics(metrics.clone())
                .build()
                .unwrap();
        let error = refused.namespace("team-b").realms().get(REALM).unwrap_err();
        assert!(
            matches!(&error, Error::Auth(auth) if auth.is_refused() != stalls),
            "{error:?}"
        );
        errors.push(error);
    }
    let refusal = pacer_admin::blocking::AdminClient::builder(
        format!("https://operator:{CANARY}-url@kc.example"),
        secret_credentials(),
    )
    .build()
    .unwrap_err();
    texts.push(format!("{refusal} {refusal:?}"));
    let through_proxy =
        pacer_admin::blocking::AdminClient::builder(server.url(), secret_credentials())
            .config(proxied)
            .metrics(metrics.clone())
            .build()
            .unwrap();
    texts.push(format!("{through_proxy:?}"));
    let error = through_proxy
        .namespace("team-b")
        .realms()
        .get(REALM)
        .unwrap_err();
    assert!(matches!(error, Error::Auth(_)), "{error:?}");
    errors.push(error);
    drop(server);

    // ---- nothing shows the canary ----
    for error in &errors {
        // The whole chain of causes, as a report would print it.
        let mut shown = format!("{error} {error:?}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            shown.push_str(&format!(" / {cause} {cause:?}"));
            source = cause.source();
        }
        texts.push(shown);
    }
    let mut metrics_text = String::new();
    prometheus_client::encoding::text::encode(&mut metrics_text, &registry).unwrap();
    assert!(metrics_text.contains("team-a"), "{metrics_text}");
    let logs = captured.text();
    // The retries of the 500s were logged, and the token requests.
    assert!(logs.contains("retrying"), "{logs}");
    assert!(logs.contains("token"), "{logs}");
    let leaks: Vec<&String> = texts
        .iter()
        .chain([&metrics_text, &logs])
        .filter(|text| text.contains(CANARY))
        .collect();
    assert!(leaks.is_empty(), "the canary leaked: {leaks:#?}");
}
