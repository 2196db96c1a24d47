//! Keycloak authentication as a tower layer: [`AuthLayer`] puts a bearer token on every
//! request, getting it from the token endpoint through the same stack.
//!
//! - Grants: client credentials (a confidential client with a service account) or password
//!   (`admin-cli` and an admin user), see [`Credentials`].
//! - The token is cached and shared by every clone; it is renewed before it expires (a tenth
//!   of its lifetime, at most 30 s, ahead), with the refresh token when the grant gave one
//!   (Keycloak's client-credentials grant does not), else with a new grant. One renewal runs at
//!   a time; concurrent callers wait for it.
//! - A `401` answer gets one renewal and one replay of the request; a second `401` is returned.
//! - Token requests go through the inner service, i.e. the pacer stack: the global rate limit,
//!   retries (they are marked [`Idempotent`](pacer::retry::Idempotent): a grant can be
//!   repeated safely) and metrics. They are made for their own namespace, [`TOKEN_NAMESPACE`],
//!   not the caller's: every tenant waits for a renewal, so it must not queue behind one
//!   tenant's exhausted quota.
//! - Secrets live in [`Secret`] and a sensitive `Authorization` header: `Debug` never shows
//!   them, and no error carries them.
//!
//! ```
//! use pacer_admin::auth::{AuthLayer, Credentials};
//! let layer = AuthLayer::new(
//!     "https://keycloak.example",
//!     Credentials::client_credentials("master", "operator", "s3cr3t"),
//! );
//! assert!(!format!("{layer:?}").contains("s3cr3t"));
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use pacer::{BoxError, Namespace};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

/// The namespace token requests are made for (rate limit and metrics).
pub const TOKEN_NAMESPACE: &str = "keycloak-token";

/// A secret string (password, client secret, token): `Debug` and `Display` print
/// `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// How the client authenticates: the realm holding the credentials and the grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    realm: String,
    client_id: String,
    grant: Grant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Grant {
    ClientCredentials { secret: Secret },
    Password { username: String, password: Secret },
}

impl Credentials {
    /// The client-credentials grant of a confidential client with a service account that
    /// has the admin roles it needs.
    pub fn client_credentials(
        realm: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Credentials {
            realm: realm.into(),
            client_id: client_id.into(),
            grant: Grant::ClientCredentials {
                secret: client_secret.into(),
            },
        }
    }

    /// The password grant of an admin user, with the public `admin-cli` client (change it
    /// with [`Credentials::with_client_id`]).
    pub fn password(
        realm: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Credentials {
            realm: realm.into(),
            client_id: "admin-cli".to_owned(),
            grant: Grant::Password {
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

    fn grant_form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", &self.client_id);
        match &self.grant {
            Grant::ClientCredentials { secret } => {
                form.append_pair("grant_type", "client_credentials");
                form.append_pair("client_secret", secret.expose());
            }
            Grant::Password { username, password } => {
                form.append_pair("grant_type", "password");
                form.append_pair("username", username);
                form.append_pair("password", password.expose());
            }
        }
        form.finish()
    }

    fn refresh_form(&self, refresh_token: &Secret) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", &self.client_id);
        form.append_pair("grant_type", "refresh_token");
        form.append_pair("refresh_token", refresh_token.expose());
        if let Grant::ClientCredentials { secret } = &self.grant {
            form.append_pair("client_secret", secret.expose());
        }
        form.finish()
    }
}

/// The token endpoint refused a grant, or answered something that is not a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError {
    /// The token endpoint's status (`None`: the answer was not a token).
    pub status: Option<StatusCode>,
    /// The OAuth `error` (`invalid_client`, `invalid_grant`, ...), or what went wrong.
    pub error: String,
    /// The OAuth `error_description`, if any.
    pub description: Option<String>,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "token endpoint answered {status}: {}", self.error)?,
            None => write!(f, "token endpoint: {}", self.error)?,
        }
        match &self.description {
            Some(description) => write!(f, " ({description})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for AuthError {}

/// The tower layer; see the [module docs](self).
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("token_url", &self.state.token_url)
            .field("credentials", &self.state.credentials)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// Authenticates against `{base_url}/realms/{realm}/protocol/openid-connect/token`.
    pub fn new(base_url: &str, credentials: Credentials) -> Self {
        let mut token_url = base_url.trim_end_matches('/').to_owned();
        token_url.push_str("/realms/");
        crate::core::push_segment(&mut token_url, credentials.realm());
        token_url.push_str("/protocol/openid-connect/token");
        AuthLayer {
            state: Arc::new(AuthState {
                token_url,
                credentials,
                cache: Mutex::new(None),
            }),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service [`AuthLayer`] builds.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    state: Arc<AuthState>,
}

impl<S> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("token_url", &self.state.token_url)
            .finish_non_exhaustive()
    }
}

/// The response future of [`Auth`]. Boxed: it awaits the token, the request and maybe a
/// replay, which an `async` block says far more plainly than a hand-written state machine.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send + 'static>>;

impl<S> Service<Request<Full<Bytes>>> for Auth<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<Bytes>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Every send below waits for readiness itself (`oneshot`): a token request and the
        // request proper each pay their own rate-limit slot.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> ResponseFuture {
        let inner = self.inner.clone();
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let namespace = Namespace::new(TOKEN_NAMESPACE);
            let (parts, body) = request.into_parts();
            let (bearer, generation) = state.bearer(inner.clone(), &namespace, None).await?;
            let mut first = Request::from_parts(parts.clone(), body.clone());
            first.headers_mut().insert(AUTHORIZATION, bearer);
            let response = inner.clone().oneshot(first).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            // The token was revoked or expired early: renew once and replay once.
            let (bearer, _) = state
                .bearer(inner.clone(), &namespace, Some(generation))
                .await?;
            let mut replay = Request::from_parts(parts, body);
            replay.headers_mut().insert(AUTHORIZATION, bearer);
            inner.oneshot(replay).await
        })
    }
}

struct AuthState {
    token_url: String,
    credentials: Credentials,
    cache: Mutex<Option<Token>>,
}

struct Token {
    /// `Bearer ...`, marked sensitive.
    bearer: HeaderValue,
    /// Renew from this instant on.
    renew_at: Instant,
    refresh: Option<RefreshToken>,
    /// Tells a token apart from the one that replaced it (so a 401 renews only once).
    generation: u64,
}

struct RefreshToken {
    value: Secret,
    /// `None`: Keycloak gave no lifetime (`refresh_expires_in: 0`); try it until refused.
    expires_at: Option<Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_expires_in: u64,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// How long before expiry a token is renewed: a tenth of its lifetime, at most 30 s.
fn renew_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(30))
}

impl AuthState {
    /// The current bearer header; renews when the cached token is due, or when it is still
    /// the token of generation `stale` (a 401 came back with it).
    async fn bearer<S>(
        &self,
        inner: S,
        namespace: &Namespace,
        stale: Option<u64>,
    ) -> Result<(HeaderValue, u64), BoxError>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<Bytes>, Error = BoxError> + Clone,
    {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(token) = cache.as_ref() {
            let rejected = stale == Some(token.generation);
            if !rejected && now < token.renew_at {
                return Ok((token.bearer.clone(), token.generation));
            }
        }
        let previous = cache.take();
        let generation = previous.as_ref().map_or(0, |t| t.generation + 1);
        let refresh = previous
            .and_then(|t| t.refresh)
            .filter(|r| r.expires_at.is_none_or(|at| now < at));
        let token = match refresh {
            Some(refresh) => {
                let form = self.credentials.refresh_form(&refresh.value);
                match self
                    .request(inner.clone(), namespace, form, generation)
                    .await
                {
                    Ok(token) => token,
                    // An expired or revoked refresh token: start over with the grant.
                    Err(error) if is_refused_grant(&error) => {
                        let form = self.credentials.grant_form();
                        self.request(inner.clone(), namespace, form, generation)
                            .await?
                    }
                    Err(error) => return Err(error),
                }
            }
            None => {
                let form = self.credentials.grant_form();
                self.request(inner.clone(), namespace, form, generation)
                    .await?
            }
        };
        let result = (token.bearer.clone(), token.generation);
        *cache = Some(token);
        Ok(result)
    }

    async fn request<S>(
        &self,
        inner: S,
        namespace: &Namespace,
        form: String,
        generation: u64,
    ) -> Result<Token, BoxError>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<Bytes>, Error = BoxError> + Clone,
    {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&self.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))?;
        request.extensions_mut().insert(namespace.clone());
        // A grant changes nothing on the server that a repeat would duplicate.
        request.extensions_mut().insert(pacer::retry::Idempotent);
        let sent_at = Instant::now();
        let response = inner.oneshot(request).await?;
        let status = response.status();
        if !status.is_success() {
            let refusal: Option<OAuthError> = serde_json::from_slice(response.body()).ok();
            return Err(Box::new(AuthError {
                status: Some(status),
                error: refusal
                    .as_ref()
                    .map(|r| r.error.clone())
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| crate::error::excerpt(response.body())),
                description: refusal.and_then(|r| r.error_description),
            }));
        }
        let token: TokenResponse = serde_json::from_slice(response.body()).map_err(|_| {
            Box::new(AuthError {
                status: None,
                error: "the answer is not a token response".to_owned(),
                description: None,
            })
        })?;
        let mut bearer =
            HeaderValue::try_from(format!("Bearer {}", token.access_token)).map_err(|_| {
                Box::new(AuthError {
                    status: None,
                    error: "the access token is not a valid header value".to_owned(),
                    description: None,
                })
            })?;
        bearer.set_sensitive(true);
        let lifetime = Duration::from_secs(token.expires_in);
        // Counted from when the request left: time spent in the stack shortens the lifetime.
        let renew_at = sent_at + lifetime.saturating_sub(renew_margin(lifetime));
        let refresh = token.refresh_token.map(|value| RefreshToken {
            value: Secret(value),
            expires_at: (token.refresh_expires_in > 0).then(|| {
                let lifetime = Duration::from_secs(token.refresh_expires_in);
                sent_at + lifetime.saturating_sub(renew_margin(lifetime))
            }),
        });
        Ok(Token {
            bearer,
            renew_at,
            refresh,
            generation,
        })
    }
}

fn is_refused_grant(error: &BoxError) -> bool {
    error.downcast_ref::<AuthError>().is_some_and(|e| {
        matches!(
            e.status,
            Some(StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED)
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scripted Keycloak: token grants count up; `/api` accepts only the newest token
    /// unless `revoke_first` is set, and then refuses the first token once.
    fn server(
        grants: Arc<AtomicU32>,
        lifetime: u64,
        with_refresh: bool,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Bytes>,
        Error = BoxError,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let grants = Arc::clone(&grants);
            async move {
                use http_body_util::BodyExt;
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
                    return Ok::<_, BoxError>(Response::new(Bytes::from(json.to_string())));
                }
                let newest = grants.load(Ordering::SeqCst);
                let ok = auth.is_some_and(|a| a.ends_with(&format!("-{newest}")));
                let mut response = Response::new(Bytes::from(if ok { "ok" } else { "no" }));
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
        let layer = AuthLayer::new(
            "http://kc.invalid",
            Credentials::client_credentials("master", "c", "s"),
        );
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
        let layer = AuthLayer::new(
            "http://kc.invalid",
            Credentials::password("master", "admin", "pw"),
        );
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
        let layer = AuthLayer::new(
            "http://kc.invalid",
            Credentials::client_credentials("master", "c", "s"),
        );
        let service = layer.layer(server(Arc::clone(&grants), 300, false));
        service.clone().oneshot(request()).await.unwrap();
        // Somebody else got a token: ours is now refused.
        grants.fetch_add(1, Ordering::SeqCst);
        let response = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "renewed and replayed");
        assert_eq!(grants.load(Ordering::SeqCst), 3);

        // A server that refuses every token: one renewal, then the 401 is returned.
        let always = tower::service_fn(|request: Request<Full<Bytes>>| async move {
            let token = request.uri().path().ends_with("/token");
            let mut response = Response::new(Bytes::from(if token {
                r#"{"access_token":"t","expires_in":300}"#
            } else {
                ""
            }));
            if !token {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
            }
            Ok::<_, BoxError>(response)
        });
        let service = AuthLayer::new(
            "http://kc.invalid",
            Credentials::client_credentials("master", "c", "s"),
        )
        .layer(always);
        let response = service.oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let credentials = Credentials::password("master", "admin", "hunter2");
        assert!(!format!("{credentials:?}").contains("hunter2"));
        let credentials = Credentials::client_credentials("master", "c", "s3cr3t-value");
        let layer = AuthLayer::new("http://kc.invalid", credentials);
        assert!(!format!("{layer:?}").contains("s3cr3t-value"));
        let mut bearer = HeaderValue::from_static("Bearer abc");
        bearer.set_sensitive(true);
        assert!(!format!("{bearer:?}").contains("abc"));
    }
}
