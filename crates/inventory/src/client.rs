//! [`InventoryClient`]: construction, per-call scope (branch, namespace, priority), sending
//! through the pacer stack, authentication, and `execute_graphql`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use pacer::BoxError;
use pacer::Namespace;
use pacer::retry::{Classify, Decision, DefaultClassifier, Idempotent, RetryInfo, RetryReason};
use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::config::{Config, Priority, Secret};
use crate::error::{Error, GraphQLError, GraphQLErrorItem, RateLimitError};

/// The HTTP service every request goes through: the pacer stack (or any service given to
/// [`InventoryClient::with_service`]) with response bodies read to the end.
pub type HttpService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Bytes>, BoxError>;

/// The header Infrahub reads API tokens from.
pub const API_KEY_HEADER: &str = "x-infrahub-key";
/// The header carrying the request's priority.
pub const PRIORITY_HEADER: &str = "x-priority";

/// The largest response body read; a longer one is an error rather than unbounded memory.
pub const MAX_RESPONSE_BYTES: usize = pacer::client::DEFAULT_MAX_RESPONSE_BYTES;

/// An async Infrahub client. Cheap to clone (clones share the connection pool, the rate
/// limiter and the login tokens); [`on_branch`](Self::on_branch), [`namespace`](Self::namespace)
/// and [`priority`](Self::priority) return a clone scoped to one branch, tenant or priority.
///
/// Every request passes through the pacer stack: the rate limiter (keyed by the namespace),
/// `Retry-After`, retries of `429`s with capped, jittered backoff and, with
/// `retry_on_failure`, of transient failures of idempotent operations (GraphQL queries, never
/// mutations).
#[derive(Clone)]
pub struct InventoryClient {
    shared: Arc<Shared>,
    scope: Scope,
}

struct Shared {
    config: Config,
    service: HttpService,
    credentials: Credentials,
    tokens: tokio::sync::Mutex<Tokens>,
}

#[derive(Clone, Debug, Default)]
struct Scope {
    branch: Option<String>,
    namespace: Option<Namespace>,
    priority: Option<Priority>,
}

enum Credentials {
    None,
    ApiKey(Secret),
    Login { username: String, password: Secret },
}

#[derive(Default)]
struct Tokens {
    access: Option<Secret>,
    refresh: Option<Secret>,
}

impl fmt::Debug for InventoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.shared.credentials {
            Credentials::None => "none",
            Credentials::ApiKey(_) => "api token",
            Credentials::Login { .. } => "login",
        };
        f.debug_struct("InventoryClient")
            .field("address", &self.shared.config.address)
            .field("branch", &self.branch_name())
            .field("namespace", &self.scope.namespace)
            .field("priority", &self.scope.priority)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

/// One HTTP call, replayable (after a token refresh).
pub(crate) struct Call {
    pub(crate) method: Method,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    pub(crate) body: Option<Bytes>,
    /// Safe to send twice (a GraphQL query, a GET).
    pub(crate) idempotent: bool,
}

impl Call {
    pub(crate) fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            idempotent: true,
        }
    }

    pub(crate) fn post_json(path: String, body: &Value, idempotent: bool) -> Self {
        Self {
            method: Method::POST,
            path,
            body: Some(Bytes::from(body.to_string())),
            idempotent,
        }
    }
}

/// Retries `429`s (when enabled) and, with `retry_on_failure`, what pacer's default retries
/// for idempotent requests; nothing else.
#[derive(Debug, Clone, Copy)]
struct InfrahubClassifier {
    rate_limit_retry: bool,
    retry_on_failure: bool,
}

impl Classify for InfrahubClassifier {
    fn classify_response(
        &self,
        req: &http::request::Parts,
        status: StatusCode,
        headers: &http::HeaderMap,
    ) -> Decision {
        match DefaultClassifier.classify_response(req, status, headers) {
            Decision::Retry(RetryReason::TooManyRequests) if !self.rate_limit_retry => {
                Decision::Failure(RetryReason::TooManyRequests)
            }
            Decision::Retry(reason)
                if reason != RetryReason::TooManyRequests && !self.retry_on_failure =>
            {
                Decision::Failure(reason)
            }
            other => other,
        }
    }

    fn classify_error(
        &self,
        req: &http::request::Parts,
        error: &(dyn std::error::Error + 'static),
    ) -> Decision {
        match DefaultClassifier.classify_error(req, error) {
            Decision::Retry(reason) if !self.retry_on_failure => Decision::Failure(reason),
            other => other,
        }
    }
}

impl InventoryClient {
    /// A client over [`pacer::client::Client`] (rate limiter, `Retry-After`, retries,
    /// per-attempt timeout, hyper-util's pooled client over rustls, HTTP/1.1 and HTTP/2),
    /// configured from `config`: the retry settings come from the `INFRAHUB_*` fields, the
    /// limits, TLS and metrics settings from `config.pacer`.
    ///
    /// Requests must be made from within a tokio runtime (or use [`crate::blocking`]).
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::build(config, None)
    }

    /// As [`new`](Self::new), with pacer's Prometheus metrics for every request (rate-limit
    /// waits, retries, `Retry-After`, durations).
    pub fn with_metrics(config: Config, metrics: pacer::metrics::Metrics) -> Result<Self, Error> {
        Self::build(config, Some(metrics))
    }

    fn build(config: Config, metrics: Option<pacer::metrics::Metrics>) -> Result<Self, Error> {
        config.validate()?;
        let pacer_config = config.pacer_config();
        let pacer_error = |e| Error::Config(crate::config::ConfigError::Pacer(e));
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
                rate_limit_retry: config.rate_limit_retry_enabled,
                retry_on_failure: config.retry_on_failure,
            })
            .observer(metrics.clone());
        let client = pacer::client::Client::builder(&pacer_config)
            .metrics(metrics)
            .retry_policy(policy)
            .build()
            .map_err(|e| match e {
                pacer::client::ClientError::Config(e) => pacer_error(e),
                other => Error::Transport(Box::new(other)),
            })?;
        Self::with_service(config, client)
    }

    /// A client over any HTTP service (for instance one composed from pacer's layers with a
    /// TLS connector). Response bodies are read to the end (at most [`MAX_RESPONSE_BYTES`])
    /// before they are decoded.
    pub fn with_service<S, B>(config: Config, service: S) -> Result<Self, Error>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        config.validate()?;
        let service = pacer::client::collect_responses(service, MAX_RESPONSE_BYTES);
        let credentials = match (&config.api_token, &config.username, &config.password) {
            (Some(token), _, _) => Credentials::ApiKey(token.clone()),
            (None, Some(username), Some(password)) => Credentials::Login {
                username: username.clone(),
                password: password.clone(),
            },
            _ => Credentials::None,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                service: BoxCloneSyncService::new(service),
                credentials,
                tokens: tokio::sync::Mutex::new(Tokens::default()),
            }),
            scope: Scope::default(),
        })
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A clone whose operations run on `branch` instead of the default branch.
    pub fn on_branch(&self, branch: impl Into<String>) -> Self {
        let mut client = self.clone();
        client.scope.branch = Some(branch.into());
        client
    }

    /// A clone whose requests count against rate-limit namespace `namespace` (a tenant, a
    /// pipeline, a branch): each namespace has its own bucket besides the global one.
    pub fn namespace(&self, namespace: impl Into<Arc<str>>) -> Self {
        let mut client = self.clone();
        client.scope.namespace = Some(Namespace::new(namespace));
        client
    }

    /// A clone whose requests carry `X-Priority: low|high`.
    pub fn priority(&self, priority: Priority) -> Self {
        let mut client = self.clone();
        client.scope.priority = Some(priority);
        client
    }

    /// The branch operations run on.
    pub fn branch_name(&self) -> &str {
        self.scope
            .branch
            .as_deref()
            .unwrap_or(&self.shared.config.default_branch)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.config.address)
    }

    /// Sends `call` once with `auth` (a header to add); a final `429` becomes
    /// [`RateLimitError`].
    async fn send_once(
        &self,
        call: &Call,
        auth: Option<(&'static str, &Secret)>,
    ) -> Result<Response<Bytes>, Error> {
        let url = self.url(&call.path);
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(&url)
            .header(ACCEPT, "application/json");
        if call.body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let priority = self.scope.priority.or(self.shared.config.priority);
        if let Some(priority) = priority {
            request = request.header(PRIORITY_HEADER, priority.as_str());
        }
        let mut request = request
            .body(Full::new(call.body.clone().unwrap_or_default()))
            .map_err(|e| Error::InvalidInput(format!("cannot build a request for {url}: {e}")))?;
        if let Some((name, secret)) = auth {
            let value = if name == AUTHORIZATION.as_str() {
                format!("Bearer {}", secret.expose())
            } else {
                secret.expose().to_owned()
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                Error::InvalidInput("the credential is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::HeaderName::from_static(name), value);
        }
        let namespace = self
            .scope
            .namespace
            .clone()
            .or_else(|| self.shared.config.namespace.as_deref().map(Namespace::new));
        if let Some(namespace) = namespace {
            request.extensions_mut().insert(namespace);
        }
        if call.idempotent {
            request.extensions_mut().insert(Idempotent);
        }
        let response = self
            .shared
            .service
            .clone()
            .oneshot(request)
            .await
            .map_err(Error::Transport)?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let info = response.extensions().get::<RetryInfo>().copied();
            let retry_after = info.and_then(|i| i.last_retry_after).or_else(|| {
                pacer::retry_after::retry_after(response.headers(), std::time::SystemTime::now())
            });
            return Err(Error::RateLimit(RateLimitError {
                url,
                attempts: info.map_or(1, |i| i.attempts),
                retry_after,
            }));
        }
        Ok(response)
    }

    /// Sends `call` authenticated; with a login, one refresh (or new login) and replay when
    /// the access token was refused.
    pub(crate) async fn send(&self, call: &Call) -> Result<Response<Bytes>, Error> {
        match &self.shared.credentials {
            Credentials::None => self.send_once(call, None).await,
            Credentials::ApiKey(key) => self.send_once(call, Some((API_KEY_HEADER, key))).await,
            Credentials::Login { .. } => {
                let access = self.access_token().await?;
                let response = self
                    .send_once(call, Some((AUTHORIZATION.as_str(), &access)))
                    .await?;
                if response.status() != StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                let renewed = self.renew(&access).await?;
                self.send_once(call, Some((AUTHORIZATION.as_str(), &renewed)))
                    .await
            }
        }
    }

    /// The current access token, logging in first when there is none.
    async fn access_token(&self) -> Result<Secret, Error> {
        let mut tokens = self.shared.tokens.lock().await;
        if let Some(access) = &tokens.access {
            return Ok(access.clone());
        }
        self.login(&mut tokens).await
    }

    /// A new access token after `refused` was refused: the refresh token first, a new login
    /// when that fails. Concurrent callers refused the same token renew it once.
    async fn renew(&self, refused: &Secret) -> Result<Secret, Error> {
        let mut tokens = self.shared.tokens.lock().await;
        if let Some(access) = &tokens.access {
            if access != refused {
                return Ok(access.clone());
            }
        }
        if let Some(refresh) = tokens.refresh.clone() {
            let call = Call {
                method: Method::POST,
                path: "/api/auth/refresh".into(),
                body: None,
                idempotent: false,
            };
            let response = self
                .send_once(&call, Some((AUTHORIZATION.as_str(), &refresh)))
                .await?;
            if response.status().is_success() {
                let access = token_field(&response, "access_token")?;
                tokens.access = Some(access.clone());
                return Ok(access);
            }
            tracing::debug!(status = %response.status(), "refresh refused; logging in again");
        }
        self.login(&mut tokens).await
    }

    async fn login(&self, tokens: &mut Tokens) -> Result<Secret, Error> {
        let Credentials::Login { username, password } = &self.shared.credentials else {
            return Err(Error::Unauthorized {
                status: 401,
                message: "no credentials to log in with".into(),
            });
        };
        let body = json!({ "username": username, "password": password.expose() });
        // A login changes nothing on the server; its 429s are retried like any other.
        let call = Call::post_json("/api/auth/login".into(), &body, false);
        let response = self.send_once(&call, None).await?;
        if !response.status().is_success() {
            return Err(status_error(&response, &self.url("/api/auth/login")));
        }
        let access = token_field(&response, "access_token")?;
        tokens.refresh = token_field(&response, "refresh_token").ok();
        tokens.access = Some(access.clone());
        Ok(access)
    }

    /// Runs a GraphQL document on `branch` (default: this client's branch) with `variables`,
    /// and returns its `data`. A response with `errors` is an [`Error::GraphQL`].
    ///
    /// Queries are idempotent (retried on transient failures when `retry_on_failure` is set);
    /// a document with a mutation is never sent twice except after a `429`.
    pub async fn execute_graphql(
        &self,
        query: &str,
        variables: Option<Value>,
        branch: Option<&str>,
    ) -> Result<Value, Error> {
        let branch = branch.unwrap_or(self.branch_name());
        let path = format!("/graphql/{}", encode_branch(branch));
        let mut body = json!({ "query": query });
        if let Some(variables) = variables {
            body["variables"] = variables;
        }
        let call = Call::post_json(path, &body, is_query(query));
        let url = self.url(&call.path);
        let response = self.send(&call).await?;
        decode_envelope(&response, &url)
    }

    /// Sends a REST call and decodes its JSON answer (`/api/...`).
    pub(crate) async fn rest(&self, call: Call) -> Result<Value, Error> {
        let url = self.url(&call.path);
        let response = self.send(&call).await?;
        if !response.status().is_success() {
            return Err(status_error(&response, &url));
        }
        serde_json::from_slice(response.body()).map_err(|e| Error::Decode(format!("{url}: {e}")))
    }

    /// The version the server reports (`InfrahubInfo`).
    pub async fn server_version(&self) -> Result<String, Error> {
        let data = self.execute_graphql(INFO_QUERY, None, None).await?;
        data.pointer("/InfrahubInfo/version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode("InfrahubInfo without a version".into()))
    }

    pub(crate) fn pagination_size(&self) -> u64 {
        u64::from(self.shared.config.pagination_size)
    }

    pub(crate) fn max_concurrent(&self) -> usize {
        self.shared.config.max_concurrent_execution
    }
}

/// `InfrahubInfo { version }`.
pub const INFO_QUERY: &str = "query InfrahubInfo {\n  InfrahubInfo {\n    version\n  }\n}\n";

fn token_field(response: &Response<Bytes>, field: &str) -> Result<Secret, Error> {
    let value: Value = serde_json::from_slice(response.body())
        .map_err(|_| Error::Decode("the auth response is not JSON".into()))?;
    value
        .get(field)
        .and_then(Value::as_str)
        .map(Secret::new)
        .ok_or_else(|| Error::Decode(format!("the auth response has no {field}")))
}

fn excerpt(body: &[u8]) -> String {
    let mut end = body.len().min(512);
    while end > 0 && std::str::from_utf8(&body[..end]).is_err() {
        end -= 1;
    }
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// The first GraphQL error message in a body, if it has one.
fn first_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .pointer("/errors/0/message")
        .or_else(|| value.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn status_error(response: &Response<Bytes>, url: &str) -> Error {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Error::Unauthorized {
            status: status.as_u16(),
            message: first_message(response.body())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
        };
    }
    Error::Http {
        status: status.as_u16(),
        url: url.to_owned(),
        body: excerpt(response.body()),
    }
}

fn decode_envelope(response: &Response<Bytes>, url: &str) -> Result<Value, Error> {
    let status = response.status();
    // A 5xx is the server (or a proxy) failing, whatever body it carries.
    if status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status.is_server_error()
    {
        return Err(status_error(response, url));
    }
    let envelope: Value = match serde_json::from_slice(response.body()) {
        Ok(value) => value,
        Err(e) if status.is_success() => {
            return Err(Error::Decode(format!("{url}: not a GraphQL response: {e}")));
        }
        Err(_) => return Err(status_error(response, url)),
    };
    let data = envelope.get("data").cloned().filter(|d| !d.is_null());
    if let Some(errors) = envelope.get("errors").filter(|e| !e.is_null()) {
        let errors: Vec<GraphQLErrorItem> = serde_json::from_value(errors.clone())
            .map_err(|e| Error::Decode(format!("{url}: malformed errors: {e}")))?;
        if !errors.is_empty() {
            return Err(Error::GraphQL(GraphQLError { errors, data }));
        }
    }
    if !status.is_success() {
        return Err(status_error(response, url));
    }
    data.ok_or_else(|| Error::Decode(format!("{url}: a GraphQL response without data")))
}

/// Whether a document holds no mutation (nor subscription): only then is it safe to send
/// twice. Errs on the side of "not a query".
pub(crate) fn is_query(document: &str) -> bool {
    !document
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == "mutation" || word == "subscription")
}

/// Branch names may hold `/`; everything outside the unreserved set is percent-encoded.
fn encode_branch(branch: &str) -> String {
    let mut out = String::with_capacity(branch.len());
    for byte in branch.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_told_from_mutations() {
        assert!(is_query("query X { BuiltinTag { count } }"));
        assert!(is_query("{ BuiltinTag { count } }"));
        assert!(!is_query(
            "mutation X($data: D!) { BuiltinTagCreate(data: $data) { ok } }"
        ));
        assert!(!is_query("query A { a } mutation B { b }"));
        // A field merely containing the word is still a query.
        assert!(is_query("query { mutations_total { count } }"));
    }

    #[test]
    fn branch_names_are_encoded() {
        assert_eq!(encode_branch("feature/x-1"), "feature/x-1");
        assert_eq!(encode_branch("a b?"), "a%20b%3F");
    }
}
