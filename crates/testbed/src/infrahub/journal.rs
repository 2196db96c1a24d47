//! The journal of the requests the fake Infrahub received, for tests that compare clients.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::Infrahub;
use super::auth::API_KEY_HEADER;
use crate::util::journal::Buffered;
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

/// How many requests the journal keeps; past it the oldest are dropped.
pub const JOURNAL_CAP: usize = 10_000;

impl Infrahub {
    /// The recorded requests, oldest first.
    pub(crate) fn requests(&self) -> Vec<InfrahubRequest> {
        self.journal.entries()
    }

    /// Forgets the recorded requests.
    pub(crate) fn clear_requests(&self) {
        self.journal.clear();
    }
}

/// Records every request to the Infrahub routes in the journal.
pub(super) async fn journal(
    State(ih): State<Arc<Infrahub>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(request) = Buffered::read(request).await else {
        return json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"errors": [{"message": "request body too large"}]}),
        );
    };
    let headers = &request.parts.headers;
    let auth = if headers.contains_key(API_KEY_HEADER) {
        "api-key"
    } else if bearer(headers).is_some() {
        "bearer"
    } else {
        "none"
    };
    // Login bodies carry a password: record that a login was sent, not its content.
    let body = if request.parts.uri.path() == "/api/auth/login" {
        "(credentials)".to_owned()
    } else {
        request.body_text()
    };
    ih.journal.record(InfrahubRequest {
        method: request.parts.method.to_string(),
        path: request.target(),
        auth,
        priority: headers
            .get("x-priority")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
    next.run(request.into_request()).await
}
