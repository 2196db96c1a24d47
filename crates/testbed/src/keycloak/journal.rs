//! The request log: what the fake saw, in order, so tests can compare two clients' traffic.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::Keycloak;
use super::reply::bad_request;

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
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return bad_request("request body too large");
    };
    {
        let mut state = kc.lock();
        if state.log.len() >= LOG_LIMIT {
            state.log.remove(0);
        }
        state.log.push(RecordedRequest {
            method: parts.method.to_string(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

impl Keycloak {
    /// The requests received so far, oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    /// Forgets the requests received so far.
    pub(crate) fn clear_requests(&self) {
        self.lock().log.clear();
    }
}
