//! The blocking client: the same API, each call run to completion on a runtime the client
//! owns. The operations are generated from the same description as the async ones and only
//! drive them (`runtime.block_on(async_twin(..))`), so both send exactly the same requests.
//!
//! Do not call it from inside an async runtime: a call there returns [`Error::InRuntime`](crate::Error::InRuntime)
//! (nothing is sent) rather than stall that runtime; use [`crate::AdminClient`] there.
//! Dropping the client there is fine (its runtime shuts down in the background). The runtime
//! is pacer's [`BlockingRuntime`].
//!
//! ```no_run
//! use pacer_admin::Credentials;
//! use pacer_admin::blocking::AdminClient;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = AdminClient::builder(
//!     "https://keycloak.example",
//!     Credentials::password("master", "admin", "admin"),
//! )
//! .build()?;
//! let realms = client.namespace("ops").realms().list(&Default::default())?;
//! # let _ = realms; Ok(()) }
//! ```

use std::sync::Arc;

use pacer::client::runtime::BlockingRuntime;

use crate::auth::Credentials;
use crate::client::AdminClientBuilder as AsyncBuilder;
use crate::error::{BuildError, Result};
use crate::reconcile::Outcome;
use crate::serverinfo::ServerInfo;
use crate::types::{
    ClientRepresentation, ClientScopeRepresentation, GroupRepresentation, RealmRepresentation,
    RoleRepresentation, UserRepresentation,
};

pub use crate::blocking_api::*;
pub use crate::blocking_namespaced::NamespacedClient;

/// A blocking Keycloak admin client; see the [module docs](self). Cheap to clone.
#[derive(Clone, Debug)]
pub struct AdminClient {
    inner: crate::client::AdminClient,
    runtime: BlockingRuntime,
}

/// Builds a blocking [`AdminClient`]: the async builder plus an owned runtime.
#[derive(Debug)]
pub struct AdminClientBuilder {
    inner: AsyncBuilder,
}

impl AdminClient {
    /// A builder; see [`crate::client::AdminClient::builder`].
    pub fn builder(base_url: impl Into<String>, credentials: Credentials) -> AdminClientBuilder {
        AdminClientBuilder {
            inner: crate::client::AdminClient::builder(base_url, credentials),
        }
    }

    /// The API as seen by `namespace`.
    pub fn namespace(&self, namespace: impl Into<Arc<str>>) -> NamespacedClient {
        NamespacedClient {
            inner: self.inner.namespace(namespace),
            runtime: self.runtime.clone(),
        }
    }

    /// The async client this one drives.
    pub fn as_async(&self) -> &crate::client::AdminClient {
        &self.inner
    }
}

impl AdminClientBuilder {
    /// See [`crate::AdminClientBuilder::config`].
    pub fn config(self, config: pacer::config::Config) -> Self {
        AdminClientBuilder {
            inner: self.inner.config(config),
        }
    }

    /// See [`crate::AdminClientBuilder::metrics`].
    pub fn metrics(self, metrics: pacer::metrics::Metrics) -> Self {
        AdminClientBuilder {
            inner: self.inner.metrics(metrics),
        }
    }

    /// See [`crate::AdminClientBuilder::retry_policy`].
    pub fn retry_policy(self, policy: pacer::retry::RetryPolicy) -> Self {
        AdminClientBuilder {
            inner: self.inner.retry_policy(policy),
        }
    }

    /// Starts the client's runtime (one worker thread, which also runs the connection pool)
    /// and builds the stack on it.
    pub fn build(self) -> Result<AdminClient, BuildError> {
        let runtime = BlockingRuntime::new("pacer-admin")
            .map_err(|e| BuildError::new(format!("cannot start a runtime: {e}")))?;
        let inner = {
            let _entered = runtime.enter();
            self.inner.build()?
        };
        Ok(AdminClient { inner, runtime })
    }
}

impl NamespacedClient {
    /// `GET /admin/serverinfo`.
    pub fn server_info(&self) -> Result<ServerInfo> {
        self.runtime.block_on(self.inner.server_info())?
    }

    /// See [`crate::NamespacedClient::ensure_realm`].
    pub fn ensure_realm(&self, desired: &RealmRepresentation) -> Result<Outcome> {
        self.runtime.block_on(self.inner.ensure_realm(desired))?
    }

    /// See [`crate::NamespacedClient::ensure_client`].
    pub fn ensure_client(&self, realm: &str, desired: &ClientRepresentation) -> Result<Outcome> {
        self.runtime
            .block_on(self.inner.ensure_client(realm, desired))?
    }

    /// See [`crate::NamespacedClient::ensure_client_scope`].
    pub fn ensure_client_scope(
        &self,
        realm: &str,
        desired: &ClientScopeRepresentation,
    ) -> Result<Outcome> {
        self.runtime
            .block_on(self.inner.ensure_client_scope(realm, desired))?
    }

    /// See [`crate::NamespacedClient::ensure_group`].
    pub fn ensure_group(&self, realm: &str, desired: &GroupRepresentation) -> Result<Outcome> {
        self.runtime
            .block_on(self.inner.ensure_group(realm, desired))?
    }

    /// See [`crate::NamespacedClient::ensure_role`].
    pub fn ensure_role(&self, realm: &str, desired: &RoleRepresentation) -> Result<Outcome> {
        self.runtime
            .block_on(self.inner.ensure_role(realm, desired))?
    }

    /// See [`crate::NamespacedClient::ensure_user`].
    pub fn ensure_user(&self, realm: &str, desired: &UserRepresentation) -> Result<Outcome> {
        self.runtime
            .block_on(self.inner.ensure_user(realm, desired))?
    }
}
