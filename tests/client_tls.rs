//! `pacer::client` over HTTPS: a CA and a server certificate made in the test with rcgen, a
//! rustls server (tokio-rustls + hyper-util's HTTP/1.1-or-HTTP/2 server), and the client
//! trusting the CA only through `tls.extra_ca_file`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use pacer::client::{Client, ClientError, TlsError};
use pacer::config::Config;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

/// A CA and a certificate for `localhost` it signed.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![cert.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// Serves HTTPS on a free port with the given ALPN protocols; every response's body is the
/// HTTP version the request came with. Returns the port.
async fn serve(pki: &Pki, alpn: &[&[u8]]) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate aborts the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|request: Request<_>| async move {
                    let body = format!("{:?} {}", request.version(), request.uri().path());
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

fn ca_file(pki: &Pki, name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pacer-{name}-{}.pem", std::process::id()));
    std::fs::write(&path, &pki.ca_pem).unwrap();
    path
}

fn get(port: u16, path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://localhost:{port}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn https_with_an_extra_ca_speaks_http2_and_http1() {
    let pki = pki();
    let path = ca_file(&pki, "ca");
    let mut config = Config::default();
    config.tls.extra_ca_file = Some(path.clone());
    let client = Client::from_config(&config).unwrap();

    // ALPN picks HTTP/2 when the server offers it...
    let h2 = serve(&pki, &[b"h2", b"http/1.1"]).await;
    let response = client.send(get(h2, "/realms")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "HTTP/2.0 /realms");

    // ...and HTTP/1.1 otherwise.
    let h1 = serve(&pki, &[b"http/1.1"]).await;
    let response = client.send(get(h1, "/graphql")).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "HTTP/1.1 /graphql");
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn without_the_extra_ca_the_certificate_is_refused() {
    let pki = pki();
    let port = serve(&pki, &[b"h2", b"http/1.1"]).await;
    let mut config = Config::default();
    // A handshake failure is not a transient error worth retrying: keep the test fast anyway.
    config.retry.max_retries = 0;
    let client = Client::from_config(&config).unwrap();
    let error = client.send(get(port, "/")).await.unwrap_err();
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    let chain = chain.join(" / ");
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

#[test]
fn a_bad_ca_file_is_an_error_naming_it() {
    let mut config = Config::default();
    config.tls.extra_ca_file = Some(PathBuf::from("/nonexistent/pacer-ca.pem"));
    let error = Client::from_config(&config).unwrap_err();
    assert!(
        matches!(&error, ClientError::Tls(TlsError::CaFile { path, .. }) if path.ends_with("pacer-ca.pem")),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("/nonexistent/pacer-ca.pem"),
        "{error}"
    );

    let path = std::env::temp_dir().join(format!("pacer-not-pem-{}.pem", std::process::id()));
    std::fs::write(&path, "this is not a certificate").unwrap();
    config.tls.extra_ca_file = Some(path.clone());
    let error = Client::from_config(&config).unwrap_err().to_string();
    assert!(error.contains("no PEM certificate"), "{error}");
    std::fs::remove_file(path).unwrap();
}
