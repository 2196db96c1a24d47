//! Infrahub's authentication: the API key header, JWT login and refresh, and the check every
//! other endpoint makes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Infrahub;
use super::state::Store;
use crate::util::clock::deadline;
use crate::util::jwt::jwt;
use crate::util::request::bearer;
use crate::util::response::json;

/// The header Infrahub reads API keys from.
pub const API_KEY_HEADER: &str = "x-infrahub-key";

/// Token tables are pruned of expired entries once they hold this many.
const PRUNE_AT: usize = 4096;

impl Infrahub {
    /// `Ok` for a live access token or the API key, else Infrahub's 401.
    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        if let Some(key) = headers.get(API_KEY_HEADER) {
            return if key.as_bytes() == self.credentials.infrahub_api_key.as_bytes() {
                Ok(())
            } else {
                Err(unauthorized("Invalid token"))
            };
        }
        let Some(token) = bearer(headers) else {
            return Err(unauthorized(
                "Authentication is required to perform this operation",
            ));
        };
        match self.lock().access.get(token) {
            Some(expires) if Instant::now() < *expires => Ok(()),
            // The message the Python SDK looks for before it refreshes its token.
            Some(_) => Err(unauthorized("Expired Signature")),
            None => Err(unauthorized("Invalid token")),
        }
    }

    fn issue_access(&self, state: &mut Store, subject: &str) -> String {
        let now = Instant::now();
        if state.access.len() >= PRUNE_AT {
            state.access.retain(|_, e| *e > now);
        }
        let token = jwt("access", subject, "infrahub", self.token_lifetime.as_secs());
        state
            .access
            .insert(token.clone(), deadline(self.token_lifetime));
        token
    }
}

pub(super) fn unauthorized(message: &str) -> Response {
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
    let now = Instant::now();
    if state.refresh.len() >= PRUNE_AT {
        state.refresh.retain(|_, e| *e > now);
    }
    let refresh = jwt(
        "refresh",
        &subject,
        "infrahub",
        ih.refresh_lifetime.as_secs(),
    );
    state
        .refresh
        .insert(refresh.clone(), deadline(ih.refresh_lifetime));
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
    match state.refresh.get(token) {
        Some(expires) if Instant::now() < *expires => {
            let subject = ih.credentials.infrahub_user.clone();
            let access = ih.issue_access(&mut state, &subject);
            json(StatusCode::OK, &json!({"access_token": access}))
        }
        Some(_) => unauthorized("Expired Signature"),
        None => unauthorized("Invalid token"),
    }
}
