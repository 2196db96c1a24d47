//! pacer: tower middleware that keeps HTTP API clients polite under load.
#![deny(unsafe_code, missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "retry-after")]
pub mod retry_after;
