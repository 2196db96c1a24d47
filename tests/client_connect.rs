//! The connector's connect timeout: a blackholed address (a loopback listener whose accept
//! queue is full, so the kernel drops every SYN) ends a `pacer::client::Client` call with
//! `ConnectError::Timeout` within `connect_timeout_secs`, long before the per-attempt
//! timeout. The socket is real; the clock is tokio's paused one (paused after the blackhole
//! is set up), so the bound is checked exactly and the test takes no real time waiting.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use pacer::client::{Client, ConnectError};
use pacer::config::Config;
use pacer_testbed::hostile::Blackhole;

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(format!("{url}/admin/serverinfo"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn a_blackholed_address_fails_within_the_connect_timeout() {
    let blackhole = Blackhole::start().await.unwrap();
    tokio::time::pause();
    let mut config = Config {
        connect_timeout_secs: 2.0,
        timeout_secs: Some(30.0),
        ..Config::default()
    };
    config.retry.max_retries = 0;
    let client = Client::from_config(&config).unwrap();

    let started = tokio::time::Instant::now();
    let error = client.send(get(blackhole.url())).await.unwrap_err();
    let elapsed = started.elapsed();

    let connect =
        std::iter::successors(Some(&*error as &(dyn std::error::Error + 'static)), |&e| {
            e.source()
        })
        .find_map(|e| e.downcast_ref::<ConnectError>());
    assert!(
        matches!(
            connect,
            Some(ConnectError::Timeout {
                timeout,
                proxy: None
            }) if *timeout == Duration::from_secs(2)
        ),
        "{error:?}"
    );
    assert!(
        connect.unwrap().to_string().contains("connect timeout"),
        "{connect:?}"
    );
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // The retry layer knows a connection that was never made.
    assert!(pacer::retry::is_connect_error(&*error), "{error:?}");
}

#[tokio::test]
async fn retries_of_a_blackholed_connect_are_each_bounded() {
    let blackhole = Blackhole::start().await.unwrap();
    tokio::time::pause();
    let mut config = Config {
        connect_timeout_secs: 1.0,
        ..Config::default()
    };
    config.retry.max_retries = 2;
    config.retry.backoff_base_secs = 0.5;
    config.retry.backoff_max_secs = 0.5;
    config.retry.jitter = pacer::retry::Jitter::None;
    let client = Client::from_config(&config).unwrap();

    let started = tokio::time::Instant::now();
    // A POST too: a connection never made is retried for every method.
    let request = Request::post(format!("{}/graphql", blackhole.url()))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let error = client.send(request).await.unwrap_err();
    let elapsed = started.elapsed();
    // Three attempts of 1 s and two backoffs (0.5 s, then 1 s doubled, capped at 0.5 s).
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(
        error.to_string().contains("connect timeout") || format!("{error:?}").contains("Timeout"),
        "{error:?}"
    );
}

#[test]
fn the_connect_timeout_setting_is_validated() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
        let config = Config {
            connect_timeout_secs: bad,
            ..Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("connect_timeout_secs"), "{bad}: {error}");
    }
    for bad in ["0", "-2", "NaN", "inf", "soon"] {
        let error = Config::default()
            .merge_env_vars(
                "KEYCLOAK_API",
                [(
                    "KEYCLOAK_API_CONNECT_TIMEOUT_SECS".to_owned(),
                    bad.to_owned(),
                )],
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("KEYCLOAK_API_CONNECT_TIMEOUT_SECS"),
            "{bad}: {error}"
        );
    }
    let error = Config::from_toml_str("connect_timeout_secs = -3").unwrap_err();
    assert!(
        error.to_string().contains("connect_timeout_secs"),
        "{error}"
    );
    let config = Config::default()
        .merge_env_vars(
            "INFRAHUB",
            [("INFRAHUB_CONNECT_TIMEOUT_SECS".to_owned(), "2.5".to_owned())],
        )
        .unwrap();
    assert_eq!(
        config.validate().unwrap().connect_timeout(),
        Duration::from_millis(2500)
    );
    assert_eq!(
        Config::default().validate().unwrap().connect_timeout(),
        Duration::from_secs(10)
    );
}

#[test]
fn proxy_settings_from_the_environment_keep_the_password_out_of_errors() {
    let config = Config::default()
        .merge_env_vars(
            "KEYCLOAK_API",
            [
                (
                    "KEYCLOAK_API_PROXY".to_owned(),
                    "http://ops:env-canary-pw@proxy.corp:3128".to_owned(),
                ),
                (
                    "KEYCLOAK_API_NO_PROXY".to_owned(),
                    "10.0.0.0/8,.svc".to_owned(),
                ),
                ("KEYCLOAK_API_PROXY_FROM_ENV".to_owned(), "off".to_owned()),
                ("KEYCLOAK_API_TLS_INSECURE".to_owned(), "true".to_owned()),
            ],
        )
        .unwrap();
    let proxy = config.proxy.as_ref().unwrap();
    assert_eq!(proxy.redacted(), "http://***@proxy.corp:3128/");
    assert_eq!(config.no_proxy.as_deref(), Some("10.0.0.0/8,.svc"));
    assert!(!config.proxy_from_env);
    assert!(config.tls.insecure);
    assert!(config.validate().unwrap().tls_insecure());
    assert!(!format!("{config:?}").contains("env-canary-pw"));
    assert!(
        !Config::default().tls.insecure,
        "insecure is off by default"
    );

    // `off` clears it; a bad value is an error that names the variable, not the password.
    let config = config
        .merge_env_vars(
            "KEYCLOAK_API",
            [("KEYCLOAK_API_PROXY".to_owned(), "off".to_owned())],
        )
        .unwrap();
    assert!(config.proxy.is_none());
    let error = Config::default()
        .merge_env_vars(
            "INFRAHUB",
            [(
                "INFRAHUB_PROXY".to_owned(),
                "socks5://ops:env-canary-pw@proxy.corp:1080".to_owned(),
            )],
        )
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(text.contains("INFRAHUB_PROXY"), "{text}");
    assert!(!text.contains("env-canary-pw"), "{text}");

    // From a file too; the file's value is refused without being echoed.
    let config = Config::from_toml_str(
        "proxy = \"http://ops:file-canary-pw@proxy:3128\"\nno_proxy = \"localhost\"\n[tls]\ninsecure = true",
    )
    .unwrap();
    assert_eq!(
        config.proxy.as_ref().unwrap().expose_url(),
        "http://ops:file-canary-pw@proxy:3128"
    );
    assert!(!format!("{config:?}").contains("file-canary-pw"));
    let error = Config::from_toml_str("proxy = \"ftp://ops:file-canary-pw@proxy\"").unwrap_err();
    assert!(!error.to_string().contains("file-canary-pw"), "{error}");
}

/// A self-signed HTTPS server on a free port (no CA anyone trusts), answering 200 "ok".
async fn self_signed_server() -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::Arc;

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn tls_insecure_accepts_an_untrusted_certificate_and_is_off_by_default() {
    let port = self_signed_server().await;
    let url = format!("https://localhost:{port}");
    let mut config = Config::default();
    config.retry.max_retries = 0;

    // By default the certificate is refused...
    let client = Client::from_config(&config).unwrap();
    let error = client.send(get(&url)).await.unwrap_err();
    let chain = std::iter::successors(Some(&*error as &(dyn std::error::Error + 'static)), |&e| {
        e.source()
    })
    .map(|e| e.to_string())
    .collect::<Vec<_>>()
    .join(" / ");
    assert!(chain.contains("UnknownIssuer"), "{chain}");

    // ...and accepted with `tls.insecure` (HTTP/2 by ALPN still works).
    config.tls.insecure = true;
    let client = Client::from_config(&config).unwrap();
    let response = client.send(get(&url)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
}
