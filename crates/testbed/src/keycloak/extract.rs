//! What the admin API's handlers take from a request, as axum extractors: the bearer check,
//! the query string, a representation body.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;

use super::Keycloak;
use super::rep::{Obj, parse_object};
use super::reply::{bad_request, error};
use crate::util::request::{base_url, bearer, parse_pairs};
use crate::util::tokens::Presented;

/// An admin request carrying a live access token from any realm (else Keycloak's 401), and
/// the base URL it used, for `Location` headers.
pub(super) struct Authorized {
    pub(super) base_url: String,
}

impl FromRequestParts<Arc<Keycloak>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, kc: &Arc<Keycloak>) -> Result<Self, Response> {
        let unauthorized = || error(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized");
        let token = bearer(&parts.headers).ok_or_else(unauthorized)?;
        match kc.lock().access.check(token) {
            Presented::Live(_) => Ok(Self {
                base_url: base_url(&parts.headers, &kc.fallback_base),
            }),
            Presented::Expired | Presented::Unknown => Err(unauthorized()),
        }
    }
}

/// The query string's pairs (later duplicates win).
pub(super) struct ListQuery(pub(super) HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self(parse_pairs(query.as_bytes())))
    }
}

/// A body that is a JSON object (else Keycloak's 400).
pub(super) struct Rep(pub(super) Obj);

impl<S: Send + Sync> FromRequest<S> for Rep {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| bad_request("Invalid JSON: expected an object"))?;
        parse_object(&body).map(Self)
    }
}
