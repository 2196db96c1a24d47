//! [`PauseScope`]: which requests share a `Retry-After` pause. A leaf, so that the schema and
//! the value parsers can both name it.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::namespace::Namespace;

/// How far a shared `Retry-After` pause reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseScope {
    /// Every request to the same upstream (scheme-less authority) waits (the default).
    #[default]
    Upstream,
    /// Only requests to the same upstream made for the same [`Namespace`] wait.
    Namespace,
}
