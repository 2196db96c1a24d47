//! The blocking twin of [`crate::InventoryClient`]. Its methods are generated from the async
//! client's (`cargo xtask codegen`): each one runs the async method of the same name on the
//! runtime this client owns, so both send the same requests.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::config::{Config, Priority};
use crate::error::Error;

/// A blocking Infrahub client: owns a tokio runtime and an async
/// [`InventoryClient`](crate::InventoryClient). Cheap to clone (clones share both).
///
/// Must not be used from inside an async runtime (blocking there would stall it).
#[derive(Clone)]
pub struct InventoryClient {
    inner: crate::InventoryClient,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for InventoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::InventoryClient")
            .field(&self.inner)
            .finish()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Transport(Box::new(e)))
}

impl InventoryClient {
    /// A client over pacer's stack, as [`crate::InventoryClient::new`].
    pub fn new(config: Config) -> Result<Self, Error> {
        let runtime = runtime()?;
        let inner = {
            let _guard = runtime.enter();
            crate::InventoryClient::new(config)?
        };
        Ok(Self {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// A client with pacer's metrics, as [`crate::InventoryClient::with_metrics`].
    pub fn with_metrics(config: Config, metrics: pacer::metrics::Metrics) -> Result<Self, Error> {
        let runtime = runtime()?;
        let inner = {
            let _guard = runtime.enter();
            crate::InventoryClient::with_metrics(config, metrics)?
        };
        Ok(Self {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// The async client this one drives.
    pub fn inner(&self) -> &crate::InventoryClient {
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

    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}
