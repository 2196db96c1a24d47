//! The answers the fake Keycloak gives, in Keycloak's shapes.

use axum::response::Response;
use http::StatusCode;
use http::header::LOCATION;
use serde_json::json;

use crate::util::response::{empty, json, location};

/// A handler's answer: errors are ready responses too.
pub(super) type Reply = Result<Response, Response>;

/// A `{"error": ...}` answer, as Keycloak's 401s, 404s and 405s are.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    json(status, &json!({ "error": message }))
}

/// An OAuth error from the token endpoint.
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// A 409 with Keycloak's `errorMessage`.
pub(super) fn conflict(message: String) -> Response {
    json(StatusCode::CONFLICT, &json!({ "errorMessage": message }))
}

/// A 400 with Keycloak's `errorMessage`.
pub(super) fn bad_request(message: &str) -> Response {
    json(StatusCode::BAD_REQUEST, &json!({ "errorMessage": message }))
}

/// A `201 Created` with the new member's URL in `Location` and no body.
pub(super) fn created(url: String) -> Response {
    let mut response = empty(StatusCode::CREATED);
    response.headers_mut().insert(LOCATION, location(url));
    response
}

/// `Could not find {what}`, the 404 of the families served from the raw path.
pub(super) fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("Could not find {what}"))
}

/// The 404 Keycloak gives for a path nothing serves.
pub(super) fn route_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
}

/// What Keycloak answers to a request a resource does not serve: the 405 for a method it
/// does not take at one of its paths (`tail`, what follows the resource's own path, has at
/// most `depth` segments), else the 404 of a path it does not have.
pub(super) fn unserved(tail: &[&str], depth: usize) -> Response {
    if tail.len() <= depth {
        method_not_allowed()
    } else {
        route_not_found()
    }
}

/// The 405 Keycloak gives for a method a path does not serve.
pub(super) fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP 405 Method Not Allowed",
    )
}
