//! Shared helpers: a hyper-util client over real TCP, with a bounded wait on every request.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pacer_testbed::Testbed;
use serde_json::Value;

/// Every network wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request`; `Err` is the client's transport error.
pub async fn try_send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Reply, hyper_util::client::legacy::Error> {
    let response = tokio::time::timeout(WAIT, client.request(request))
        .await
        .expect("response within the bounded wait")?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(WAIT, response.into_body().collect())
        .await
        .expect("body within the bounded wait")
        .expect("body")
        .to_bytes();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Reply {
    try_send(client, request).await.expect("a response")
}

pub fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into())).unwrap()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn token_form(
    client: &HttpClient,
    tb: &Testbed,
    realm: &str,
    pairs: &[(&str, &str)],
) -> Reply {
    let url = format!(
        "{}/realms/{realm}/protocol/openid-connect/token",
        tb.keycloak_url()
    );
    send(
        client,
        request(
            Method::POST,
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            form(pairs),
        ),
    )
    .await
}

/// A client-credentials access token for the admin API.
pub async fn admin_token(client: &HttpClient, tb: &Testbed) -> String {
    let c = tb.credentials().clone();
    let reply = token_form(
        client,
        tb,
        &c.keycloak_realm,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.keycloak_client_id),
            ("client_secret", &c.keycloak_client_secret),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// A call with a JSON body (`None`: empty) and one credential header.
async fn json_call(
    client: &HttpClient,
    method: Method,
    url: &str,
    credential: (&str, &str),
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [credential, ("content-type", "application/json")];
    send(client, request(method, url, &headers, body)).await
}

/// An admin API call with a Bearer token.
pub async fn admin(
    client: &HttpClient,
    tb: &Testbed,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let auth = format!("Bearer {token}");
    let url = format!("{}{path}", tb.keycloak_url());
    json_call(client, method, &url, ("authorization", &auth), body).await
}

/// A GraphQL call authenticated with the API key, against `path` (`/graphql` or `/graphql/{branch}`).
pub async fn graphql_at(
    client: &HttpClient,
    tb: &Testbed,
    path: &str,
    query: &str,
    variables: Value,
) -> Reply {
    let body = serde_json::json!({"query": query, "variables": variables});
    infrahub_api(client, tb, Method::POST, path, Some(body)).await
}

/// A call to the fake Infrahub (`/api/...`, `/graphql`) authenticated with the API key.
pub async fn infrahub_api(
    client: &HttpClient,
    tb: &Testbed,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let key = tb.credentials().infrahub_api_key.clone();
    let url = format!("{}{path}", tb.infrahub_url());
    json_call(client, method, &url, ("x-infrahub-key", &key), body).await
}

pub async fn graphql(client: &HttpClient, tb: &Testbed, query: &str) -> Value {
    let reply = graphql_at(client, tb, "/graphql", query, Value::Null).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()
}
