//! [`InventoryClient`]: construction, per-call scope (branch, namespace, priority), sending
//! a [`Call`] through the [`HttpService`], and `execute_graphql`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use pacer::BoxError;
use pacer::Namespace;
use pacer::retry::{Idempotent, RetryInfo};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::{Config, Priority};
use crate::error::{Error, RateLimitError};
use crate::response::{decode_envelope, service_error, status_error};
use crate::stack::{self, HttpService};

/// The header carrying the request's priority.
pub const PRIORITY_HEADER: &str = "x-priority";

/// An async Infrahub client. Cheap to clone (clones share the connection pool, the rate
/// limiter and the login tokens); [`on_branch`](Self::on_branch), [`namespace`](Self::namespace)
/// and [`priority`](Self::priority) return a clone scoped to one branch, tenant or priority.
///
/// Every request passes through the pacer stack: the rate limiter (keyed by the namespace),
/// `Retry-After`, retries of `429`s with capped, jittered backoff and, with
/// `retry_on_failure`, of transient failures of idempotent operations (GraphQL queries, never
/// mutations). With a username and password, pacer's bearer-token layer logs in (under its
/// own namespace, [`TOKEN_NAMESPACE`](crate::TOKEN_NAMESPACE)), renews once and replays once
/// when a token is refused, with one token request in flight for every caller.
#[derive(Clone)]
pub struct InventoryClient {
    shared: Arc<Shared>,
    scope: Scope,
}

struct Shared {
    config: Config,
    service: HttpService,
}

#[derive(Clone, Debug, Default)]
struct Scope {
    branch: Option<String>,
    namespace: Option<Namespace>,
    priority: Option<Priority>,
}

impl fmt::Debug for InventoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InventoryClient")
            .field("address", &self.shared.config.address)
            .field("branch", &self.branch_name())
            .field("namespace", &self.scope.namespace)
            .field("priority", &self.scope.priority)
            .field("auth", &stack::auth_kind(&self.shared.config))
            .finish_non_exhaustive()
    }
}

/// A call (its body read included) outlasted `max_retry_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineElapsed {
    /// The bound that ran out.
    pub deadline: std::time::Duration,
}

impl fmt::Display for DeadlineElapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the call did not finish within max_retry_duration ({:?})",
            self.deadline
        )
    }
}

impl std::error::Error for DeadlineElapsed {}

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

impl InventoryClient {
    /// A client over [`pacer::client::Client`] (rate limiter, `Retry-After`, retries,
    /// per-attempt timeout, total deadline, hyper-util's pooled client over rustls, HTTP/1.1
    /// and HTTP/2), configured from `config`: the retry settings come from the `INFRAHUB_*`
    /// fields, the limits, TLS and metrics settings from `config.pacer`.
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
        let service = stack::build(&config, metrics)?;
        Ok(Self::from_parts(config, service))
    }

    /// A client over any HTTP service (for instance one composed from pacer's layers with a
    /// TLS connector), with the configured authentication on top. Response bodies are read
    /// to the end (at most [`MAX_RESPONSE_BYTES`](crate::MAX_RESPONSE_BYTES)) before they are
    /// decoded.
    pub fn with_service<S, B>(config: Config, service: S) -> Result<Self, Error>
    where
        S: tower::Service<Request<Full<Bytes>>, Response = Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        config.validate()?;
        let service = stack::authenticated(&config, service)?;
        Ok(Self::from_parts(config, service))
    }

    fn from_parts(config: Config, service: HttpService) -> Self {
        Self {
            shared: Arc::new(Shared { config, service }),
            scope: Scope::default(),
        }
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

    /// Sends `call` (authenticated by the stack); a final `429` becomes [`RateLimitError`].
    pub(crate) async fn send(&self, call: &Call) -> Result<Response<Bytes>, Error> {
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
        // The total deadline covers the whole exchange, the body read included.
        let deadline = self.shared.config.max_retry_duration;
        let response = tokio::time::timeout(deadline, self.shared.service.clone().oneshot(request))
            .await
            .map_err(|_| Error::Transport(Box::new(DeadlineElapsed { deadline })))?
            .map_err(service_error)?;
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

/// Whether a document holds no mutation (nor subscription): only then is it safe to send
/// twice. Errs on the side of "not a query".
pub(crate) fn is_query(document: &str) -> bool {
    !document
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == "mutation" || word == "subscription")
}

/// What a branch name keeps unencoded in its path segment: the unreserved characters but
/// `.` (so that `.` and `..` cannot be dot-segments).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// A branch name as one path segment: everything outside `A-Za-z0-9-_~` is percent-encoded,
/// `/` and `.` included, so no name (`..`, `a/../b`) can leave `/graphql/{branch}`.
pub(crate) fn encode_branch(branch: &str) -> String {
    utf8_percent_encode(branch, SEGMENT).to_string()
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
        assert_eq!(encode_branch("feature/x-1"), "feature%2Fx-1");
        assert_eq!(encode_branch("a b?"), "a%20b%3F");
        assert_eq!(encode_branch(".."), "%2E%2E");
        assert_eq!(encode_branch("../../api"), "%2E%2E%2F%2E%2E%2Fapi");
        assert_eq!(encode_branch("main"), "main");
    }
}
