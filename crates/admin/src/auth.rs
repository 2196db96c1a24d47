//! Keycloak authentication: [`KeycloakTokenSource`], the [`TokenSource`] of Keycloak's token
//! endpoint, used through pacer's [`BearerAuthLayer`].
//!
//! - Grants: client credentials (a confidential client with a service account) or password
//!   (`admin-cli` and an admin user), see [`Credentials`]; renewals use the refresh token
//!   when the grant gave one (Keycloak's client-credentials grant does not).
//! - The token endpoint is `{base}/realms/{realm}/protocol/openid-connect/token`.
//! - Everything else is [`BearerAuthLayer`]'s: the token is cached and shared by every clone,
//!   renewed before it expires, one token request at a time (single flight, a failure shared
//!   by every waiter), a `401` renews once and replays once, lifetimes capped at
//!   [`MAX_TOKEN_LIFETIME`](pacer::auth::MAX_TOKEN_LIFETIME) (a server's `expires_in` of
//!   `u64::MAX` cannot overflow the clock), answers of the wrong shape are
//!   [`AuthError::InvalidAnswer`].
//! - Token requests go through the pacer stack below the layer (global rate limit, retries,
//!   metrics) for their own namespace, [`TOKEN_NAMESPACE`], never the caller's: every tenant
//!   waits for a renewal, so it must not queue behind one tenant's exhausted quota. A grant
//!   changes nothing on the server that a repeat would duplicate, so they are retried.
//! - Secrets are [`SecretString`]s and the `Authorization` header is marked sensitive:
//!   `Debug` never shows them, and no error carries them.
//!
//! ```
//! use pacer_admin::auth::{Credentials, KeycloakTokenSource};
//! let layer = KeycloakTokenSource::new(
//!     "https://keycloak.example",
//!     Credentials::client_credentials("master", "operator", "s3cr3t"),
//! )
//! .layer();
//! assert!(!format!("{layer:?}").contains("s3cr3t"));
//! ```

use std::fmt;

use bytes::Bytes;
use http::Request;
use http::header::{ACCEPT, CONTENT_TYPE};
use pacer::Namespace;
use pacer::auth::{BearerAuthLayer, ExposeSecret, Grant, TokenSource};

pub use pacer::auth::{AuthError, SecretString};

use crate::path::push_segment;
use crate::redact::url_without_userinfo;

/// The namespace token requests are made for (rate limit and metrics).
pub const TOKEN_NAMESPACE: &str = "keycloak-token";

/// How the client authenticates: the realm holding the credentials and the grant. `Debug`
/// shows the realm, the client id and the username, never a secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    realm: String,
    client_id: String,
    grant: CredentialGrant,
}

#[derive(Clone, Debug)]
enum CredentialGrant {
    ClientCredentials {
        secret: SecretString,
    },
    Password {
        username: String,
        password: SecretString,
    },
}

impl Credentials {
    /// The client-credentials grant of a confidential client with a service account that
    /// has the admin roles it needs. The secret may be a `&str`, a `String` or a
    /// [`SecretString`].
    pub fn client_credentials(
        realm: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        Credentials {
            realm: realm.into(),
            client_id: client_id.into(),
            grant: CredentialGrant::ClientCredentials {
                secret: client_secret.into(),
            },
        }
    }

    /// The password grant of an admin user, with the public `admin-cli` client (change it
    /// with [`Credentials::with_client_id`]).
    pub fn password(
        realm: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        Credentials {
            realm: realm.into(),
            client_id: "admin-cli".to_owned(),
            grant: CredentialGrant::Password {
                username: username.into(),
                password: password.into(),
            },
        }
    }

    /// Uses another client id for the grant.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// The realm the token is requested from.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The client id the grant is made with.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The form of `grant` (`application/x-www-form-urlencoded`).
    fn form(&self, grant: &Grant<'_>) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", &self.client_id);
        match (grant, &self.grant) {
            (Grant::Refresh(refresh_token), grant) => {
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh_token.expose_secret());
                if let CredentialGrant::ClientCredentials { secret } = grant {
                    form.append_pair("client_secret", secret.expose_secret());
                }
            }
            (_, CredentialGrant::ClientCredentials { secret }) => {
                form.append_pair("grant_type", "client_credentials");
                form.append_pair("client_secret", secret.expose_secret());
            }
            (_, CredentialGrant::Password { username, password }) => {
                form.append_pair("grant_type", "password");
                form.append_pair("username", username);
                form.append_pair("password", password.expose_secret());
            }
        }
        form.finish()
    }
}

/// Keycloak's token endpoint as a [`TokenSource`]: the password, client-credentials and
/// refresh-token grants at `{base}/realms/{realm}/protocol/openid-connect/token`, OAuth 2.0
/// JSON answers and refusals (pacer's defaults).
pub struct KeycloakTokenSource {
    token_url: String,
    credentials: Credentials,
}

impl fmt::Debug for KeycloakTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakTokenSource")
            .field("token_url", &url_without_userinfo(&self.token_url))
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl KeycloakTokenSource {
    /// The token endpoint of `credentials`' realm on the Keycloak at `base_url` (a trailing
    /// `/` is ignored; the realm is one percent-encoded path segment).
    pub fn new(base_url: &str, credentials: Credentials) -> Self {
        let mut token_url = base_url.trim_end_matches('/').to_owned();
        token_url.push_str("/realms/");
        push_segment(&mut token_url, credentials.realm());
        token_url.push_str("/protocol/openid-connect/token");
        KeycloakTokenSource {
            token_url,
            credentials,
        }
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The bearer-token layer over this source, its token requests made for
    /// [`TOKEN_NAMESPACE`].
    pub fn layer(self) -> BearerAuthLayer {
        BearerAuthLayer::builder(self)
            .namespace(Namespace::new(TOKEN_NAMESPACE))
            .build()
    }
}

impl TokenSource for KeycloakTokenSource {
    fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError> {
        Request::post(self.token_url.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Bytes::from(self.credentials.form(grant)))
            .map_err(|_| AuthError::request("the token URL is not a valid URI"))
    }

    // A grant changes nothing on the server that a repeat would duplicate.
    fn is_repeatable(&self, _: &Grant<'_>) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use http::header::AUTHORIZATION;
    use http::{HeaderValue, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use pacer::BoxError;
    use tower::{Layer, Service, ServiceExt};

    fn layer(credentials: Credentials) -> BearerAuthLayer {
        KeycloakTokenSource::new("http://kc.invalid", credentials).layer()
    }

    /// A scripted Keycloak: token grants count up; `/api` accepts only the newest token.
    fn server(
        grants: Arc<AtomicU32>,
        lifetime: u64,
        with_refresh: bool,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = BoxError,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let grants = Arc::clone(&grants);
            async move {
                let path = request.uri().path().to_owned();
                let auth = request
                    .headers()
                    .get(AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let body = String::from_utf8(body.to_vec()).unwrap();
                if path.ends_with("/token") {
                    let n = grants.fetch_add(1, Ordering::SeqCst) + 1;
                    let kind = if body.contains("grant_type=refresh_token") {
                        "refreshed"
                    } else {
                        "granted"
                    };
                    let mut json = serde_json::json!({
                        "access_token": format!("{kind}-{n}"),
                        "expires_in": lifetime,
                    });
                    if with_refresh {
                        json["refresh_token"] = format!("refresh-{n}").into();
                        json["refresh_expires_in"] = 1800.into();
                    }
                    return Ok::<_, BoxError>(Response::new(Full::from(json.to_string())));
                }
                let newest = grants.load(Ordering::SeqCst);
                let ok = auth.is_some_and(|a| a.ends_with(&format!("-{newest}")));
                let mut response = Response::new(Full::from(if ok { "ok" } else { "no" }));
                if !ok {
                    *response.status_mut() = StatusCode::UNAUTHORIZED;
                }
                Ok(response)
            }
        })
    }

    fn request() -> Request<Full<Bytes>> {
        Request::get("http://kc.invalid/api")
            .body(Full::default())
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn caches_then_renews_before_expiry() {
        let grants = Arc::new(AtomicU32::new(0));
        let layer = layer(Credentials::client_credentials("master", "c", "s"));
        let service = layer.layer(server(Arc::clone(&grants), 300, false));
        for _ in 0..3 {
            let response = service.clone().oneshot(request()).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(grants.load(Ordering::SeqCst), 1, "one grant, cached");
        // 300 s tokens are renewed 30 s early.
        tokio::time::advance(Duration::from_secs(269)).await;
        service.clone().oneshot(request()).await.unwrap();
        assert_eq!(grants.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        service.clone().oneshot(request()).await.unwrap();
        // Inside the margin the call goes on with the valid token while the renewal runs
        // as a task of its own: let it finish.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(grants.load(Ordering::SeqCst), 2, "renewed before expiry");
    }

    #[tokio::test(start_paused = true)]
    async fn uses_the_refresh_token_when_there_is_one() {
        let grants = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let inner = server(Arc::clone(&grants), 60, true);
        let seen_in = Arc::clone(&seen);
        let recorded = tower::ServiceBuilder::new()
            .map_request(move |request: Request<Full<Bytes>>| {
                seen_in
                    .lock()
                    .unwrap()
                    .push(request.uri().path().to_owned());
                request
            })
            .service(inner);
        let layer = layer(Credentials::password("master", "admin", "pw"));
        let service = layer.layer(recorded);
        service.clone().oneshot(request()).await.unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        let response = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(grants.load(Ordering::SeqCst), 2);
        assert_eq!(seen.lock().unwrap().len(), 4, "token, api, token, api");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_renews_once_and_replays_once() {
        let grants = Arc::new(AtomicU32::new(0));
        let service = layer(Credentials::client_credentials("master", "c", "s")).layer(server(
            Arc::clone(&grants),
            300,
            false,
        ));
        service.clone().oneshot(request()).await.unwrap();
        // Somebody else got a token: ours is now refused.
        grants.fetch_add(1, Ordering::SeqCst);
        let response = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "renewed and replayed");
        assert_eq!(grants.load(Ordering::SeqCst), 3);

        // A server that refuses every token: one renewal, then the 401 is returned.
        let always = tower::service_fn(|request: Request<Full<Bytes>>| async move {
            let token = request.uri().path().ends_with("/token");
            let mut response = Response::new(Full::<Bytes>::from(if token {
                r#"{"access_token":"t","expires_in":300}"#
            } else {
                ""
            }));
            if !token {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
            }
            Ok::<_, BoxError>(response)
        });
        let service = layer(Credentials::client_credentials("master", "c", "s")).layer(always);
        let response = service.oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let credentials = Credentials::password("master", "admin", "hunter2");
        assert!(!format!("{credentials:?}").contains("hunter2"));
        let credentials = Credentials::client_credentials("master", "c", "s3cr3t-value");
        let source = KeycloakTokenSource::new("http://kc.invalid", credentials);
        assert!(!format!("{source:?}").contains("s3cr3t-value"));
        let layer = source.layer();
        assert!(!format!("{layer:?}").contains("s3cr3t-value"));
        let mut bearer = HeaderValue::from_static("Bearer abc");
        bearer.set_sensitive(true);
        assert!(!format!("{bearer:?}").contains("abc"));
    }

    #[test]
    fn forms_are_encoded_and_the_realm_is_one_segment() {
        let source = KeycloakTokenSource::new(
            "http://kc.invalid/",
            Credentials::password("a/b", "ad&min", "p=w"),
        );
        assert_eq!(
            source.token_url(),
            "http://kc.invalid/realms/a%2Fb/protocol/openid-connect/token"
        );
        let request = source.token_request(&Grant::Credentials).unwrap();
        assert_eq!(
            request.body().as_ref(),
            b"client_id=admin-cli&grant_type=password&username=ad%26min&password=p%3Dw"
        );
        let refresh = SecretString::from("r-1");
        let confidential = KeycloakTokenSource::new(
            "http://kc.invalid",
            Credentials::client_credentials("master", "c", "s"),
        );
        let request = confidential
            .token_request(&Grant::Refresh(&refresh))
            .unwrap();
        assert_eq!(
            request.body().as_ref(),
            b"client_id=c&grant_type=refresh_token&refresh_token=r-1&client_secret=s"
        );
    }
}
