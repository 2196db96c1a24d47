//! What the generated methods call: one request description ([`Call`]) and the four ways an
//! answer is read (JSON, JSON or 404, created id, nothing).

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::client::NamespacedClient;
use crate::decode::{created_id, error_for, json};
use crate::error::{Error, Result};
use crate::secret_names::looks_secret;

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

    /// Whether the operation's bodies carry secrets: a segment of its path looks secret (a
    /// client's secret, credentials, a password reset), or the request body sets a field
    /// whose name looks secret (a client with its `secret`, a user with `credentials`, a
    /// component with `bindCredential` in its config). Its errors then quote nothing of the
    /// answer's body, not even Keycloak's message (which could echo the secret).
    fn secret_body(&self) -> bool {
        self.path.split('/').any(looks_secret)
            || self.body.as_deref().is_some_and(|body| {
                serde_json::from_slice::<serde_json::Value>(body)
                    .map_or(true, |value| sets_secret(&value))
            })
    }
}

/// Whether `value` has, at any depth, a non-null value under a key that looks secret.
fn sets_secret(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| (looks_secret(key) && !value.is_null()) || sets_secret(value)),
        serde_json::Value::Array(items) => items.iter().any(sets_secret),
        _ => false,
    }
}

impl NamespacedClient {
    /// The collection URL of `call` (base URL and path, no query).
    fn collection(&self, call: &Call) -> String {
        let mut url = String::with_capacity(self.client().base().len() + call.path.len());
        url.push_str(self.client().base());
        url.push_str(&call.path);
        url
    }

    /// Sends `call` through the client's stack with this namespace.
    async fn send(&self, call: &Call) -> Result<Response<Bytes>> {
        let mut uri = self.collection(call);
        if !call.query.is_empty() {
            uri.push('?');
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &call.query {
                query.append_pair(name, value);
            }
            uri.push_str(&query.finish());
        }
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(ACCEPT, "application/json");
        if call.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let mut request = builder
            .body(Full::new(call.body.clone().unwrap_or_default()))
            .map_err(|error| Error::Transport(Box::new(error)))?;
        request.extensions_mut().insert(self.namespace().clone());
        self.client()
            .service()
            .oneshot(request)
            .await
            .map_err(Error::from_stack)
    }

    async fn send_ok(&self, call: &Call) -> Result<Response<Bytes>> {
        let response = self.send(call).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(error_for(&response, call.secret_body()))
        }
    }

    /// A JSON answer.
    pub(crate) async fn fetch<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        json(self.send_ok(&call).await?.body(), call.secret_body())
    }

    /// A JSON answer, or `None` on 404.
    pub(crate) async fn fetch_optional<T: DeserializeOwned>(
        &self,
        call: Call,
    ) -> Result<Option<T>> {
        let response = self.send(&call).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(error_for(&response, call.secret_body()));
        }
        json(response.body(), call.secret_body()).map(Some)
    }

    /// A create: the new id from `Location`, which must name one object directly under the
    /// collection the request created into.
    pub(crate) async fn send_created(&self, call: Call) -> Result<String> {
        let response = self.send_ok(&call).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .ok_or(Error::MissingLocation)?;
        created_id(&self.collection(&call), location.as_bytes())
    }

    /// An answer without a body.
    pub(crate) async fn send_empty(&self, call: Call) -> Result<()> {
        self.send_ok(&call).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bodies_are_told_by_their_path() {
        let secret = Call::new(
            Method::GET,
            "/admin/realms/r/clients/c-1/client-secret".into(),
        );
        assert!(secret.secret_body());
        let reset = Call::new(
            Method::PUT,
            "/admin/realms/r/users/u-1/reset-password".into(),
        );
        assert!(reset.secret_body());
        let plain = Call::new(Method::GET, "/admin/realms/r/clients/c-1".into());
        assert!(!plain.secret_body());
        let with_secret = Call::new(Method::POST, "/admin/realms/r/clients".into())
            .json(&serde_json::json!({"clientId": "a", "secret": "s"}))
            .unwrap_or_else(|_| unreachable!());
        assert!(with_secret.secret_body());
        let config = Call::new(Method::POST, "/admin/realms/r/components".into())
            .json(&serde_json::json!({"config": {"bindCredential": ["s"]}}))
            .unwrap_or_else(|_| unreachable!());
        assert!(config.secret_body());
        let without = Call::new(Method::POST, "/admin/realms/r/clients".into())
            .json(&serde_json::json!({"clientId": "a", "secret": null}))
            .unwrap_or_else(|_| unreachable!());
        assert!(!without.secret_body());
    }
}
