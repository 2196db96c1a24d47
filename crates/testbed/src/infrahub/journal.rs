//! The journal of the requests the fake Infrahub received, for tests that compare clients.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::Infrahub;
use super::auth::API_KEY_HEADER;
use crate::util::request::bearer;
use crate::util::response::json;

/// One request the fake Infrahub received (after faults and the server-side limit), as
/// recorded for [`crate::Testbed::infrahub_requests`]. Credentials are not recorded (only
/// which kind was sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfrahubRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `api-key`, `bearer` or `none`.
    pub auth: &'static str,
    /// The `X-Priority` header, if any.
    pub priority: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// The request journal, bounded: past [`JOURNAL_CAP`] entries the oldest are dropped.
#[derive(Debug, Default)]
pub(super) struct Journal {
    entries: std::collections::VecDeque<InfrahubRequest>,
}

/// How many requests the journal keeps.
pub const JOURNAL_CAP: usize = 10_000;

impl Infrahub {
    fn record(&self, request: InfrahubRequest) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if journal.entries.len() >= JOURNAL_CAP {
            journal.entries.pop_front();
        }
        journal.entries.push_back(request);
    }

    /// The recorded requests, oldest first.
    pub(crate) fn requests(&self) -> Vec<InfrahubRequest> {
        let journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        journal.entries.iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub(crate) fn clear_requests(&self) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        journal.entries.clear();
    }
}

/// Records every request to the Infrahub routes in the journal.
pub(super) async fn journal(
    State(ih): State<Arc<Infrahub>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    // The bodies clients send are small; 16 MiB bounds a hostile one.
    let bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"errors": [{"message": "request body too large"}]}),
            );
        }
    };
    let auth = if parts.headers.contains_key(API_KEY_HEADER) {
        "api-key"
    } else if bearer(&parts.headers).is_some() {
        "bearer"
    } else {
        "none"
    };
    let body_text = String::from_utf8_lossy(&bytes);
    // Login bodies carry a password: record that a login was sent, not its content.
    let body_text = if parts.uri.path() == "/api/auth/login" {
        "(credentials)".to_owned()
    } else {
        body_text.into_owned()
    };
    ih.record(InfrahubRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        auth,
        priority: parts
            .headers
            .get("x-priority")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body_text,
    });
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}
