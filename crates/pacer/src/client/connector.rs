//! The [`Connector`]: hyper-util's `HttpConnector` with a connect timeout, outbound HTTP(S)
//! proxies (hyper-util's env [`Matcher`] and its `CONNECT` [`Tunnel`]) and rustls.
//!
//! Where a request goes:
//!
//! | destination | proxy for it | connection |
//! |---|---|---|
//! | `https://` | none | TCP, then TLS with the destination |
//! | `https://` | `http(s)://proxy` | TCP (and TLS) to the proxy, `CONNECT host:port` (with `Proxy-Authorization` when the proxy URL has credentials), then TLS with the destination through the tunnel |
//! | `http://` | none | TCP |
//! | `http://` | `http(s)://proxy` | TCP (and TLS) to the proxy; requests in absolute form (`GET http://host/path`), with `Proxy-Authorization` added by [`ProxyAuth`] |
//!
//! Which proxy: the `proxy` setting (with `no_proxy`) when set; otherwise, unless
//! `proxy_from_env = false`, the environment as curl and reqwest read it: `HTTPS_PROXY` for
//! `https://` destinations, `HTTP_PROXY` for `http://`, `ALL_PROXY` for both when the
//! specific one is unset, and `NO_PROXY` (each also lower-case; the upper-case form wins when
//! both are set, and none is read when `REQUEST_METHOD` shows a CGI process, where
//! `HTTP_PROXY` may come from a request header). `no_proxy` is then added to `NO_PROXY`.
//! The rules of `NO_PROXY` are hyper-util's (curl's): comma-separated domains matching
//! themselves and their subdomains, IP addresses, CIDR networks, `*` for every host.
//!
//! `connect_timeout_secs` bounds the whole establishment of a connection (TCP connect to the
//! destination or the proxy, the tunnel, the TLS handshake); past it the attempt fails with
//! [`ConnectError::Timeout`], which the retry layer treats as a connection never made.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::PROXY_AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::tls::{self, TlsError};
use crate::BoxError;
use crate::config::ValidConfig;

/// A plain or TLS stream to the destination or to a proxy.
type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// How the proxy itself is reached: plain TCP, or TLS for an `https://` proxy.
type ProxyConnector = HttpsConnector<HttpConnector>;

/// The error of hyper-util's `Tunnel` (not exported under a name of its own).
type TunnelError = <Tunnel<ProxyConnector> as Service<Uri>>::Error;

/// The connector of [`Client`](super::Client): TCP with a connect timeout, direct or through
/// a proxy, then TLS by the destination's scheme (see the [module docs](self)). Cheap to
/// clone.
#[derive(Clone)]
pub struct Connector {
    https: HttpsConnector<Route>,
    proxy: Option<Arc<Matcher>>,
    timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("connect_timeout", &self.timeout)
            // Matcher's Debug prints the proxies' hosts, never their credentials.
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The connector `config` describes, with the proxies of `matcher` (see
    /// [`proxy_matcher`]).
    pub(super) fn new(config: &ValidConfig, matcher: Option<Matcher>) -> Result<Self, TlsError> {
        let timeout = config.connect_timeout();
        let tls = tls::client_config(config.extra_ca_file(), config.tls_insecure())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        // The proxy speaks HTTP/1.1 (CONNECT, absolute-form requests), over TLS for https://.
        let to_proxy = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http.clone());
        let proxy = matcher.map(Arc::new);
        let route = Route {
            http,
            to_proxy,
            proxy: proxy.clone(),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(route);
        Ok(Self {
            https,
            proxy,
            timeout,
        })
    }

    /// `service` (the pooled client over this connector) adding `Proxy-Authorization` to
    /// plain-HTTP requests sent through a proxy with credentials.
    pub(super) fn proxy_auth<S>(&self, service: S) -> ProxyAuth<S> {
        ProxyAuth {
            inner: service,
            proxy: self.proxy.clone(),
        }
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<MaybeHttpsStream<Conn>, BoxError>> + Send>>;

impl Service<Uri> for Connector {
    type Response = MaybeHttpsStream<Conn>;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> ConnectFuture {
        let timeout = self.timeout;
        let proxy = self
            .proxy
            .as_ref()
            .and_then(|m| m.intercept(&dst))
            .map(|i| shown(i.uri()));
        let connecting = self.https.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) if chain_has_timeout(&*e) => {
                    Err(ConnectError::Timeout { timeout, proxy }.into())
                }
                // Errors of our own route pass as they are; TLS and others are wrapped.
                Ok(Err(e)) => match e.downcast::<ConnectError>() {
                    Ok(ours) => Err(ours as BoxError),
                    Err(other) => Err(ConnectError::Failed {
                        proxy,
                        source: other,
                    }
                    .into()),
                },
                Err(_elapsed) => Err(ConnectError::Timeout { timeout, proxy }.into()),
            }
        })
    }
}

fn chain_has_timeout(error: &(dyn StdError + 'static)) -> bool {
    std::iter::successors(Some(error), |&e| e.source()).any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    })
}

/// The proxy's address as errors show it: scheme, host and port (hyper-util's matcher has
/// already taken any credentials out of it).
fn shown(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map_or("", |a| a.as_str());
    format!("{scheme}://{authority}")
}

/// Below TLS: the TCP connection to the destination, the proxy, or through the proxy's
/// tunnel.
#[derive(Clone)]
struct Route {
    http: HttpConnector,
    to_proxy: ProxyConnector,
    proxy: Option<Arc<Matcher>>,
}

type RouteFuture = Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

impl Service<Uri> for Route {
    type Response = Conn;
    type Error = ConnectError;
    type Future = RouteFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        // Both connectors are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> RouteFuture {
        let intercept = self.proxy.as_ref().and_then(|m| m.intercept(&dst));
        let Some(intercept) = intercept else {
            let connecting = self.http.call(dst);
            return Box::pin(async move {
                let tcp = connecting.await.map_err(|e| ConnectError::Failed {
                    proxy: None,
                    source: e.into(),
                })?;
                Ok(Conn::new(MaybeHttpsStream::Http(tcp), false))
            });
        };
        let proxy = shown(intercept.uri());
        if !matches!(intercept.uri().scheme_str(), Some("http" | "https")) {
            return Box::pin(async move {
                Err(ConnectError::Proxy {
                    proxy,
                    failure: ProxyFailure::UnsupportedScheme,
                })
            });
        }
        if dst.scheme_str() == Some("https") {
            let mut tunnel = tunnel(&intercept, self.to_proxy.clone());
            let connecting = tunnel.call(dst);
            Box::pin(async move {
                let stream = connecting.await.map_err(|e| tunnel_error(e, proxy))?;
                Ok(Conn::new(stream, false))
            })
        } else {
            // Plain HTTP: the proxy gets the requests themselves, in absolute form.
            let connecting = self.to_proxy.call(intercept.uri().clone());
            Box::pin(async move {
                let stream = connecting.await.map_err(|source| ConnectError::Failed {
                    proxy: Some(proxy),
                    source,
                })?;
                Ok(Conn::new(stream, true))
            })
        }
    }
}

fn tunnel(intercept: &Intercept, to_proxy: ProxyConnector) -> Tunnel<ProxyConnector> {
    let tunnel = Tunnel::new(intercept.uri().clone(), to_proxy);
    match intercept.basic_auth() {
        Some(auth) => tunnel.with_auth(auth.clone()),
        None => tunnel,
    }
}

fn tunnel_error(error: TunnelError, proxy: String) -> ConnectError {
    let failure = match error {
        TunnelError::ConnectFailed(source) => {
            return if chain_has_timeout(&*source) {
                // Mapped to ConnectError::Timeout by the connector.
                ConnectError::Failed {
                    proxy: Some(proxy),
                    source: Box::new(io::Error::from(io::ErrorKind::TimedOut)),
                }
            } else {
                ConnectError::Failed {
                    proxy: Some(proxy),
                    source,
                }
            };
        }
        TunnelError::ProxyAuthRequired => ProxyFailure::AuthRequired,
        TunnelError::TunnelUnsuccessful => ProxyFailure::Refused,
        TunnelError::Io(_)
        | TunnelError::MissingHost
        | TunnelError::ProxyHeadersTooLong
        | TunnelError::TunnelUnexpectedEof => ProxyFailure::Broken,
    };
    ConnectError::Proxy { proxy, failure }
}

/// Why a connection could not be established. It is the connector's error, found in the
/// `source()` chain of the error a request fails with (under hyper-util's `client error
/// (Connect)`, which the retry layer treats as a connection never made). No variant holds a
/// proxy's credentials: proxies are shown as `scheme://host:port`.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection (TCP connect, proxy tunnel and TLS handshake) was not established
    /// within `connect_timeout_secs`.
    Timeout {
        /// The connect timeout.
        timeout: Duration,
        /// The proxy the connection went through, if any.
        proxy: Option<String>,
    },
    /// The proxy would not open the way to the destination.
    Proxy {
        /// The proxy, `scheme://host:port`.
        proxy: String,
        /// What it answered.
        failure: ProxyFailure,
    },
    /// The connection failed otherwise (refused, unreachable, DNS, the TLS handshake).
    Failed {
        /// The proxy the connection went through, if any.
        proxy: Option<String>,
        /// The cause.
        source: BoxError,
    },
}

/// How a proxy refused, in [`ConnectError::Proxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyFailure {
    /// The proxy asks for credentials (`407 Proxy Authentication Required`): none were given
    /// in its URL, or it refused them.
    AuthRequired,
    /// The proxy answered the `CONNECT` with another non-success status (access denied, a
    /// port it does not tunnel to, the destination unreachable from it; tinyproxy also
    /// answers wrong credentials with `401`, which lands here).
    Refused,
    /// The proxy closed the connection or answered something that is not HTTP.
    Broken,
    /// The proxy URL's scheme is not `http` or `https` (e.g. `socks5` from `ALL_PROXY`).
    UnsupportedScheme,
}

impl fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AuthRequired => "proxy authentication required (407)",
            Self::Refused => "the proxy refused the tunnel",
            Self::Broken => "the proxy closed the connection or did not answer in HTTP",
            Self::UnsupportedScheme => "unsupported proxy scheme (only http:// and https://)",
        })
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout {
                timeout,
                proxy: None,
            } => write!(f, "connect timeout: no connection within {timeout:?}"),
            Self::Timeout {
                timeout,
                proxy: Some(proxy),
            } => write!(
                f,
                "connect timeout: no connection through proxy {proxy} within {timeout:?}"
            ),
            Self::Proxy { proxy, failure } => write!(f, "proxy {proxy}: {failure}"),
            Self::Failed { proxy: None, .. } => f.write_str("connect failed"),
            Self::Failed {
                proxy: Some(proxy), ..
            } => write!(f, "connect through proxy {proxy} failed"),
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Failed { source, .. } => Some(&**source),
            Self::Timeout { .. } | Self::Proxy { .. } => None,
        }
    }
}

/// A connection made by the [`Connector`]: hyper's I/O traits over the TCP or TLS stream,
/// telling the pool whether it goes to a proxy (so requests are written in absolute form).
#[derive(Debug)]
pub struct Conn {
    inner: Stream,
    proxied: bool,
}

impl Conn {
    fn new(inner: Stream, proxied: bool) -> Self {
        Self { inner, proxied }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.inner.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

/// Adds `Proxy-Authorization` (sensitive) to plain-HTTP requests that go through a proxy
/// with credentials (HTTPS requests carry it in the tunnel's `CONNECT` instead), and turns
/// the proxy's `407` into [`ConnectError::Proxy`]. The innermost service of
/// [`Client`](super::Client).
#[derive(Clone)]
pub struct ProxyAuth<S> {
    inner: S,
    proxy: Option<Arc<Matcher>>,
}

impl<S: fmt::Debug> fmt::Debug for ProxyAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("inner", &self.inner)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl<S, B, R> Service<Request<B>> for ProxyAuth<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let proxied = match request.uri().scheme_str() {
            Some("http") => self.proxy.as_ref().and_then(|m| m.intercept(request.uri())),
            _ => None,
        };
        let proxy = proxied.as_ref().map(|i| shown(i.uri()));
        if let Some(auth) = proxied.as_ref().and_then(Intercept::basic_auth) {
            if !request.headers().contains_key(PROXY_AUTHORIZATION) {
                let mut auth: HeaderValue = auth.clone();
                auth.set_sensitive(true);
                request.headers_mut().insert(PROXY_AUTHORIZATION, auth);
            }
        }
        let responding = self.inner.call(request);
        Box::pin(async move {
            let response = responding.await.map_err(Into::into)?;
            match proxy {
                Some(proxy) if response.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                    Err(ConnectError::Proxy {
                        proxy,
                        failure: ProxyFailure::AuthRequired,
                    }
                    .into())
                }
                _ => Ok(response),
            }
        })
    }
}

/// The proxy matcher `config` describes over the environment `env` (`None`: connect
/// directly): the `proxy` setting with `no_proxy`; else, unless `proxy_from_env` is off, the
/// environment's proxy variables (see the [module docs](self)).
pub(super) fn proxy_matcher(
    config: &ValidConfig,
    env: impl IntoIterator<Item = (String, String)>,
) -> Option<Matcher> {
    let settings = config.config();
    let no_proxy = settings.no_proxy.as_deref().unwrap_or("");
    if let Some(proxy) = &settings.proxy {
        return Some(
            Matcher::builder()
                .all(proxy.expose_url())
                .no(no_proxy)
                .build(),
        );
    }
    if !settings.proxy_from_env {
        return None;
    }
    let vars = ProxyVars::read(env);
    if vars.cgi || (vars.all.is_empty() && vars.http.is_empty() && vars.https.is_empty()) {
        return None;
    }
    let no = match (vars.no.is_empty(), no_proxy.is_empty()) {
        (_, true) => vars.no,
        (true, false) => no_proxy.to_owned(),
        (false, false) => format!("{},{no_proxy}", vars.no),
    };
    Some(
        Matcher::builder()
            .all(vars.all)
            .http(vars.http)
            .https(vars.https)
            .no(no)
            .build(),
    )
}

/// The proxy variables of an environment, as hyper-util's `Matcher::from_env` reads them
/// (upper case first), but from any list of variables.
#[derive(Default)]
struct ProxyVars {
    cgi: bool,
    all: String,
    http: String,
    https: String,
    no: String,
}

impl ProxyVars {
    fn read(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut vars = ProxyVars::default();
        // Upper case wins: remember which slots it filled.
        let mut upper = [false; 4];
        for (name, value) in env {
            let (slot, index, is_upper) = match name.as_str() {
                "REQUEST_METHOD" => {
                    vars.cgi = true;
                    continue;
                }
                "ALL_PROXY" => (&mut vars.all, 0, true),
                "all_proxy" => (&mut vars.all, 0, false),
                "HTTP_PROXY" => (&mut vars.http, 1, true),
                "http_proxy" => (&mut vars.http, 1, false),
                "HTTPS_PROXY" => (&mut vars.https, 2, true),
                "https_proxy" => (&mut vars.https, 2, false),
                "NO_PROXY" => (&mut vars.no, 3, true),
                "no_proxy" => (&mut vars.no, 3, false),
                _ => continue,
            };
            if is_upper || !upper[index] {
                *slot = value;
                upper[index] |= is_upper;
            }
        }
        vars
    }
}

#[cfg(test)]
mod tests;
