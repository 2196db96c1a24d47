//! The HTTP service an [`InventoryClient`](crate::InventoryClient) sends through: pacer's ready
//! client (rate limiter, `Retry-After`, `429` retries, per-attempt timeout, deadline), the
//! retries of transient failures with the SDK's delays, and authentication (pacer's
//! bearer-token layer over Infrahub's login, or the API-key header).

use bytes::Bytes;
use http::header::HeaderName;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use pacer::BoxError;
use pacer::Namespace;
use pacer::auth::{BearerAuthLayer, api_key_layer};
use pacer::retry::{
    Backoff, Classify, Decision, DefaultClassifier, Jitter, Retry, RetryPolicy, RetryReason,
};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::auth::{InfrahubLogin, TOKEN_NAMESPACE};
use crate::config::Config;
use crate::error::{ConfigError, Error};

/// The HTTP service every request goes through: the pacer stack (or any service given to
/// [`InventoryClient::with_service`](crate::InventoryClient::with_service)) with
/// authentication, and response bodies read to the end.
pub type HttpService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Bytes>, BoxError>;

/// The header Infrahub reads API tokens from.
pub const API_KEY_HEADER: &str = "x-infrahub-key";

/// The largest response body read; a longer one is an error rather than unbounded memory.
pub const MAX_RESPONSE_BYTES: usize = pacer::client::DEFAULT_MAX_RESPONSE_BYTES;

/// The most retries of a failure, whatever `max_retry_duration / retry_delay` says.
const MAX_FAILURE_RETRIES: u32 = 1_000;

/// How a client authenticates, for `Debug`.
pub(crate) fn auth_kind(config: &Config) -> &'static str {
    match (&config.api_token, &config.username, &config.password) {
        (Some(_), _, _) => "api token",
        (None, Some(_), Some(_)) => "login",
        _ => "none",
    }
}

/// What pacer's default retries, narrowed: `429`s only when `throttled`, transient failures
/// (for idempotent requests) only when `failures`. pacer's client retries the `429`s (with
/// the rate-limit backoff), the layer above it the failures (with the SDK's delays).
#[derive(Debug, Clone, Copy)]
struct InfrahubClassifier {
    throttled: bool,
    failures: bool,
}

impl InfrahubClassifier {
    fn narrow(self, decision: Decision) -> Decision {
        match decision {
            Decision::Retry(RetryReason::TooManyRequests) if !self.throttled => {
                Decision::Failure(RetryReason::TooManyRequests)
            }
            Decision::Retry(reason) if reason != RetryReason::TooManyRequests && !self.failures => {
                Decision::Failure(reason)
            }
            other => other,
        }
    }
}

impl Classify for InfrahubClassifier {
    fn classify_response(
        &self,
        req: &http::request::Parts,
        status: StatusCode,
        headers: &http::HeaderMap,
    ) -> Decision {
        self.narrow(DefaultClassifier.classify_response(req, status, headers))
    }

    fn classify_error(
        &self,
        req: &http::request::Parts,
        error: &(dyn std::error::Error + 'static),
    ) -> Decision {
        self.narrow(DefaultClassifier.classify_error(req, error))
    }
}

/// The retries of transient failures (`retry_on_failure`): `retry_delay`, doubling up to
/// `retry_max_delay`, without jitter, within `max_retry_duration`.
fn failure_policy(config: &Config, metrics: &pacer::metrics::Metrics) -> RetryPolicy {
    let ratio = config.max_retry_duration.as_secs_f64() / config.retry_delay.as_secs_f64();
    // `as` saturates (NaN gives 0); validated settings give a finite, positive ratio.
    let retries = (ratio.ceil() as u32).clamp(1, MAX_FAILURE_RETRIES);
    RetryPolicy::new()
        .max_retries(retries)
        .backoff(Backoff::new(config.retry_delay, config.retry_max_delay).jitter(Jitter::None))
        .deadline(config.max_retry_duration)
        .retry_after_cap(config.rate_limit_backoff_max)
        .classifier(InfrahubClassifier {
            throttled: false,
            failures: true,
        })
        .observer(metrics.clone())
}

/// pacer's ready client configured from `config` (and, with `retry_on_failure`, the
/// failure retries around it), authenticated.
pub(crate) fn build(
    config: &Config,
    metrics: Option<pacer::metrics::Metrics>,
) -> Result<HttpService, Error> {
    let pacer_config = config.pacer_config();
    let pacer_error = |e| Error::Config(ConfigError::Pacer(e));
    let metrics = match metrics {
        Some(metrics) => metrics,
        None => {
            // A registry nobody scrapes: the metrics layer still needs one.
            let mut registry = prometheus_client::registry::Registry::default();
            pacer_config.metrics_builder().register(&mut registry)
        }
    };
    let policy = pacer_config
        .retry_policy()
        .map_err(pacer_error)?
        .classifier(InfrahubClassifier {
            throttled: config.rate_limit_retry_enabled,
            failures: false,
        })
        .observer(metrics.clone());
    let client = pacer::client::Client::builder(&pacer_config)
        .metrics(metrics.clone())
        .retry_policy(policy)
        .build()
        .map_err(|e| match e {
            pacer::client::ClientError::Config(e) => pacer_error(e),
            other => Error::Transport(Box::new(other)),
        })?;
    if config.retry_on_failure {
        authenticated(config, Retry::new(client, failure_policy(config, &metrics)))
    } else {
        authenticated(config, client)
    }
}

/// `service` with the configured authentication and its bodies collected.
pub(crate) fn authenticated<S, B>(config: &Config, service: S) -> Result<HttpService, Error>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match (&config.api_token, &config.username, &config.password) {
        (Some(key), _, _) => {
            let layer = api_key_layer(HeaderName::from_static(API_KEY_HEADER), key)
                .map_err(|_| Error::InvalidInput("the API token is not a valid header".into()))?;
            Ok(collect_boxed(layer.layer(service)))
        }
        (None, Some(username), Some(password)) => {
            let layer = BearerAuthLayer::builder(InfrahubLogin {
                address: config.address.clone(),
                username: username.clone(),
                password: password.clone(),
            })
            .namespace(Namespace::new(TOKEN_NAMESPACE))
            .token_timeout(config.max_retry_duration)
            .build();
            Ok(collect_boxed(layer.layer(service)))
        }
        _ => Ok(collect_boxed(service)),
    }
}

fn collect_boxed<S, B>(service: S) -> HttpService
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneSyncService::new(pacer::client::collect_responses(
        service,
        MAX_RESPONSE_BYTES,
    ))
}
