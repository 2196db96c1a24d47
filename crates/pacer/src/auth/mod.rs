//! Authentication (feature `auth`): [`BearerAuthLayer`], one single-flight bearer-token
//! cache over an API's [`TokenSource`], and [`api_key_layer`] for APIs that take a fixed key.
//!
//! An API writes only its [`TokenSource`]: how to ask its endpoint for a token
//! ([`Grant::Credentials`]: a login, an OAuth password or client-credentials grant) and, if
//! its answers carry refresh tokens, how to renew with one ([`Grant::Refresh`]). The defaults
//! read OAuth 2.0 JSON answers and refusals. The layer does the rest:
//!
//! - **Renewal before expiry.** A token's lifetime (`expires_in`) counts from when its
//!   request was handed to the inner service, so time in the stack only shortens it. It is
//!   renewed [`renew_margin`](BearerAuthBuilder::renew_margin) before it expires (default
//!   30 s, at most half its lifetime). A token without a stated lifetime is used until a
//!   request with it is answered `401`. Lifetimes are capped at [`MAX_TOKEN_LIFETIME`] (one
//!   day), so a server's `u64::MAX` cannot overflow the clock.
//! - **A `401` renews once and replays once**, when the request body can be copied
//!   ([`TryCloneBody`](crate::body::TryCloneBody): `Full<Bytes>` can). Every caller refused
//!   the same token shares one renewal; the replay's answer, a second `401` too, is returned
//!   as it is. A request that cannot be replayed gets its `401`, and the next caller a new
//!   token.
//! - **Single flight.** At most one token request is in flight. A caller with a valid cached
//!   token takes it under a short synchronous lock and goes on: it never waits behind a
//!   renewal, even one started inside the margin. A caller without one waits for the flight
//!   in progress, or starts it.
//! - **Shared failure.** When the token request fails, every waiting caller gets that one
//!   failure at the same instant ([`AuthError`] is `Clone`); there is no queue of grants run
//!   one after another. A renewal started inside the margin that fails leaves the old token
//!   in use until it expires (the next early renewal waits
//!   [`renew_retry_interval`](BearerAuthBuilder::renew_retry_interval)); callers after the
//!   expiry start a new flight and share its outcome.
//! - **Cancellation.** The token request runs as a task of its own on the tokio runtime
//!   (spawned when it starts; waiters watch it through a `tokio::sync::watch` channel). The
//!   caller that started it, or every waiter, may be dropped or time out: the request still
//!   completes and fills the cache. A flight whose task is dropped unfinished (runtime shut
//!   down, a panic) ends in [`AuthError::Aborted`] for its waiters, never a hang.
//! - **Its own namespace, the same stack.** Token requests go through the inner service, so
//!   the pacer stack below the layer (retry, `Retry-After`, rate limit, metrics) applies to
//!   them, under their own [`Namespace`](crate::Namespace)
//!   ([`DEFAULT_TOKEN_NAMESPACE`], or [`BearerAuthBuilder::namespace`]), never the caller's:
//!   every tenant waits for a renewal, so it must not queue behind one tenant's empty
//!   bucket. They are marked [`Idempotent`](crate::retry::Idempotent) (retried after
//!   transient failures) only when [`TokenSource::is_repeatable`] says so.
//! - **Bounds.** A token request, every exchange and answer body of it, is bounded by
//!   [`token_timeout`](BearerAuthBuilder::token_timeout) (default 30 s,
//!   [`AuthError::TimedOut`]); answers are read up to
//!   [`max_response_bytes`](BearerAuthBuilder::max_response_bytes) (64 KiB). Answers are
//!   untrusted: JSON of the wrong shape, an access token that cannot be a header value, a
//!   body too long are [`AuthError::InvalidAnswer`], never a panic.
//! - **Secrets** are [`SecretString`]s (re-exported from `secrecy`, redacted in `Debug`,
//!   wiped on drop); the `Authorization` value is marked sensitive. No token, secret or
//!   refresh token appears in a `Debug` or `Display` of the layer, its service, its future
//!   or its errors, nor in its `tracing` events.
//!
//! Errors: the service's error is a [`BoxError`](crate::BoxError); when no token could be
//! had it holds an [`AuthError`] (`error.downcast_ref::<AuthError>()`), and
//! [`AuthError::is_refused`] tells refused credentials from an endpoint that is unreachable,
//! slow or broken.
//!
//! The layer sits above the pacer stack: `BearerAuth -> Metrics -> Retry -> RetryAfter ->
//! RateLimit -> Timeout -> HTTP`. It needs the inner service to be `Clone + Send + 'static`
//! (token requests and replays use clones) and its request body to be `From<Bytes>` (token
//! requests are built as `Request<Bytes>`). Response bodies are any [`http_body::Body`]; a
//! stack that answers `Response<Bytes>` can map them to `Full<Bytes>` below the layer.
//!
//! # Example: a token source for a made-up API
//!
//! "Acme" grants a token for an API key at `POST /session` and renews it at
//! `POST /session/refresh` with the refresh token as bearer; both answer OAuth-style JSON.
//!
//! ```
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use pacer::Namespace;
//! use pacer::auth::{AuthError, BearerAuthLayer, ExposeSecret, Grant, SecretString, TokenSource};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! struct Acme {
//!     base_url: String,
//!     api_key: SecretString,
//! }
//!
//! impl TokenSource for Acme {
//!     fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError> {
//!         let request = match grant {
//!             Grant::Refresh(refresh_token) => Request::post(format!("{}/session/refresh", self.base_url))
//!                 .header("authorization", format!("Bearer {}", refresh_token.expose_secret()))
//!                 .body(Bytes::new()),
//!             _ => Request::post(format!("{}/session", self.base_url))
//!                 .header("content-type", "application/json")
//!                 .body(Bytes::from(
//!                     serde_json::json!({ "key": self.api_key.expose_secret() }).to_string(),
//!                 )),
//!         };
//!         request.map_err(|_| AuthError::request("the base URL is not a valid URI"))
//!     }
//!
//!     // Opening a session twice is harmless for Acme: let the retry layer repeat it.
//!     fn is_repeatable(&self, _: &Grant<'_>) -> bool {
//!         true
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pacer::BoxError> {
//! // A stand-in for Acme's server (in real use: the pacer stack over an HTTP client).
//! let server = tower::service_fn(|request: Request<Full<Bytes>>| async move {
//!     let answer: Response<Full<Bytes>> = match (request.uri().path(), request.headers().get("authorization")) {
//!         ("/session", _) => Response::new(r#"{"access_token":"t-1","expires_in":3600}"#.into()),
//!         (_, Some(bearer)) if bearer == "Bearer t-1" => Response::new("widgets".into()),
//!         _ => {
//!             let mut refused = Response::new(Full::default());
//!             *refused.status_mut() = StatusCode::UNAUTHORIZED;
//!             refused
//!         }
//!     };
//!     Ok::<_, std::convert::Infallible>(answer)
//! });
//!
//! let auth = BearerAuthLayer::builder(Acme {
//!     base_url: "https://acme.example".into(),
//!     api_key: SecretString::from("k-123"),
//! })
//! .namespace(Namespace::new("acme-token"))
//! .token_timeout(Duration::from_secs(10))
//! .build();
//! assert!(!format!("{auth:?}").contains("k-123"));
//!
//! let client = ServiceBuilder::new().layer(auth).service(server);
//! let request = Request::get("https://acme.example/widgets").body(Full::default())?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(()) }
//! ```
//!
//! # An API key instead
//!
//! An API that takes a fixed key needs no source: set a sensitive header on every request.
//!
//! ```
//! use http::HeaderName;
//! use pacer::auth::{SecretString, api_key_layer};
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), http::header::InvalidHeaderValue> {
//! let key = SecretString::from("0123-abcd");
//! let layer = api_key_layer(HeaderName::from_static("x-infrahub-key"), &key)?;
//! assert!(!format!("{layer:?}").contains("0123-abcd"));
//! # let hyper_client = tower::service_fn(|_: http::Request<()>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! # });
//! let client = ServiceBuilder::new().layer(layer).service(hyper_client);
//! # let _ = client; Ok(()) }
//! ```

mod api_key;
mod cache;
mod error;
mod flight;
mod layer;
mod shared;
mod source;
#[cfg(test)]
mod tests;

pub use api_key::{ApiKeyLayer, api_key_layer};
pub use cache::MAX_TOKEN_LIFETIME;
pub use error::{AuthError, InvalidAnswer, MAX_REFUSAL_TEXT, Refusal};
pub use layer::{BearerAuth, BearerAuthBuilder, BearerAuthLayer, ResponseFuture};
/// The `secrecy` crate, for its other types (`SecretBox`, `ExposeSecretMut`).
pub use secrecy;
pub use secrecy::{ExposeSecret, SecretString};
pub use shared::{
    DEFAULT_MAX_TOKEN_RESPONSE_BYTES, DEFAULT_RENEW_MARGIN, DEFAULT_RENEW_RETRY_INTERVAL,
    DEFAULT_TOKEN_NAMESPACE, DEFAULT_TOKEN_TIMEOUT,
};
pub use source::{Grant, TokenResponse, TokenSource};
