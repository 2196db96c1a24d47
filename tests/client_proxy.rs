//! `pacer::client::Client` through a real proxy: tinyproxy, started by each test on a free
//! port with a generated configuration (foreground, logging to a file, `Allow 127.0.0.1`),
//! in front of the fake Keycloak and Infrahub of `pacer_testbed`, over plain HTTP (absolute-
//! form requests) and over TLS (a TLS terminator made here with rcgen and tokio-rustls in
//! front of the testbed, reached through the proxy's `CONNECT` tunnel). Each test reads the
//! proxy's own log to see the requests went through it. Fails, saying how to install it,
//! when tinyproxy is not installed (Debian package `tinyproxy`; `.ci/run` installs it). The last tests take
//! pacer-admin and pacer-inventory through the proxy by their own settings.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use pacer::client::{Client, ConnectError, ProxyFailure};
use pacer::config::{Config, ProxyUrl};
use pacer_testbed::Testbed;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const PROXY_USER: &str = "ops";
const PROXY_PASSWORD: &str = "canary-proxy-pw-7d1f";

fn tinyproxy_binary() -> Option<PathBuf> {
    [
        "/usr/bin/tinyproxy",
        "/usr/sbin/tinyproxy",
        "/usr/local/bin/tinyproxy",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a test's tinyproxy is set up.
#[derive(Default)]
struct ProxySetup {
    /// `ConnectPort` lines: the only ports `CONNECT` may reach (none: every port).
    connect_ports: Vec<u16>,
    /// `BasicAuth ops <password>`.
    basic_auth: bool,
    /// Allow a network other than loopback only (so loopback clients are denied).
    deny_loopback: bool,
}

/// A running tinyproxy, killed and cleaned up on drop (also when the test panics).
struct Tinyproxy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tinyproxy {
    fn start(bin: &Path, setup: &ProxySetup) -> Tinyproxy {
        let dir = std::env::temp_dir().join(format!(
            "pacer-tinyproxy-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let d = dir.display();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{d}/tinyproxy.log\"\n\
             LogLevel Info\nPidFile \"{d}/tinyproxy.pid\"\nMaxClients 50\nDisableViaHeader Yes\n"
        );
        if setup.deny_loopback {
            conf.push_str("Allow 192.0.2.0/24\n");
        } else {
            conf.push_str("Allow 127.0.0.1\n");
        }
        for connect_port in &setup.connect_ports {
            conf.push_str(&format!("ConnectPort {connect_port}\n"));
        }
        if setup.basic_auth {
            conf.push_str(&format!("BasicAuth {PROXY_USER} {PROXY_PASSWORD}\n"));
        }
        let conf_path = dir.join("tinyproxy.conf");
        std::fs::File::create(&conf_path)
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut proxy = Tinyproxy { child, dir, port };
        // Ready when it accepts connections.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            // Another test took the free port between our probe and tinyproxy's bind: it
            // exits, and a new one starts on another port.
            if let Ok(Some(_)) = proxy.child.try_wait() {
                return Tinyproxy::start(bin, setup);
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "tinyproxy did not start; its log: {}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url_with(&self, password: &str) -> String {
        format!("http://{PROXY_USER}:{password}@127.0.0.1:{}", self.port)
    }

    /// The proxy's own log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tinyproxy.log")).unwrap_or_default()
    }
}

/// tinyproxy with `setup`; panics, saying how to install it, when it is not installed.
fn tinyproxy(setup: &ProxySetup) -> Tinyproxy {
    let bin = tinyproxy_binary()
        .expect("this test needs tinyproxy: apt-get install tinyproxy (.ci/run does)");
    Tinyproxy::start(&bin, setup)
}

/// A CA, and a TLS terminator for `127.0.0.1` and `localhost` it signed, forwarding every
/// connection to `backend`: the fake APIs over HTTPS. Returns the port and the CA file.
async fn tls_front(backend: SocketAddr, name: &str) -> (u16, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    // The testbed speaks HTTP/1.1: so does the terminator.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    let path = std::env::temp_dir().join(format!("pacer-proxy-{name}-{}.pem", std::process::id()));
    std::fs::write(&path, ca_cert.pem()).unwrap();
    (port, path)
}

/// Fails unless the proxy's `log` holds `line`, showing the log.
fn assert_logged(log: &str, line: &str) {
    assert!(log.contains(line), "no `{line}` in the proxy's log:\n{log}");
}

fn config_through(proxy: &str) -> Config {
    Config {
        proxy: Some(ProxyUrl::parse(proxy).unwrap()),
        // Refusals are not worth retrying here: one attempt, one answer.
        retry: pacer::config::RetryConfig {
            max_retries: 0,
            ..Default::default()
        },
        ..Config::default()
    }
}

fn token_request(base: &str, testbed: &Testbed) -> Request<Full<Bytes>> {
    let creds = testbed.credentials();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        creds.keycloak_client_id, creds.keycloak_client_secret
    );
    Request::post(format!(
        "{base}/realms/{}/protocol/openid-connect/token",
        creds.keycloak_realm
    ))
    .header("content-type", "application/x-www-form-urlencoded")
    .body(Full::new(Bytes::from(form)))
    .unwrap()
}

fn login_request(base: &str, testbed: &Testbed) -> Request<Full<Bytes>> {
    let creds = testbed.credentials();
    let body = serde_json::json!({
        "username": creds.infrahub_user,
        "password": creds.infrahub_password,
    });
    Request::post(format!("{base}/api/auth/login"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Keycloak's token and Infrahub's login through `client`, both answered by the testbed.
async fn keycloak_and_infrahub(client: &Client, base: &str, testbed: &Testbed) {
    let response = client.send(token_request(base, testbed)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(token["token_type"], "Bearer");

    let response = client.send(login_request(base, testbed)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let login: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(login["access_token"].is_string(), "{login}");
}

/// Every `Display` of the error's chain, and its `Debug`.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{error:?}");
    let mut source = Some(error);
    while let Some(e) = source {
        text.push_str(" / ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn connect_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectError> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref())
}

#[tokio::test]
async fn plain_http_goes_through_the_proxy_in_absolute_form() {
    let proxy = tinyproxy(&ProxySetup::default());
    let testbed = Testbed::start().await.unwrap();
    let client = Client::from_config(&config_through(&proxy.url())).unwrap();
    keycloak_and_infrahub(&client, testbed.base_url(), &testbed).await;

    let log = proxy.log();
    let port = testbed.addr().port();
    for path in [
        "/realms/master/protocol/openid-connect/token",
        "/api/auth/login",
    ] {
        assert_logged(&log, &format!("POST http://127.0.0.1:{port}{path}"));
    }
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel() {
    let testbed = Testbed::start().await.unwrap();
    let (tls_port, ca) = tls_front(testbed.addr(), "tunnel").await;
    let setup = ProxySetup {
        connect_ports: vec![tls_port],
        ..ProxySetup::default()
    };
    let proxy = tinyproxy(&setup);
    let mut config = config_through(&proxy.url());
    config.tls.extra_ca_file = Some(ca.clone());
    let client = Client::from_config(&config).unwrap();
    let base = format!("https://127.0.0.1:{tls_port}");
    keycloak_and_infrahub(&client, &base, &testbed).await;

    let log = proxy.log();
    assert_logged(&log, &format!("CONNECT 127.0.0.1:{tls_port}"));
    // The requests themselves are inside the tunnel: the proxy never saw their paths.
    assert!(!log.contains("/api/auth/login"), "{log}");
    assert!(
        testbed.stats().requests() >= 2,
        "the testbed saw the requests"
    );
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn proxy_credentials_are_sent_for_http_and_https_and_never_shown() {
    let testbed = Testbed::start().await.unwrap();
    let (tls_port, ca) = tls_front(testbed.addr(), "auth").await;
    let setup = ProxySetup {
        basic_auth: true,
        ..ProxySetup::default()
    };
    let proxy = tinyproxy(&setup);
    let https_base = format!("https://127.0.0.1:{tls_port}");

    // The right password: both kinds of request pass.
    let mut config = config_through(&proxy.url_with(PROXY_PASSWORD));
    config.tls.extra_ca_file = Some(ca.clone());
    assert!(!format!("{config:?}").contains(PROXY_PASSWORD));
    let client = Client::from_config(&config).unwrap();
    assert!(!format!("{client:?}").contains(PROXY_PASSWORD));
    keycloak_and_infrahub(&client, testbed.base_url(), &testbed).await;
    keycloak_and_infrahub(&client, &https_base, &testbed).await;

    // None: the proxy's 407 is a typed error, over HTTPS (the CONNECT's answer) and plain
    // HTTP (the request's answer).
    let mut config = config_through(&proxy.url());
    config.tls.extra_ca_file = Some(ca.clone());
    let client = Client::from_config(&config).unwrap();
    for base in [https_base.as_str(), testbed.base_url()] {
        let error = client
            .send(token_request(base, &testbed))
            .await
            .unwrap_err();
        let text = describe(&*error);
        let Some(ConnectError::Proxy {
            proxy: shown,
            failure,
        }) = connect_error(&*error)
        else {
            panic!("not a proxy error: {text}");
        };
        assert_eq!(*failure, ProxyFailure::AuthRequired, "{text}");
        assert_eq!(*shown, proxy.url());
        assert!(text.contains("407"), "{text}");
    }

    // A wrong one: tinyproxy answers `401` (not 407) to the CONNECT, a refused tunnel; to a
    // plain request it answers 401 itself. Neither password shows anywhere.
    let wrong = "wrong-canary-pw-93a2";
    let mut config = config_through(&proxy.url_with(wrong));
    config.tls.extra_ca_file = Some(ca.clone());
    let client = Client::from_config(&config).unwrap();
    let error = client
        .send(token_request(&https_base, &testbed))
        .await
        .unwrap_err();
    let text = describe(&*error);
    assert!(
        matches!(
            connect_error(&*error),
            Some(ConnectError::Proxy {
                failure: ProxyFailure::Refused | ProxyFailure::AuthRequired,
                ..
            })
        ),
        "{text}"
    );
    for secret in [wrong, PROXY_PASSWORD] {
        assert!(!text.contains(secret), "{text}");
    }
    let response = client
        .send(token_request(testbed.base_url(), &testbed))
        .await;
    match response {
        Ok(response) => {
            assert!(
                matches!(response.status().as_u16(), 401 | 407),
                "{:?}",
                response.status()
            );
            let head = format!("{:?}", response.headers());
            // tinyproxy may reset the connection after its error page.
            let body = match response.into_body().collect().await {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(error) => describe(&*error),
            };
            for secret in [wrong, PROXY_PASSWORD] {
                assert!(
                    !head.contains(secret) && !body.contains(secret),
                    "{head} {body}"
                );
            }
        }
        Err(error) => {
            let text = describe(&*error);
            assert!(connect_error(&*error).is_some(), "{text}");
            assert!(!text.contains(wrong), "{text}");
        }
    }
    // The proxy's log holds the requests that carried the right credentials.
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{tls_port}")),
        "{log}"
    );
    assert!(log.contains("POST http://127.0.0.1:"), "{log}");
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn a_refused_tunnel_is_a_typed_error() {
    let testbed = Testbed::start().await.unwrap();
    let (tls_port, ca) = tls_front(testbed.addr(), "refused").await;
    // CONNECT only to another port: tinyproxy answers 403.
    let setup = ProxySetup {
        connect_ports: vec![tls_port.wrapping_add(1).max(1)],
        ..ProxySetup::default()
    };
    let proxy = tinyproxy(&setup);
    let mut config = config_through(&proxy.url());
    config.tls.extra_ca_file = Some(ca.clone());
    let client = Client::from_config(&config).unwrap();
    let base = format!("https://127.0.0.1:{tls_port}");
    let error = client
        .send(token_request(&base, &testbed))
        .await
        .unwrap_err();
    let text = describe(&*error);
    assert!(
        matches!(
            connect_error(&*error),
            Some(ConnectError::Proxy {
                failure: ProxyFailure::Refused,
                ..
            })
        ),
        "{text}"
    );
    assert!(text.contains("the proxy refused the tunnel"), "{text}");
    assert!(proxy.log().contains("CONNECT"), "{}", proxy.log());
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn a_proxy_that_denies_the_client_is_a_typed_error() {
    let testbed = Testbed::start().await.unwrap();
    let (tls_port, ca) = tls_front(testbed.addr(), "denied").await;
    let setup = ProxySetup {
        deny_loopback: true,
        ..ProxySetup::default()
    };
    let proxy = tinyproxy(&setup);
    let mut config = config_through(&proxy.url());
    config.tls.extra_ca_file = Some(ca.clone());
    let client = Client::from_config(&config).unwrap();
    let base = format!("https://127.0.0.1:{tls_port}");
    let error = client
        .send(token_request(&base, &testbed))
        .await
        .unwrap_err();
    let text = describe(&*error);
    // tinyproxy answers 403 to a denied client (or closes the connection).
    assert!(
        matches!(
            connect_error(&*error),
            Some(ConnectError::Proxy {
                failure: ProxyFailure::Refused | ProxyFailure::Broken,
                ..
            })
        ),
        "{text}"
    );
    assert!(text.contains(&format!("proxy {}", proxy.url())), "{text}");
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn no_proxy_hosts_bypass_the_proxy() {
    let proxy = tinyproxy(&ProxySetup::default());
    let testbed = Testbed::start().await.unwrap();
    let mut config = config_through(&proxy.url());
    // A CIDR rule: every loopback address goes direct.
    config.no_proxy = Some("internal.example, 127.0.0.0/8".to_owned());
    let client = Client::from_config(&config).unwrap();
    keycloak_and_infrahub(&client, testbed.base_url(), &testbed).await;
    let log = proxy.log();
    assert!(!log.contains("POST"), "the proxy saw a request:\n{log}");

    // The same requests without the rule do go through it.
    let client = Client::from_config(&config_through(&proxy.url())).unwrap();
    keycloak_and_infrahub(&client, testbed.base_url(), &testbed).await;
    assert!(
        proxy.log().contains("POST http://127.0.0.1:"),
        "{}",
        proxy.log()
    );
}

#[tokio::test]
async fn pacer_admin_goes_through_keycloak_api_proxy() {
    let testbed = Testbed::start().await.unwrap();
    let (tls_port, ca) = tls_front(testbed.addr(), "admin").await;
    let setup = ProxySetup {
        connect_ports: vec![tls_port],
        ..ProxySetup::default()
    };
    let proxy = tinyproxy(&setup);
    let creds = testbed.credentials();
    let credentials = pacer_admin::Credentials::client_credentials(
        creds.keycloak_realm.clone(),
        creds.keycloak_client_id.clone(),
        creds.keycloak_client_secret.clone(),
    );
    // The operator's settings under its prefix, as `KEYCLOAK_API_PROXY=...` in its pod.
    let config = Config::default()
        .merge_env_vars(
            "KEYCLOAK_API",
            [
                ("KEYCLOAK_API_PROXY".to_owned(), proxy.url()),
                (
                    "KEYCLOAK_API_TLS_EXTRA_CA_FILE".to_owned(),
                    ca.display().to_string(),
                ),
            ],
        )
        .unwrap();
    let base = format!("https://127.0.0.1:{tls_port}");
    let client = pacer_admin::AdminClient::new(base, credentials, &config).unwrap();
    client.namespace("ops").server_info().await.unwrap();

    let log = proxy.log();
    assert_logged(&log, &format!("CONNECT 127.0.0.1:{tls_port}"));
    // The token request and the API call both reached the testbed, inside the tunnel.
    assert!(
        testbed.stats().requests() >= 2,
        "the testbed saw the requests"
    );
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn pacer_inventory_goes_through_infrahub_proxy() {
    let testbed = Testbed::start().await.unwrap();
    let (tls_port, ca) = tls_front(testbed.addr(), "inventory").await;
    let setup = ProxySetup {
        connect_ports: vec![tls_port],
        basic_auth: true,
        ..ProxySetup::default()
    };
    let proxy = tinyproxy(&setup);
    let creds = testbed.credentials();
    // The SDK's names, as a sync job's environment carries them; the proxy URL holds the
    // proxy's credentials.
    let mut config = pacer_inventory::Config::from_env_vars([
        (
            "INFRAHUB_ADDRESS".to_owned(),
            format!("https://127.0.0.1:{tls_port}"),
        ),
        ("INFRAHUB_USERNAME".to_owned(), creds.infrahub_user.clone()),
        (
            "INFRAHUB_PASSWORD".to_owned(),
            creds.infrahub_password.clone(),
        ),
        ("INFRAHUB_PROXY".to_owned(), proxy.url_with(PROXY_PASSWORD)),
        ("INFRAHUB_TLS_CA_FILE".to_owned(), ca.display().to_string()),
    ])
    .unwrap();
    assert!(!format!("{config:?}").contains(PROXY_PASSWORD));
    let client = pacer_inventory::InventoryClient::new(config.clone()).unwrap();
    client.server_version().await.unwrap();

    let log = proxy.log();
    assert_logged(&log, &format!("CONNECT 127.0.0.1:{tls_port}"));
    assert!(
        testbed.stats().requests() >= 2,
        "the testbed saw the requests"
    );

    // A proxy URL of the wrong kind is refused by name, without quoting it.
    config.proxy = Some(pacer::auth::SecretString::from(format!(
        "socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080"
    )));
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("proxy"), "{error}");
    assert!(!error.contains(PROXY_PASSWORD), "{error}");
    let _ = std::fs::remove_file(ca);
}
