//! The store's connection: one Redis instance, or a Redis Cluster whose client routes each
//! call to the shard of its key. Both are cheap-to-clone multiplexed connections.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::rate_limit::store_error::StoreError;

/// Where the store's keys live.
#[derive(Clone)]
pub(super) enum Connection {
    /// One Redis instance (or a primary behind a proxy), through a reconnecting manager.
    Single(ConnectionManager),
    /// A Redis Cluster: calls go to the master of their key's slot; the client follows
    /// `MOVED` after a failover and refreshes its slot map.
    Cluster(ClusterConnection),
}

impl Connection {
    /// Whether several keys of different namespaces may go in one script call (not on a
    /// cluster, where one call's keys must share a slot).
    pub(super) fn batches(&self) -> bool {
        matches!(self, Self::Single(_))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// A Redis call bounded by the store's timeout.
pub(super) async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(StoreError::Backend(Box::new(error))),
        Err(_elapsed) => Err(StoreError::Timeout(timeout)),
    }
}
