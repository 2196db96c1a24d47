//! [`TokenSource`]: the one thing an API writes, how to obtain a token from its endpoint.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use secrecy::SecretString;

use super::error::{AuthError, InvalidAnswer, Refusal};

/// What the layer asks a [`TokenSource`] for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Grant<'a> {
    /// A token from the configured credentials: a login, an OAuth password or
    /// client-credentials grant.
    Credentials,
    /// A token from the refresh token of an earlier answer (OAuth's `refresh_token` grant, a
    /// `/refresh` endpoint). Asked for only when an answer gave a refresh token that has not
    /// expired; when the endpoint refuses it (`400`, `401`, `403`), the layer drops it and
    /// asks for [`Grant::Credentials`] in the same token request.
    Refresh(&'a SecretString),
}

impl Grant<'_> {
    /// `"credentials"` or `"refresh"`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Grant::Credentials => "credentials",
            Grant::Refresh(_) => "refresh",
        }
    }
}

/// How an API grants tokens; see the [module docs](super) for an example.
///
/// The layer calls it from its token request, one at a time: it builds the request
/// ([`token_request`](Self::token_request)), sends it through the inner service (the pacer
/// stack) under the layer's token namespace, reads the body (capped), and hands a success
/// answer to [`parse_token`](Self::parse_token) or a refusal to
/// [`refusal`](Self::refusal).
///
/// The defaults read OAuth 2.0 JSON (RFC 6749 §5.1 and §5.2), which also covers answers that
/// carry only `access_token` (and `refresh_token`).
///
/// Keep credentials in [`SecretString`]s; never put them in the token URL (URLs are logged),
/// and do not derive `Debug` over a `String` that holds one.
pub trait TokenSource: Send + Sync + 'static {
    /// The request that obtains a token for `grant`. Its body is converted into the inner
    /// service's request body type (`From<Bytes>`, e.g. `Full<Bytes>`); the layer sets its
    /// namespace and the [`Idempotent`](crate::retry::Idempotent) mark, whatever extensions
    /// it carries.
    fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError>;

    /// Whether sending the request for `grant` twice is harmless, so the retry layer below
    /// may repeat it after a transient failure (it is then marked
    /// [`Idempotent`](crate::retry::Idempotent)). Default: `false`, only what pacer's
    /// classifier retries for every method (`429`, connections never made) is retried.
    fn is_repeatable(&self, grant: &Grant<'_>) -> bool {
        let _ = grant;
        false
    }

    /// Reads a success (`2xx`) answer. Default: [`TokenResponse::from_json`].
    fn parse_token(&self, grant: &Grant<'_>, body: &[u8]) -> Result<TokenResponse, AuthError> {
        let _ = grant;
        TokenResponse::from_json(body)
    }

    /// Reads what a refusal (a `4xx` answer) says. Default: [`Refusal::from_oauth_json`].
    fn refusal(&self, grant: &Grant<'_>, body: &[u8]) -> Refusal {
        let _ = grant;
        Refusal::from_oauth_json(body)
    }
}

/// A token answer: the access token and what the endpoint said of its lifetime.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: SecretString,
    /// How long the access token lives, from when the request left. `None`: not said (or
    /// `0`); the token is used until a request with it is answered `401`.
    pub expires_in: Option<Duration>,
    /// A token to renew with ([`Grant::Refresh`]). An answer to a refresh without one keeps
    /// the refresh token that was used.
    pub refresh_token: Option<SecretString>,
    /// How long the refresh token lives. `None`: not said (or `0`, Keycloak's "no limit");
    /// it is used until the endpoint refuses it.
    pub refresh_expires_in: Option<Duration>,
}

impl TokenResponse {
    /// An answer holding only `access_token`, of unknown lifetime.
    pub fn new(access_token: SecretString) -> TokenResponse {
        TokenResponse {
            access_token,
            expires_in: None,
            refresh_token: None,
            refresh_expires_in: None,
        }
    }

    /// With the access token's lifetime.
    pub fn expires_in(mut self, lifetime: Duration) -> TokenResponse {
        self.expires_in = Some(lifetime);
        self
    }

    /// With a refresh token and its lifetime (`None`: unknown).
    pub fn refresh_token(
        mut self,
        token: SecretString,
        lifetime: Option<Duration>,
    ) -> TokenResponse {
        self.refresh_token = Some(token);
        self.refresh_expires_in = lifetime;
        self
    }

    /// Reads OAuth 2.0 token JSON: an object with a string `access_token` and optionally
    /// `expires_in` (integer seconds), `refresh_token` (string) and `refresh_expires_in`
    /// (integer seconds, Keycloak's); other fields are ignored. A lifetime of `0` means
    /// "not said". Any other shape is [`InvalidAnswer`].
    pub fn from_json(body: &[u8]) -> Result<TokenResponse, AuthError> {
        #[derive(serde::Deserialize)]
        struct Raw {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
            #[serde(default)]
            refresh_token: Option<String>,
            #[serde(default)]
            refresh_expires_in: Option<u64>,
        }
        let raw: Raw = serde_json::from_slice(body)
            .map_err(|e| AuthError::InvalidAnswer(InvalidAnswer::from_json_error(&e)))?;
        let lifetime = |secs: Option<u64>| secs.filter(|&s| s > 0).map(Duration::from_secs);
        Ok(TokenResponse {
            access_token: raw.access_token.into(),
            expires_in: lifetime(raw.expires_in),
            // An empty refresh token is no refresh token.
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            refresh_expires_in: lifetime(raw.refresh_expires_in),
        })
    }
}
