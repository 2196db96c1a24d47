//! Infrahub's authentication: the API key header, JWT login and refresh, and the check every
//! other endpoint makes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::Infrahub;
use super::state::Store;
use crate::util::request::bearer;
use crate::util::response::json;
use crate::util::tokens::Presented;

/// The header Infrahub reads API keys from.
pub const API_KEY_HEADER: &str = "x-infrahub-key";

/// A request carrying a live access token (`Authorization: Bearer`) or the API key, else
/// Infrahub's 401.
pub(super) struct Authorized;

impl FromRequestParts<Arc<Infrahub>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ih: &Arc<Infrahub>) -> Result<Self, Response> {
        let headers = &parts.headers;
        if let Some(key) = headers.get(API_KEY_HEADER) {
            return if key.as_bytes() == ih.credentials.infrahub_api_key.as_bytes() {
                Ok(Self)
            } else {
                Err(unauthorized("Invalid token"))
            };
        }
        let Some(token) = bearer(headers) else {
            return Err(unauthorized(
                "Authentication is required to perform this operation",
            ));
        };
        match ih.lock().access.check(token) {
            Presented::Live(()) => Ok(Self),
            // The message the Python SDK looks for before it refreshes its token.
            Presented::Expired => Err(unauthorized("Expired Signature")),
            Presented::Unknown => Err(unauthorized("Invalid token")),
        }
    }
}

impl Infrahub {
    fn issue_access(&self, state: &mut Store, subject: &str) -> String {
        state
            .access
            .mint("access", subject, "infrahub", self.token_lifetime, ())
    }
}

/// Infrahub's 401, in its GraphQL error shape.
fn unauthorized(message: &str) -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        &json!({"data": null, "errors": [{"message": message, "extensions": {"code": 401}}]}),
    )
}

pub(super) async fn login(State(ih): State<Arc<Infrahub>>, body: Bytes) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let username = parsed.get("username").and_then(Value::as_str);
    let password = parsed.get("password").and_then(Value::as_str);
    if username != Some(ih.credentials.infrahub_user.as_str())
        || password != Some(ih.credentials.infrahub_password.as_str())
    {
        return unauthorized("Incorrect username or password");
    }
    let mut state = ih.lock();
    let subject = ih.credentials.infrahub_user.clone();
    let access = ih.issue_access(&mut state, &subject);
    let refresh = state
        .refresh
        .mint("refresh", &subject, "infrahub", ih.refresh_lifetime, ());
    json(
        StatusCode::OK,
        &json!({"access_token": access, "refresh_token": refresh}),
    )
}

pub(super) async fn refresh(State(ih): State<Arc<Infrahub>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized("Authentication is required to perform this operation");
    };
    let mut state = ih.lock();
    match state.refresh.check(token) {
        Presented::Live(()) => {
            let subject = ih.credentials.infrahub_user.clone();
            let access = ih.issue_access(&mut state, &subject);
            json(StatusCode::OK, &json!({"access_token": access}))
        }
        Presented::Expired => unauthorized("Expired Signature"),
        Presented::Unknown => unauthorized("Invalid token"),
    }
}
