//! What the fake Infrahub holds: kinds, branches of nodes, pool allocations, tokens.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::kinds::KindSchema;
use crate::util::tokens::Tokens;

#[derive(Debug, Default)]
pub(super) struct Store {
    pub(super) kinds: BTreeMap<String, KindSchema>,
    pub(super) branches: BTreeMap<String, Branch>,
    /// (branch, pool id) -> allocations (identifier, address node id, address)
    pub(super) allocations: HashMap<(String, String), Vec<Allocation>>,
    pub(super) access: Tokens<()>,
    pub(super) refresh: Tokens<()>,
}

/// One branch: its metadata (what `Branch` queries answer) and its nodes.
#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub(super) meta: Map<String, Value>,
    /// kind -> nodes in creation order
    pub(super) nodes: BTreeMap<String, Vec<Node>>,
}

/// One node: its id, attribute values and relationship peers.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) id: String,
    pub(super) attrs: Map<String, Value>,
    /// relationship -> peer ids
    pub(super) rels: BTreeMap<String, Vec<String>>,
}

/// A branch's nodes: kind -> nodes in creation order.
pub(super) type Nodes = BTreeMap<String, Vec<Node>>;

/// An address allocated from a pool.
#[derive(Debug, Clone)]
pub(super) struct Allocation {
    pub(super) identifier: Option<String>,
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) address: String,
}
