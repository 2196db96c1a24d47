//! The label sets of the metric families, and the fixed `method` and `status_class` label
//! values with their indexes into the cached handles.

use std::fmt::{self, Write as _};

use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use crate::namespace::Namespace;

/// A namespace as a label value: its name, or `other` past the cap.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct NamespaceLabel(pub(super) Namespace);

impl EncodeLabelValue for NamespaceLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub(super) method: &'static str,
    pub(super) status_class: &'static str,
    pub(super) namespace: NamespaceLabel,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct DurationLabels {
    pub(super) method: &'static str,
    pub(super) status_class: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct StoreErrorLabels {
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct LimitLabels {
    pub(super) namespace: NamespaceLabel,
    pub(super) level: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RetryLabels {
    pub(super) reason: &'static str,
}

/// The `method` label values: the nine standard methods, then `OTHER`.
pub(super) const METHOD_LABELS: [&str; METHODS] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "OTHER",
];
pub(super) const METHODS: usize = 10;

pub(super) fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => 9,
    }
}

/// The `status_class` label values: `1xx` to `5xx`, then `error` (no response).
pub(super) const STATUS_CLASS_LABELS: [&str; STATUS_CLASSES] =
    ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];
pub(super) const STATUS_CLASSES: usize = 6;
pub(super) const ERROR_CLASS: usize = 5;

pub(super) fn status_class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}
