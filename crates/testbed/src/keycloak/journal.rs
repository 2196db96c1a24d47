//! The request log: what the fake saw, in order, so tests can compare two clients' traffic.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::Keycloak;
use super::reply::bad_request;
use crate::util::journal::Buffered;

/// At most this many requests are kept in the log; older ones are dropped.
pub(super) const LOG_LIMIT: usize = 10_000;

/// One request the fake Keycloak received (the `Authorization` header is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The raw path and query, as sent (percent-encoding included).
    pub target: String,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// Records every request, body included, before it is served.
pub(super) async fn record(
    State(kc): State<Arc<Keycloak>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(request) = Buffered::read(request).await else {
        return bad_request("request body too large");
    };
    kc.journal.record(RecordedRequest {
        method: request.parts.method.to_string(),
        target: request.target(),
        body: request.body_text(),
    });
    next.run(request.into_request()).await
}

impl Keycloak {
    /// The requests received so far, oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.journal.entries()
    }

    /// Forgets the requests received so far.
    pub(crate) fn clear_requests(&self) {
        self.journal.clear();
    }
}
