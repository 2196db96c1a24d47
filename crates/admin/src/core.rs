//! What the generated methods call: one request description ([`Call`]), path encoding, and
//! the four ways an answer is read (JSON, JSON or 404, created id, nothing).

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::NamespacedClient;
use crate::error::{Error, Result, excerpt};

/// Everything but RFC 3986's unreserved characters is encoded in a path segment, so a realm
/// named `a/b?c` stays one segment: `a%2Fb%3Fc`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `value` as one percent-encoded path segment. `.` and `..` are encoded too, so
/// they cannot walk up the path.
pub(crate) fn push_segment(target: &mut String, value: &str) {
    match value {
        "." => target.push_str("%2E"),
        ".." => target.push_str("%2E%2E"),
        _ => target.extend(utf8_percent_encode(value, SEGMENT)),
    }
}

/// Appends a value that may span segments (a group path `/top/child`): each segment is
/// encoded on its own, the slashes between them are kept, a leading slash is dropped.
pub(crate) fn push_segments(target: &mut String, value: &str) {
    let value = value.strip_prefix('/').unwrap_or(value);
    for (index, segment) in value.split('/').enumerate() {
        if index > 0 {
            target.push('/');
        }
        push_segment(target, segment);
    }
}

/// One request a generated method makes.
#[derive(Debug)]
pub(crate) struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Bytes>,
}

impl Call {
    pub(crate) fn new(method: Method, path: String) -> Self {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn query(mut self, pairs: Vec<(&'static str, String)>) -> Self {
        self.query = pairs;
        self
    }

    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        self.body = Some(Bytes::from(
            serde_json::to_vec(body).map_err(Error::Encode)?,
        ));
        Ok(self)
    }
}

impl NamespacedClient {
    /// Sends `call` through the client's stack with this namespace.
    async fn send(&self, call: Call) -> Result<Response<Bytes>> {
        let mut uri = String::with_capacity(self.client.base().len() + call.path.len() + 16);
        uri.push_str(self.client.base());
        uri.push_str(&call.path);
        if !call.query.is_empty() {
            uri.push('?');
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &call.query {
                query.append_pair(name, value);
            }
            uri.push_str(&query.finish());
        }
        let mut builder = Request::builder()
            .method(call.method)
            .uri(uri)
            .header(ACCEPT, "application/json");
        if call.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let mut request = builder
            .body(Full::new(call.body.unwrap_or_default()))
            .map_err(|error| Error::Transport(Box::new(error)))?;
        request.extensions_mut().insert(self.namespace.clone());
        self.client
            .service()
            .oneshot(request)
            .await
            .map_err(Error::from_stack)
    }

    async fn send_ok(&self, call: Call) -> Result<Response<Bytes>> {
        let response = self.send(call).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(Error::from_response(&response))
        }
    }

    /// A JSON answer.
    pub(crate) async fn fetch<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        decode(&self.send_ok(call).await?)
    }

    /// A JSON answer, or `None` on 404.
    pub(crate) async fn fetch_optional<T: DeserializeOwned>(
        &self,
        call: Call,
    ) -> Result<Option<T>> {
        let response = self.send(call).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(Error::from_response(&response));
        }
        decode(&response).map(Some)
    }

    /// A create: the new id from `Location`.
    pub(crate) async fn send_created(&self, call: Call) -> Result<String> {
        let response = self.send_ok(call).await?;
        response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(id_from_location)
            .ok_or(Error::MissingLocation)
    }

    /// An answer without a body.
    pub(crate) async fn send_empty(&self, call: Call) -> Result<()> {
        self.send_ok(call).await.map(drop)
    }
}

fn decode<T: DeserializeOwned>(response: &Response<Bytes>) -> Result<T> {
    serde_json::from_slice(response.body()).map_err(|source| Error::Decode {
        source,
        excerpt: excerpt(response.body()),
    })
}

/// The last path segment of a `Location` URL, percent-decoded (role names may hold spaces).
pub(crate) fn id_from_location(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    if last.is_empty() {
        return None;
    }
    percent_decode_str(last)
        .decode_utf8()
        .ok()
        .map(|id| id.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape() {
        let mut path = String::from("/admin/realms/");
        push_segment(&mut path, "a/b?c#d e%");
        assert_eq!(path, "/admin/realms/a%2Fb%3Fc%23d%20e%25");
        let mut path = String::new();
        push_segment(&mut path, "..");
        assert_eq!(path, "%2E%2E");
        let mut path = String::new();
        push_segments(&mut path, "/top/child ?");
        assert_eq!(path, "top/child%20%3F");
    }

    #[test]
    fn ids_from_location() {
        assert_eq!(
            id_from_location("http://kc/admin/realms/r/clients/abc-1").as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            id_from_location("http://kc/admin/realms/r/roles/my%20role").as_deref(),
            Some("my role")
        );
        assert_eq!(id_from_location("http://kc/").as_deref(), Some("kc"));
        assert_eq!(id_from_location(""), None);
    }
}
