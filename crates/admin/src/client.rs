//! [`AdminClient`] (the stack, the base URL, the token layer), its builder, and
//! [`NamespacedClient`], the view every operation is called on.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pacer::metrics::Metrics;
use pacer::rate_limit::RateLimiter;
use pacer::retry::RetryPolicy;
use pacer::{BoxError, Namespace};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::auth::{Credentials, KeycloakTokenSource};
use crate::error::BuildError;
use crate::redact::url_without_userinfo;

/// The largest response body read (a realm export can be big; anything beyond this is an
/// error rather than unbounded memory).
pub const MAX_RESPONSE_BYTES: usize = pacer::client::DEFAULT_MAX_RESPONSE_BYTES;

/// A transport the client can run on: the pacer stack, with bodies already collected.
pub type HttpService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Bytes>, BoxError>;

/// A Keycloak admin client. Cheap to clone; clones share the connection pool, the token and
/// the rate limiter.
#[derive(Clone)]
pub struct AdminClient {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    service: HttpService,
    rate_limiter: Option<RateLimiter>,
}

/// The base URL without its trailing `/`, refused when it is not an absolute `http`/`https`
/// URL, carries user-info (`https://user:password@kc`: credentials belong in
/// [`Credentials`], and a URL is printed in `Debug` and logs), a query or a fragment. The
/// refusal never repeats the URL.
fn checked_base(base_url: &str) -> Result<String, BuildError> {
    let base = base_url.trim_end_matches('/');
    let uri: http::Uri = base
        .parse()
        .map_err(|_| BuildError::new("the base URL is not a valid absolute URL".to_owned()))?;
    let Some(authority) = uri.authority() else {
        return Err(BuildError::new(
            "the base URL has no host (expected https://host[:port][/prefix])".to_owned(),
        ));
    };
    if authority.as_str().contains('@') {
        return Err(BuildError::new(
            "the base URL carries user-info (user:password@); pass credentials through \
             Credentials instead"
                .to_owned(),
        ));
    }
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(BuildError::new(
            "the base URL's scheme must be http or https".to_owned(),
        ));
    }
    if uri.query().is_some() || base.contains('#') {
        return Err(BuildError::new(
            "the base URL must not carry a query or a fragment".to_owned(),
        ));
    }
    Ok(base.to_owned())
}

impl fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// A builder for a client of the Keycloak at `base_url` (e.g. `https://kc.example`, or
    /// with a path prefix such as `https://example/auth`).
    pub fn builder(base_url: impl Into<String>, credentials: Credentials) -> AdminClientBuilder {
        AdminClientBuilder {
            base: base_url.into(),
            credentials,
            config: pacer::config::Config::default(),
            metrics: None,
            retry: None,
        }
    }

    /// A client on pacer's ready stack built from `config`; the same as
    /// `AdminClient::builder(base_url, credentials).config(config.clone()).build()`.
    pub fn new(
        base_url: impl Into<String>,
        credentials: Credentials,
        config: &pacer::config::Config,
    ) -> Result<Self, BuildError> {
        Self::builder(base_url, credentials)
            .config(config.clone())
            .build()
    }

    /// A client on a [`pacer::client::Client`] you built (sharing its rate limiter, metrics
    /// and pool with other users of it). The auth layer goes on top, so token requests pass
    /// through the stack too.
    pub fn from_client(
        base_url: impl Into<String>,
        credentials: Credentials,
        client: pacer::client::Client,
    ) -> Result<Self, BuildError> {
        let limiter = client.rate_limiter().clone();
        Self::assemble(base_url.into(), credentials, client, Some(limiter))
    }

    /// A client over a transport you composed yourself (it should be a pacer stack: rate
    /// limit, retries, metrics). The auth layer is added on top of it, so token requests go
    /// through it too.
    pub fn with_service<S, B>(
        base_url: impl Into<String>,
        credentials: Credentials,
        service: S,
    ) -> Result<Self, BuildError>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self::assemble(base_url.into(), credentials, service, None)
    }

    fn assemble<S, B>(
        base_url: String,
        credentials: Credentials,
        service: S,
        rate_limiter: Option<RateLimiter>,
    ) -> Result<Self, BuildError>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let base = checked_base(&base_url)?;
        // The token layer sits on the stack; the bodies are collected above it (it reads
        // token answers itself, bounded).
        let authenticated = KeycloakTokenSource::new(&base, credentials)
            .layer()
            .layer(service);
        let collected = pacer::client::collect_responses(authenticated, MAX_RESPONSE_BYTES);
        Ok(AdminClient {
            inner: Arc::new(Inner {
                base,
                service: BoxCloneSyncService::new(collected),
                rate_limiter,
            }),
        })
    }

    /// The API as seen by `namespace`: every call made through it is rate limited (and
    /// counted in the metrics) under that namespace.
    pub fn namespace(&self, namespace: impl Into<Arc<str>>) -> NamespacedClient {
        NamespacedClient {
            client: self.clone(),
            namespace: Namespace::new(namespace),
        }
    }

    /// The API under the default namespace.
    pub fn default_namespace(&self) -> NamespacedClient {
        NamespacedClient {
            client: self.clone(),
            namespace: Namespace::default(),
        }
    }

    /// The rate limiter of the stack (`None` for [`AdminClient::with_service`]).
    pub fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.inner.rate_limiter.as_ref()
    }

    pub(crate) fn base(&self) -> &str {
        &self.inner.base
    }

    pub(crate) fn service(&self) -> HttpService {
        self.inner.service.clone()
    }
}

/// Builds an [`AdminClient`] on pacer's ready stack. `Debug` shows the base URL without
/// its user-info (refused only by [`build`](Self::build)).
pub struct AdminClientBuilder {
    base: String,
    credentials: Credentials,
    config: pacer::config::Config,
    metrics: Option<Metrics>,
    retry: Option<RetryPolicy>,
}

impl fmt::Debug for AdminClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminClientBuilder")
            .field("base", &url_without_userinfo(&self.base))
            .field("credentials", &self.credentials)
            .field("config", &self.config)
            .field("metrics", &self.metrics)
            .field("retry", &self.retry)
            .finish()
    }
}

impl AdminClientBuilder {
    /// The stack's settings: rate limits, retries, timeouts, TLS (default: the design's
    /// defaults, 50/s global, 5/s per namespace, 5 retries, 30 s per attempt).
    pub fn config(mut self, config: pacer::config::Config) -> Self {
        self.config = config;
        self
    }

    /// Reports to these metrics (default: metrics registered nowhere).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Replaces the configured retry policy (it reports to the client's metrics).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Builds [`pacer::client::Client`] from the configuration (rustls, pooled HTTP/1.1 and
    /// HTTP/2) and the client on it. Needs no runtime; calls must then run in a tokio
    /// runtime (or through [`blocking::AdminClient`](crate::blocking::AdminClient)).
    pub fn build(self) -> Result<AdminClient, BuildError> {
        let metrics = match self.metrics {
            Some(metrics) => metrics,
            // A registry nobody scrapes: the stack still needs somewhere to record.
            None => self
                .config
                .metrics_builder()
                .register(&mut prometheus_client::registry::Registry::default()),
        };
        let mut builder = pacer::client::Client::builder(&self.config).metrics(metrics.clone());
        if let Some(policy) = self.retry {
            builder = builder.retry_policy(policy.observer(metrics));
        }
        // Checked before the stack is built, so a refused URL costs nothing.
        checked_base(&self.base)?;
        let client = builder
            .build()
            .map_err(|e| BuildError::new(e.to_string()))?;
        AdminClient::from_client(self.base, self.credentials, client)
    }
}

/// The API as seen by one namespace; see [`AdminClient::namespace`]. Open a group of
/// operations from it: `.realms()`, `.clients(realm)`, `.users(realm)` ...
#[derive(Clone, Debug)]
pub struct NamespacedClient {
    client: AdminClient,
    namespace: Namespace,
}

impl NamespacedClient {
    /// The namespace calls are made for.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The client this view belongs to.
    pub fn client(&self) -> &AdminClient {
        &self.client
    }
}
