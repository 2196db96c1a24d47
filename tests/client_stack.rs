//! `pacer::client` built from a `Config`, against the in-process testbed: real sockets, so
//! real time; the tests assert counts and outcomes, never durations.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use pacer::Namespace;
use pacer::client::{Client, Layers, ResponseBody};
use pacer::config::Config;
use pacer_testbed::Testbed;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

/// A client-credentials token from the testbed's fake Keycloak, fetched with `client`.
async fn token(client: &Client, testbed: &Testbed) -> String {
    let creds = testbed.credentials();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        creds.keycloak_client_id, creds.keycloak_client_secret
    );
    let request = Request::post(format!(
        "{}/realms/master/protocol/openid-connect/token",
        testbed.keycloak_url()
    ))
    .header("content-type", "application/x-www-form-urlencoded")
    .body(Full::from(form))
    .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["access_token"].as_str().unwrap().to_owned()
}

fn get(url: String, token: &str, namespace: &str) -> Request<Full<Bytes>> {
    let mut request = Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    request
        .extensions_mut()
        .insert(Namespace::new(namespace.to_owned()));
    request
}

#[tokio::test]
async fn from_config_talks_to_the_testbed_and_records_metrics() {
    let testbed = Testbed::builder().start().await.unwrap();
    let config = Config::from_toml_str("[metrics]\nprefix = \"kc\"\n").unwrap();
    let mut registry = Registry::default();
    let metrics = config.metrics_builder().register(&mut registry);
    let client = Client::builder(&config).metrics(metrics).build().unwrap();

    let token = token(&client, &testbed).await;
    let response = client
        .clone()
        .oneshot(get(
            format!("{}/admin/realms/master", testbed.keycloak_url()),
            &token,
            "team-a",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let realm: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(realm["realm"], "master");

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"kc_requests_total{method="GET",status_class="2xx",namespace="team-a"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"kc_requests_total{method="POST",status_class="2xx",namespace="default"} 1"#
        ),
        "{text}"
    );
    assert_eq!(client.rate_limiter().global_quota().rate(), 50.0);
    assert_eq!(testbed.stats().requests(), 2);
}

#[test]
fn blocking_client_drives_the_same_stack() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let testbed = runtime.block_on(Testbed::builder().start()).unwrap();
    let client = pacer::client::blocking::Client::from_config(&Config::default()).unwrap();
    let response = client
        .send(
            Request::get(format!("{}/admin/serverinfo", testbed.keycloak_url()))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .unwrap();
    // No token: the fake Keycloak refuses, and a 401 is not retried.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(testbed.stats().requests(), 1);

    // Inside an async context the blocking client refuses instead of blocking a runtime thread.
    let error = runtime
        .block_on(async {
            client.send(
                Request::get(format!("{}/admin/serverinfo", testbed.keycloak_url()))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
        })
        .unwrap_err();
    assert!(error.to_string().contains("async runtime"), "{error}");
    // Dropping the last clone inside an async context must not panic either.
    runtime.block_on(async move { drop(client) });
}

#[tokio::test]
async fn credentials_are_marked_sensitive_and_absent_from_debug_output() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let seen = Arc::clone(&seen);
            async move {
                let flags: Vec<(String, bool)> = request
                    .headers()
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.is_sensitive()))
                    .collect();
                seen.lock().unwrap().push(flags);
                Ok::<_, std::convert::Infallible>(Response::new(ResponseBody::from("ok")))
            }
        })
    };
    let config = Config::default();
    let mut registry = Registry::default();
    let layers =
        Layers::from_config(&config, config.metrics_builder().register(&mut registry)).unwrap();
    let client = Client::from_layers(layers, recorder);
    let request = Request::builder()
        .method(Method::GET)
        .uri("http://api.test/x")
        .header("authorization", "Bearer s3cr3t-token")
        .header("x-infrahub-key", "s3cr3t-key")
        .header("cookie", "session=s3cr3t-cookie")
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let flags = seen.lock().unwrap().pop().unwrap();
    for (name, sensitive) in &flags {
        assert_eq!(*sensitive, name != "accept", "{name}");
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let debug = format!("{client:?} {response:?}");
    for output in [text, debug] {
        assert!(!output.contains("s3cr3t"), "{output}");
    }
}
