//! The blocking facade: the same stack as [`super::Client`], driven by a runtime the client
//! owns, for callers without async.
//!
//! There is no second implementation: [`Client`] holds an async [`super::Client`] and a small
//! tokio runtime (one worker thread, which keeps the connection pool, timers and pauses going
//! between calls) and blocks the calling thread on the async client's response, reading the
//! whole body. Rate limits, retries, shared pauses, timeouts and metrics are the async
//! client's, so both behave identically.
//!
//! Calling [`Client::send`] from inside an async runtime would block one of its threads; it
//! returns an error instead ([`InRuntime`](super::runtime::InRuntime), boxed). Clones share the runtime (a
//! [`BlockingRuntime`]) and the stack, and can be used from many threads at once; the last
//! one may be dropped inside an async context.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use pacer::client::blocking::Client;
//! use pacer::config::Config;
//!
//! # fn main() -> Result<(), pacer::BoxError> {
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let addr = listener.local_addr()?;
//! # std::thread::spawn(move || {
//! #     use std::io::{Read, Write};
//! #     let (mut stream, _) = listener.accept().unwrap();
//! #     let mut buf = [0u8; 1024];
//! #     let _ = stream.read(&mut buf);
//! #     let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
//! # });
//! let client = Client::from_config(&Config::default())?;
//! let request = http::Request::get(format!("http://{addr}/greeting")).body(Full::new(Bytes::new()))?;
//! let response = client.send(request)?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body(), "hello");
//! # Ok(()) }
//! ```

use std::fmt;

use bytes::Bytes;
use http::{Request, Response};

use super::buffer_body::BufferBody;
use super::response::{DEFAULT_MAX_RESPONSE_BYTES, read_to_end};
use super::runtime::BlockingRuntime;
use super::{ClientError, RequestBody};
use crate::BoxError;
use crate::config::Config;

/// The blocking client; see the [module docs](self). `Clone + Send + Sync`.
#[derive(Clone)]
pub struct Client {
    inner: super::Client,
    runtime: BlockingRuntime,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The stack `config` describes (see [`super::Client::from_config`]) with a runtime of its
    /// own.
    pub fn from_config(config: &Config) -> Result<Client, ClientError> {
        super::Client::from_config(config).and_then(Self::new)
    }

    /// Drives `client` (built with [`super::Client::builder`], e.g. to export its metrics)
    /// from a runtime of its own.
    pub fn new(client: super::Client) -> Result<Client, ClientError> {
        let runtime = BlockingRuntime::new("pacer-blocking")
            .map_err(|e| ClientError::Runtime(e.to_string()))?;
        Ok(Client {
            inner: client,
            runtime,
        })
    }

    /// The async client this one drives.
    pub fn get_ref(&self) -> &super::Client {
        &self.inner
    }

    /// Sends `request` through the stack and reads the whole response body (at most
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]; a longer one is an
    /// error). The body is read inside each attempt (the request carries
    /// [`BufferBody`]), so `timeout_secs` bounds each attempt, head and body,
    /// and `deadline_secs` the whole call.
    ///
    /// Errors are those of the async client, or [`InRuntime`](super::runtime::InRuntime) when the call was made from
    /// inside an async runtime (use [`super::Client`] there).
    pub fn send(
        &self,
        request: Request<impl Into<RequestBody>>,
    ) -> Result<Response<Bytes>, BoxError> {
        let mut request = request.map(Into::into);
        // Read inside the attempt: the per-attempt timeout and the deadline cover the body.
        request
            .extensions_mut()
            .insert(BufferBody::new(DEFAULT_MAX_RESPONSE_BYTES));
        self.runtime.block_on(async {
            let response = self.inner.send(request).await?;
            read_to_end(response, DEFAULT_MAX_RESPONSE_BYTES).await
        })?
    }

    /// The runtime this client (and its clones) runs on.
    pub fn runtime(&self) -> &BlockingRuntime {
        &self.runtime
    }
}
