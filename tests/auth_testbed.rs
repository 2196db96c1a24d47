//! The two protocols pacer-admin and pacer-inventory port onto `pacer::auth`, written as
//! `TokenSource`s and run over `pacer::client::Client` against the testbed's fake Keycloak
//! and Infrahub: Keycloak's password and client-credentials grants, Infrahub's login, its
//! refresh after a `401`, and its API key.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, Request, StatusCode};
use http_body_util::Full;
use pacer::Namespace;
use pacer::auth::{
    AuthError, BearerAuthLayer, ExposeSecret, Grant, SecretString, TokenSource, api_key_layer,
};
use pacer::client::Client;
use pacer::config::Config;
use pacer_testbed::Testbed;
use tower::{Layer, ServiceExt};

/// Keycloak's token endpoint: the client-credentials or password grant, and the
/// `refresh_token` grant.
struct Keycloak {
    token_url: String,
    client_id: String,
    grant: KeycloakGrant,
}

enum KeycloakGrant {
    ClientCredentials {
        secret: SecretString,
    },
    Password {
        username: String,
        password: SecretString,
    },
}

impl TokenSource for Keycloak {
    fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError> {
        // The testbed's values are plain alphanumerics; a real source form-encodes them.
        let form = match (grant, &self.grant) {
            (Grant::Refresh(refresh), _) => format!(
                "grant_type=refresh_token&client_id={}&refresh_token={}",
                self.client_id,
                refresh.expose_secret()
            ),
            (_, KeycloakGrant::ClientCredentials { secret }) => format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                self.client_id,
                secret.expose_secret()
            ),
            (_, KeycloakGrant::Password { username, password }) => format!(
                "grant_type=password&client_id={}&username={username}&password={}",
                self.client_id,
                password.expose_secret()
            ),
        };
        Request::post(&self.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(form))
            .map_err(|_| AuthError::request("the token URL is not a valid URI"))
    }

    // A grant changes nothing a repeat would duplicate.
    fn is_repeatable(&self, _: &Grant<'_>) -> bool {
        true
    }
}

/// Infrahub: `POST /api/auth/login` with `{username, password}`, `POST /api/auth/refresh`
/// with the refresh token as bearer.
struct Infrahub {
    address: String,
    username: String,
    password: SecretString,
}

impl TokenSource for Infrahub {
    fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError> {
        let request = match grant {
            Grant::Refresh(refresh) => Request::post(format!("{}/api/auth/refresh", self.address))
                .header(AUTHORIZATION, format!("Bearer {}", refresh.expose_secret()))
                .body(Bytes::new()),
            _ => Request::post(format!("{}/api/auth/login", self.address))
                .header(CONTENT_TYPE, "application/json")
                .body(Bytes::from(
                    serde_json::json!({
                        "username": self.username,
                        "password": self.password.expose_secret(),
                    })
                    .to_string(),
                )),
        };
        request.map_err(|_| AuthError::request("the address is not a valid URI"))
    }
}

fn get(url: String, namespace: &str) -> Request<Full<Bytes>> {
    let mut request = Request::get(url).body(Full::default()).unwrap();
    request
        .extensions_mut()
        .insert(Namespace::new(namespace.to_owned()));
    request
}

fn graphql(testbed: &Testbed) -> Request<Full<Bytes>> {
    let body = r#"{"query":"query { InfrahubInfo { version } }"}"#;
    let mut request = Request::post(format!("{}/graphql/main", testbed.infrahub_url()))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::from(body))
        .unwrap();
    request.extensions_mut().insert(Namespace::new("team-a"));
    request
}

#[tokio::test]
async fn keycloak_grants_through_the_client_stack() {
    let testbed = Testbed::builder().start().await.unwrap();
    let creds = testbed.credentials().clone();
    let token_url = format!(
        "{}/realms/{}/protocol/openid-connect/token",
        testbed.keycloak_url(),
        creds.keycloak_realm
    );
    let grants = [
        KeycloakGrant::ClientCredentials {
            secret: SecretString::from(creds.keycloak_client_secret.clone()),
        },
        KeycloakGrant::Password {
            username: creds.keycloak_admin_user.clone(),
            password: SecretString::from(creds.keycloak_admin_password.clone()),
        },
    ];
    let client_ids = [creds.keycloak_client_id.clone(), "admin-cli".to_owned()];
    for (grant, client_id) in grants.into_iter().zip(client_ids) {
        let source = Keycloak {
            token_url: token_url.clone(),
            client_id,
            grant,
        };
        let auth = BearerAuthLayer::builder(source)
            .namespace(Namespace::new("keycloak-token"))
            .build();
        let client = auth.layer(Client::from_config(&Config::default()).unwrap());
        let url = format!("{}/admin/serverinfo", testbed.keycloak_url());
        for tenant in ["team-a", "team-b"] {
            let response = client
                .clone()
                .oneshot(get(url.clone(), tenant))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    let token_path = "/realms/master/protocol/openid-connect/token";
    assert_eq!(
        testbed.stats().count(token_path, 200),
        2,
        "one grant per layer"
    );
    assert_eq!(testbed.stats().count("/admin/serverinfo", 200), 4);

    // Wrong credentials: the endpoint's refusal, typed.
    let source = Keycloak {
        token_url,
        client_id: creds.keycloak_client_id.clone(),
        grant: KeycloakGrant::ClientCredentials {
            secret: SecretString::from("wrong"),
        },
    };
    let client =
        BearerAuthLayer::new(source).layer(Client::from_config(&Config::default()).unwrap());
    let url = format!("{}/admin/serverinfo", testbed.keycloak_url());
    let error = client.oneshot(get(url, "team-a")).await.unwrap_err();
    let error = error.downcast_ref::<AuthError>().unwrap();
    assert!(error.is_refused(), "{error:?}");
    assert_eq!(error.refusal().unwrap().error(), Some("invalid_client"));
    assert_eq!(
        testbed.stats().count("/admin/serverinfo", 200),
        4,
        "no call went out"
    );
}

#[tokio::test(start_paused = true)]
async fn infrahub_login_then_refresh_after_a_401() {
    let testbed = Testbed::builder()
        .token_lifetime(Duration::from_secs(3))
        .refresh_lifetime(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let creds = testbed.credentials().clone();
    let source = Infrahub {
        address: testbed.infrahub_url().to_owned(),
        username: creds.infrahub_user.clone(),
        password: SecretString::from(creds.infrahub_password.clone()),
    };
    let auth = BearerAuthLayer::builder(source)
        .namespace(Namespace::new("infrahub-login"))
        .build();
    let client = auth.layer(Client::from_config(&Config::default()).unwrap());

    for _ in 0..2 {
        let response = client.clone().oneshot(graphql(&testbed)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Infrahub states no lifetime: the expired token is refused, refreshed and replayed.
    tokio::time::advance(Duration::from_secs(4)).await;
    let response = client.clone().oneshot(graphql(&testbed)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sequence: Vec<_> = testbed
        .infrahub_requests()
        .into_iter()
        .map(|r| (r.path, r.auth))
        .collect();
    let expected = [
        ("/api/auth/login", "none"),
        ("/graphql/main", "bearer"),
        ("/graphql/main", "bearer"),
        ("/graphql/main", "bearer"),
        ("/api/auth/refresh", "bearer"),
        ("/graphql/main", "bearer"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(p, a)| ((*p).to_owned(), *a))
        .collect();
    assert_eq!(sequence, expected);
    assert_eq!(testbed.stats().count("/graphql/main", 401), 1);
}

#[tokio::test]
async fn infrahub_api_key_header() {
    let testbed = Testbed::builder().start().await.unwrap();
    let key = SecretString::from(testbed.credentials().infrahub_api_key.clone());
    let layer = api_key_layer(HeaderName::from_static("x-infrahub-key"), &key).unwrap();
    let client = layer.layer(Client::from_config(&Config::default()).unwrap());
    let response = client.oneshot(graphql(&testbed)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let recorded = testbed.infrahub_requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].auth, "api-key");
}
