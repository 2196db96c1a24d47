//! The blocking twin of [`crate::InventoryClient`]. Its methods are generated from the async
//! client's (`cargo xtask codegen`): each one runs the async method of the same name on the
//! runtime this client owns ([`BlockingRuntime`]), so both send the same requests.
//!
//! Called from inside an async runtime, where blocking would stall it, a method returns
//! [`Error::Blocking`] instead of panicking (methods that answer something other than a
//! `Result` answer `Result<_, Error>` here); dropping the client there does not panic
//! either.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use pacer::client::runtime::BlockingRuntime;

use crate::config::{Config, Priority};
use crate::error::Error;

/// A blocking Infrahub client: owns a tokio runtime and an async
/// [`InventoryClient`](crate::InventoryClient). Cheap to clone (clones share both).
///
/// Not for use from inside an async runtime: there every call is [`Error::Blocking`].
#[derive(Clone)]
pub struct InventoryClient {
    inner: crate::client::InventoryClient,
    runtime: BlockingRuntime,
}

impl fmt::Debug for InventoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::InventoryClient")
            .field(&self.inner)
            .finish()
    }
}

/// The name of the runtime's worker thread (and of the runtime in [`Error::Blocking`]).
const THREAD_NAME: &str = "pacer-inventory-blocking";

impl InventoryClient {
    /// A client over pacer's stack, as [`crate::InventoryClient::new`].
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::build(|| crate::client::InventoryClient::new(config))
    }

    /// A client with pacer's metrics, as [`crate::InventoryClient::with_metrics`].
    pub fn with_metrics(config: Config, metrics: pacer::metrics::Metrics) -> Result<Self, Error> {
        Self::build(|| crate::client::InventoryClient::with_metrics(config, metrics))
    }

    fn build(
        inner: impl FnOnce() -> Result<crate::client::InventoryClient, Error>,
    ) -> Result<Self, Error> {
        let runtime =
            BlockingRuntime::new(THREAD_NAME).map_err(|e| Error::Transport(Box::new(e)))?;
        let inner = {
            let _guard = runtime.enter();
            inner()?
        };
        Ok(Self { inner, runtime })
    }

    /// The async client this one drives.
    pub fn inner(&self) -> &crate::client::InventoryClient {
        &self.inner
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &Config {
        self.inner.config()
    }

    /// A clone whose operations run on `branch`.
    pub fn on_branch(&self, branch: impl Into<String>) -> Self {
        Self {
            inner: self.inner.on_branch(branch),
            runtime: self.runtime.clone(),
        }
    }

    /// A clone whose requests count against rate-limit namespace `namespace`.
    pub fn namespace(&self, namespace: impl Into<Arc<str>>) -> Self {
        Self {
            inner: self.inner.namespace(namespace),
            runtime: self.runtime.clone(),
        }
    }

    /// A clone whose requests carry `X-Priority`.
    pub fn priority(&self, priority: Priority) -> Self {
        Self {
            inner: self.inner.priority(priority),
            runtime: self.runtime.clone(),
        }
    }

    /// Runs `future` on this client's runtime; [`Error::Blocking`] from inside a runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> Result<F::Output, Error> {
        self.runtime.block_on(future).map_err(Error::Blocking)
    }
}
