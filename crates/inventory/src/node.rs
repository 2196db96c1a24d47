//! What the generated kinds share: the [`Kind`] trait, peer references, node references for
//! inputs, pages, and the wire helpers that unwrap Infrahub's attribute and relationship
//! wrappers.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A node kind with generated typed code: the node struct implements it.
///
/// The documents are the GraphQL text sent for each operation; they take the variables named
/// in their headers (`$offset`, `$limit`, the filter's fields, `$ids`/`$hfid`, `$data`).
pub trait Kind: DeserializeOwned + Send + Sync + 'static {
    /// The kind's schema facts.
    const INFO: KindInfo;
    /// Filters for list and count.
    type Filter: Serialize + Clone + Default + fmt::Debug + Send + Sync + 'static;
    /// `data` of `{Kind}Create`.
    type Create: Serialize + Sync;
    /// `data` of `{Kind}Update`.
    type Update: Serialize + Sync;
    /// `data` of `{Kind}Upsert`.
    type Upsert: Serialize + Sync;
    /// List one page (`$offset`, `$limit`, filters).
    const LIST_QUERY: &'static str;
    /// Get by `$ids` or `$hfid`.
    const GET_QUERY: &'static str;
    /// Count (filters).
    const COUNT_QUERY: &'static str;
    /// Create (`$data`).
    const CREATE_MUTATION: &'static str;
    /// Update (`$data`).
    const UPDATE_MUTATION: &'static str;
    /// Upsert (`$data`).
    const UPSERT_MUTATION: &'static str;
    /// Delete (`$data: DeleteInput`).
    const DELETE_MUTATION: &'static str;

    /// The node's id (paging tells a repeated page by its ids).
    fn id(&self) -> &str;
}

/// Schema facts of a kind, as generated from the SDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The kind (`BuiltinTag`).
    pub kind: &'static str,
    /// Its attributes (`name`, `description`, ...).
    pub attributes: &'static [&'static str],
    /// Its relationships.
    pub relationships: &'static [RelationshipInfo],
}

/// One relationship of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelationshipInfo {
    /// The field name (`member_of_groups`).
    pub name: &'static str,
    /// The peer type (a kind or a generic, `CoreGroup`).
    pub peer: &'static str,
    /// One or many.
    pub cardinality: Cardinality,
}

/// The cardinality of a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cardinality {
    /// At most one peer (`NestedEdged...`).
    One,
    /// Any number of peers (`NestedPaginated...`).
    Many,
}

/// A reference to a related node, as read from a relationship.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Peer {
    /// The peer's id.
    pub id: String,
    /// Its human friendly id, when its kind has one.
    #[serde(default)]
    pub hfid: Option<Vec<String>>,
    /// Its display label.
    #[serde(default)]
    pub display_label: Option<String>,
    /// Its kind (`__typename`).
    #[serde(default, rename = "__typename")]
    pub kind: Option<String>,
}

/// A related node in an input (`RelatedNodeInput`): by id or by hfid (with its kind when the
/// relationship's peer is a generic).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RelatedNode {
    /// The peer's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The peer's hfid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hfid: Option<Vec<String>>,
    /// The peer's kind, needed with an hfid when the peer type is a generic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl RelatedNode {
    /// The node with this id.
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// The node of `kind` with this hfid.
    pub fn hfid(
        kind: impl Into<String>,
        hfid: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            hfid: Some(hfid.into_iter().map(Into::into).collect()),
            kind: Some(kind.into()),
            ..Self::default()
        }
    }
}

impl From<&Peer> for RelatedNode {
    fn from(peer: &Peer) -> Self {
        Self::id(peer.id.clone())
    }
}

/// Which node an operation is about: its id, or its human friendly id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeRef {
    /// By id.
    Id(String),
    /// By hfid (`["my-tag"]`).
    Hfid(Vec<String>),
}

impl NodeRef {
    /// By hfid.
    pub fn hfid(parts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::Hfid(parts.into_iter().map(Into::into).collect())
    }

    /// `{"id": ...}` or `{"hfid": [...]}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            NodeRef::Id(id) => serde_json::json!({ "id": id }),
            NodeRef::Hfid(parts) => serde_json::json!({ "hfid": parts }),
        }
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Id(id) => write!(f, "id {id}"),
            NodeRef::Hfid(parts) => write!(f, "hfid {}", parts.join("/")),
        }
    }
}

impl From<&str> for NodeRef {
    fn from(id: &str) -> Self {
        Self::Id(id.to_owned())
    }
}

impl From<String> for NodeRef {
    fn from(id: String) -> Self {
        Self::Id(id)
    }
}

impl From<&String> for NodeRef {
    fn from(id: &String) -> Self {
        Self::Id(id.clone())
    }
}

impl From<&Peer> for NodeRef {
    fn from(peer: &Peer) -> Self {
        Self::Id(peer.id.clone())
    }
}

/// One page of a list: the nodes and the total count of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// How many nodes match in total (all pages).
    pub count: u64,
    /// This page's nodes.
    pub items: Vec<T>,
}

/// Serde helpers for Infrahub's wire shapes (used by the generated code).
pub(crate) mod wire {
    use serde::de::DeserializeOwned;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Peer;

    #[derive(Deserialize)]
    struct Wrapper<T> {
        #[serde(default = "none")]
        value: Option<T>,
    }

    fn none<T>() -> Option<T> {
        None
    }

    /// `{"value": x}` (or `null`) to `Some(x)` (or `None`).
    pub(crate) fn attribute<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        Ok(Option::<Wrapper<T>>::deserialize(deserializer)?.and_then(|w| w.value))
    }

    #[derive(Deserialize)]
    struct Edge {
        #[serde(default)]
        node: Option<Peer>,
    }

    #[derive(Deserialize)]
    struct Edges {
        #[serde(default)]
        edges: Option<Vec<Edge>>,
    }

    /// `{"node": {...}}` (or `{"node": null}`, or `null`) to the peer.
    pub(crate) fn one<'de, D>(deserializer: D) -> Result<Option<Peer>, D::Error>
    where
        D: Deserializer<'de>,
    {
        Ok(Option::<Edge>::deserialize(deserializer)?.and_then(|e| e.node))
    }

    /// `{"count": n, "edges": [{"node": {...}}, ...]}` to the peers.
    pub(crate) fn many<'de, D>(deserializer: D) -> Result<Vec<Peer>, D::Error>
    where
        D: Deserializer<'de>,
    {
        Ok(Option::<Edges>::deserialize(deserializer)?
            .and_then(|e| e.edges)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.node)
            .collect())
    }

    /// A secret's `Some(x)` to `{"value": x}` (the field is skipped when `None`): the one
    /// place a secret input is exposed, to be sent.
    pub(crate) fn secret_attribute_input<S>(
        value: &Option<pacer::auth::SecretString>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        use pacer::auth::ExposeSecret;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("value", &value.as_ref().map(|v| v.expose_secret()))?;
        map.end()
    }

    /// `Some(x)` to `{"value": x}` (the field is skipped when `None`).
    pub(crate) fn attribute_input<S, T>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("value", value)?;
        map.end()
    }
}
