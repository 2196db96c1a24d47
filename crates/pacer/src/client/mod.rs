//! The ready stack (feature `client`): pacer's layers over hyper-util's pooled client with
//! rustls, built from a [`Config`].
//!
//! Layer order, outermost first:
//!
//! ```text
//! SetSensitiveRequestHeaders (Authorization, Proxy-Authorization, Cookie, X-INFRAHUB-KEY)
//!   -> Metrics -> Retry -> RetryAfter -> RateLimit -> per-attempt Timeout
//!   -> body bounds (idle-read timeout; bodies read whole when asked, see below)
//!   -> hyper-util legacy Client (pooled; HTTP/1.1 + HTTP/2 by ALPN; rustls with ring,
//!      webpki roots plus an optional extra CA file)
//! ```
//!
//! - **Every attempt pays a rate-limit token** (as Kubernetes client-go does): the retry layer
//!   sits outside the limiter, so a storm of 429s cannot make the client exceed its own rate.
//! - **The per-attempt timeout excludes the wait for a token**: it sits inside the limiter and
//!   starts when the request is actually handed to the connection pool.
//! - **The total deadline** (`deadline_secs`) covers everything: attempts, token waits, shared
//!   pauses and backoff sleeps.
//! - **Response bodies are bounded in time.** Every body has an idle-read timeout
//!   (`read_timeout_secs`, 30 s by default): a body silent for longer between two frames
//!   fails with [`ReadTimeout`]. A request carrying the [`BufferBody`] extension (what
//!   [`collect_responses`] and [`blocking::Client`] send, so pacer-admin and pacer-inventory
//!   too) has its body read whole *inside* the attempt: the per-attempt timeout and the
//!   deadline cover the body as well as the head, and a truncated, reset or slow body is a
//!   failed attempt the retry policy may retry (idempotent requests), ending in the attempt's
//!   error (`tower::timeout::error::Elapsed`, [`ReadTimeout`], hyper's body error) or
//!   [`DeadlineExceeded`](crate::retry::DeadlineExceeded). With the default settings no
//!   call takes longer than the 300 s deadline (see the `config` module docs for the sum).
//! - **Credential headers are marked sensitive** before anything else sees the request, so
//!   hyper never indexes them in HTTP/2 header compression and `tower-http`'s tracing layers do
//!   not print them.
//!
//! The tenant of a request is the [`Namespace`](crate::Namespace) request extension (requests
//! without one use the default namespace). Request bodies are [`RequestBody`]
//! (`Full<Bytes>`), so every retry can replay them.
//!
//! After a restart, many callers start at once. Two settings keep that smooth:
//! `rate_limit.initial_fill` (buckets start partly empty, so the whole burst is not sent at
//! once) and `retry.budget_min_per_sec` (the retry budget's floor, 10 retries per second by
//! default: when the first burst meets the server's limit before any success has paid into the
//! budget, the 429s beyond the floor are returned to the callers). Raising the floor to the
//! client's rate is safe in this stack, since every retry waits for a rate-limit token.
//!
//! [`Client`] is the stack boxed behind one cheap-to-clone handle. To compose the same layers
//! over a service of your own (another connector, a test double, an axum app's outbound
//! client), use [`ServiceBuilderExt::pacer`] with [`Layers`]; [`blocking::Client`] drives the
//! very same stack from synchronous code.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use pacer::Namespace;
//! use pacer::client::Client;
//! use pacer::config::Config;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pacer::BoxError> {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # tokio::spawn(async move {
//! #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! #     let (mut stream, _) = listener.accept().await.unwrap();
//! #     let mut buf = [0u8; 1024];
//! #     let _ = stream.read(&mut buf).await;
//! #     let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await;
//! # });
//! let config = Config::default().merge_env("MY_API")?; // MY_API_GLOBAL_RATE_LIMIT_TPS, ...
//! let client = Client::from_config(&config)?;
//!
//! let mut request = http::Request::get(format!("http://{addr}/greeting"))
//!     .body(Full::new(Bytes::new()))?;
//! request.extensions_mut().insert(Namespace::new("team-a"));
//! let response = client.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(body, "hello");
//! # Ok(()) }
//! ```

pub mod blocking;
mod bounds;
mod buffer_body;
mod builder_ext;
pub mod connector;
mod layers;
mod response;
pub mod runtime;
mod tls;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::registry::Registry;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

pub use bounds::ReadTimeout;
pub use buffer_body::BufferBody;
pub use builder_ext::{PacerStack, ServiceBuilderExt, sensitive_headers};
pub use connector::{ConnectError, Connector, ProxyFailure};
pub use layers::Layers;
pub use response::{DEFAULT_MAX_RESPONSE_BYTES, ResponseBody, collect_responses, read_to_end};
pub use tls::TlsError;

use layers::Overrides;

use crate::BoxError;
use crate::config::{Config, ConfigError};
use crate::events::observer::Observer;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::retry_after::RetryAfterLayer;

/// Request body every stack accepts: replayable for retries.
pub type RequestBody = Full<Bytes>;

/// hyper-util's pooled client over the [`Connector`]: the innermost service of the stack.
pub type PooledClient = HyperClient<Connector, RequestBody>;

type BoxedStack = BoxCloneSyncService<Request<RequestBody>, Response<ResponseBody>, BoxError>;

/// Why a [`Client`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// A setting is invalid.
    Config(ConfigError),
    /// The TLS setup failed (the extra CA file).
    Tls(TlsError),
    /// The blocking client's runtime could not be started.
    Runtime(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "client configuration: {e}"),
            Self::Tls(e) => write!(f, "client TLS setup: {e}"),
            Self::Runtime(e) => write!(f, "blocking client runtime: {e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::Runtime(_) => None,
        }
    }
}

impl From<ConfigError> for ClientError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<TlsError> for ClientError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

/// The ready stack; see the [module docs](self). `Clone + Send + Sync`: clones share the
/// connection pool, the rate limiter, the pauses, the retry budget and the metrics.
#[derive(Clone)]
pub struct Client {
    stack: BoxedStack,
    layers: Layers,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The stack `config` describes, with metrics in a registry of its own (use
    /// [`Client::builder`] and [`ClientBuilder::metrics`] to export them).
    pub fn from_config(config: &Config) -> Result<Client, ClientError> {
        Self::builder(config).build()
    }

    /// A builder starting from `config`.
    pub fn builder(config: &Config) -> ClientBuilder {
        ClientBuilder {
            config: config.clone(),
            metrics: None,
            observer: None,
            overrides: Overrides::default(),
        }
    }

    /// The rate limiter every request of this client (and its clones) goes through.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.layers.rate_limiter
    }

    /// The metrics this client records into.
    pub fn metrics(&self) -> &Metrics {
        &self.layers.metrics
    }

    /// The pieces of the stack.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Sends `request` through the stack (a shortcut for `clone().oneshot(request)`).
    pub async fn send(
        &self,
        request: Request<impl Into<RequestBody>>,
    ) -> Result<Response<ResponseBody>, BoxError> {
        use tower::ServiceExt;
        self.stack.clone().oneshot(request.map(Into::into)).await
    }
}

impl Service<Request<RequestBody>> for Client {
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.stack.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> ResponseFuture {
        ResponseFuture {
            inner: self.stack.call(request),
        }
    }
}

type BoxedFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, BoxError>> + Send>>;

/// The response future of [`Client`]: `Send + 'static`. Dropping it cancels the request,
/// its retries and its waits.
pub struct ResponseFuture {
    inner: BoxedFuture,
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    config: Config,
    metrics: Option<Metrics>,
    observer: Option<Arc<dyn Observer>>,
    overrides: Overrides,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("metrics", &self.metrics)
            .field("observer", &self.observer.is_some())
            .field("overrides", &self.overrides)
            .finish()
    }
}

impl ClientBuilder {
    /// Records into `metrics` (registered where you scrape them, e.g. with
    /// [`Config::metrics_builder`]). Without it the client records into a registry of its own.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Also reports the layers' events to `observer` (besides the metrics), e.g.
    /// [`TracingObserver`](crate::events::TracingObserver).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Uses `limiter` (e.g. one shared with other clients, or backed by Redis) instead of one
    /// built from the configuration. Its observer is its own business.
    pub fn rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.overrides.rate_limiter = Some(limiter);
        self
    }

    /// Uses `policy` (e.g. with a classifier of your own) instead of the configured one. Its
    /// observer is its own business.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.overrides.retry_policy = Some(policy);
        self
    }

    /// Uses `layer` (e.g. sharing a pause gate with another client) instead of the
    /// configured one.
    pub fn retry_after(mut self, layer: RetryAfterLayer) -> Self {
        self.overrides.retry_after = Some(layer);
        self
    }

    /// Builds the connector and the stack. Needs no runtime; requests must then be sent from
    /// within a tokio runtime with the time driver (or through [`blocking::Client`]).
    pub fn build(self) -> Result<Client, ClientError> {
        let config = self.config.validate()?;
        let metrics = match self.metrics {
            Some(metrics) => metrics,
            None => {
                // A registry nobody scrapes: the layer still needs somewhere to record.
                let mut registry = Registry::default();
                config.metrics_builder().register(&mut registry)
            }
        };
        let layers = Layers::build(&config, metrics, self.observer, self.overrides);
        // The connector (connect timeout, proxies from the settings or the environment, TLS).
        let matcher = connector::proxy_matcher(&config, std::env::vars());
        let connector = Connector::new(&config, matcher)?;
        let pooled: PooledClient = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout())
            .build(connector.clone());
        Ok(Client::from_layers(layers, connector.proxy_auth(pooled)))
    }
}

impl Client {
    /// The stack of `layers` over `service`: what [`ClientBuilder::build`] does over its pooled
    /// client, for any hyper-style service (a client with another connector, a test double).
    /// Inside the per-attempt timeout, right over `service`, the body bounds apply (the
    /// idle-read timeout, and [`BufferBody`] requests read whole within the attempt).
    pub fn from_layers<S, B>(layers: Layers, service: S) -> Client
    where
        S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let stack = ServiceBuilder::new()
            .map_response(|response: Response<_>| response.map(ResponseBody::new))
            .pacer(&layers)
            .service(bounds::BodyBounds::new(service, layers.read_timeout));
        Client {
            stack: BoxCloneSyncService::new(stack),
            layers,
        }
    }
}
