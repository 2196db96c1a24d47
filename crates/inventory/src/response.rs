//! Reading answers: the GraphQL `{data, errors}` envelope, status errors with a bounded
//! excerpt of the body, the errors of the service below (auth, blocking) as [`Error`]s.

use bytes::Bytes;
use http::{Response, StatusCode};
use pacer::BoxError;
use pacer::auth::AuthError;
use serde_json::Value;

use crate::error::{Error, GraphQLError, GraphQLErrorItem};

/// The longest excerpt of a body an [`Error::Http`] keeps.
const MAX_EXCERPT_BYTES: usize = 512;

fn excerpt(body: &[u8]) -> String {
    let mut end = body.len().min(MAX_EXCERPT_BYTES);
    while end > 0 && std::str::from_utf8(&body[..end]).is_err() {
        end -= 1;
    }
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// The message of an Infrahub error body: GraphQL's `errors[0].message`, or FastAPI's
/// `detail`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .pointer("/errors/0/message")
        .or_else(|| value.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The error a non-success answer is: [`Error::Unauthorized`] for `401`/`403`, else
/// [`Error::Http`] with the start of the body.
pub(crate) fn status_error(response: &Response<Bytes>, url: &str) -> Error {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Error::Unauthorized {
            status: status.as_u16(),
            message: error_message(response.body())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
        };
    }
    Error::Http {
        status: status.as_u16(),
        url: url.to_owned(),
        body: excerpt(response.body()),
    }
}

/// The `data` of a GraphQL answer; its `errors` as [`Error::GraphQL`]; anything else that is
/// not a GraphQL answer a [`Error::Decode`] or status error. Never panics, whatever the body.
pub fn decode_envelope(response: &Response<Bytes>, url: &str) -> Result<Value, Error> {
    let status = response.status();
    // A 5xx is the server (or a proxy) failing, whatever body it carries.
    if status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status.is_server_error()
    {
        return Err(status_error(response, url));
    }
    let envelope: Value = match serde_json::from_slice(response.body()) {
        Ok(value) => value,
        Err(e) if status.is_success() => {
            return Err(Error::Decode(format!("{url}: not a GraphQL response: {e}")));
        }
        Err(_) => return Err(status_error(response, url)),
    };
    if !envelope.is_object() && status.is_success() {
        return Err(Error::Decode(format!(
            "{url}: a GraphQL response is an object"
        )));
    }
    let data = envelope.get("data").cloned().filter(|d| !d.is_null());
    if let Some(errors) = envelope.get("errors").filter(|e| !e.is_null()) {
        let errors: Vec<GraphQLErrorItem> = serde_json::from_value(errors.clone())
            .map_err(|e| Error::Decode(format!("{url}: malformed errors: {e}")))?;
        if !errors.is_empty() {
            return Err(Error::GraphQL(GraphQLError { errors, data }));
        }
    }
    if !status.is_success() {
        return Err(status_error(response, url));
    }
    data.ok_or_else(|| Error::Decode(format!("{url}: a GraphQL response without data")))
}

/// The service's error as an [`Error`]: a refused login is [`Error::Unauthorized`], any
/// other token failure [`Error::Auth`], the rest [`Error::Transport`].
pub(crate) fn service_error(error: BoxError) -> Error {
    match error.downcast::<AuthError>() {
        Ok(auth) => match *auth {
            AuthError::Refused { status, refusal } => Error::Unauthorized {
                status: status.as_u16(),
                message: refusal
                    .description()
                    .or(refusal.error())
                    .map(str::to_owned)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            },
            other => Error::Auth(other),
        },
        Err(error) => Error::Transport(error),
    }
}
