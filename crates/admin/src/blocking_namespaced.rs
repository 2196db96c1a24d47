//! The blocking [`NamespacedClient`] type, below both the generated blocking API (which adds
//! the group accessors) and [`crate::blocking`] (which adds the hand-written calls), so that
//! neither imports the other for it.

use pacer::client::runtime::BlockingRuntime;

use crate::client::NamespacedClient as AsyncNamespaced;

/// The blocking API as seen by one namespace.
#[derive(Clone, Debug)]
pub struct NamespacedClient {
    pub(crate) inner: AsyncNamespaced,
    pub(crate) runtime: BlockingRuntime,
}
