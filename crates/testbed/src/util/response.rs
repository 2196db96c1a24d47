//! Ready responses: JSON bodies, empty bodies, `Location` values.

use axum::body::Body;
use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde_json::Value;

/// A JSON response with `status`.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty response with `status`.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// A `Location` header value; falls back to the path alone if the URL is not a valid header.
pub(crate) fn location(url: String) -> HeaderValue {
    HeaderValue::try_from(url).unwrap_or_else(|_| HeaderValue::from_static("/"))
}
