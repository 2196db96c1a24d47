//! Nodes, their attributes and relationships, and plain objects (branches, info) as a
//! selection asks for them.

use serde_json::{Map, Value, json};

use super::super::nodes::value_text;
use super::Exec;
use crate::graphql::Field;
use crate::infrahub::kinds::KindSchema;
use crate::infrahub::state::{Node, Nodes};

impl Exec {
    pub(super) fn project_flat(
        &self,
        field: &Field,
        source: &Map<String, Value>,
        typename: &str,
    ) -> Value {
        let mut out = Map::new();
        for sub in &field.selection {
            let value = if sub.name == "__typename" {
                Value::String(typename.to_owned())
            } else {
                source.get(&sub.name).cloned().unwrap_or(Value::Null)
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }

    pub(super) fn project_node(
        &self,
        kind: &KindSchema,
        field: &Field,
        node: &Node,
        all: &Nodes,
    ) -> Value {
        let mut out = Map::new();
        for sub in &field.selection {
            let name = sub.name.as_str();
            let value = if let Some(rel) = kind.rel(name) {
                self.project_rel(sub, node.rels.get(name), rel.many, all)
            } else if let Some(meta) = node_meta(kind, node, name) {
                meta
            } else {
                let value = node.attrs.get(name).cloned().unwrap_or(Value::Null);
                let mut wrapper = Map::new();
                for attr_field in &sub.selection {
                    let v = match attr_field.name.as_str() {
                        "value" => value.clone(),
                        "is_default" => Value::Bool(value.is_null()),
                        "is_protected" | "is_from_profile" => Value::Bool(false),
                        "is_visible" => Value::Bool(true),
                        "id" => Value::String(format!("{}-{name}", node.id)),
                        "__typename" => Value::String("TextAttribute".into()),
                        _ => Value::Null,
                    };
                    wrapper.insert(attr_field.key().to_owned(), v);
                }
                Value::Object(wrapper)
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }

    /// A relationship: `{node: peer | null}` or `{count, edges: [{node: peer}]}`; peers that
    /// no longer exist are left out.
    pub(super) fn project_rel(
        &self,
        field: &Field,
        peers: Option<&Vec<String>>,
        many: bool,
        all: &Nodes,
    ) -> Value {
        let found: Vec<(&KindSchema, &Node)> = peers
            .into_iter()
            .flatten()
            .filter_map(|id| {
                all.iter().find_map(|(kind, nodes)| {
                    let node = nodes.iter().find(|n| &n.id == id)?;
                    Some((self.kinds.get(kind)?, node))
                })
            })
            .collect();
        let peer = |field: &Field, kind: &KindSchema, node: &Node| -> Value {
            let mut out = Map::new();
            for sub in &field.selection {
                let value = node_meta(kind, node, &sub.name).unwrap_or(Value::Null);
                out.insert(sub.key().to_owned(), value);
            }
            Value::Object(out)
        };
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "count" => json!(found.len()),
                "node" => found
                    .first()
                    .map_or(Value::Null, |(kind, node)| peer(sub, kind, node)),
                "edges" => Value::Array(
                    found
                        .iter()
                        .map(|(kind, node)| {
                            let mut edge = Map::new();
                            for edge_field in &sub.selection {
                                let v = if edge_field.name == "node" {
                                    peer(edge_field, kind, node)
                                } else {
                                    Value::String("NestedEdgedCoreNode".into())
                                };
                                edge.insert(edge_field.key().to_owned(), v);
                            }
                            Value::Object(edge)
                        })
                        .collect(),
                ),
                _ => Value::String(
                    if many {
                        "NestedPaginatedCoreNode"
                    } else {
                        "NestedEdgedCoreNode"
                    }
                    .into(),
                ),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }
}

/// The fields every node answers whatever its kind (`id`, `__typename`, `hfid`,
/// `display_label`); `None` for any other name.
pub(super) fn node_meta(kind: &KindSchema, node: &Node, name: &str) -> Option<Value> {
    let label = || kind.hfid_attr().and_then(|a| node.attrs.get(a));
    Some(match name {
        "id" => Value::String(node.id.clone()),
        "__typename" => Value::String(kind.kind.clone()),
        "hfid" => label().map_or(Value::Null, |v| json!([value_text(v)])),
        "display_label" => Value::String(label().map_or_else(|| node.id.clone(), value_text)),
        _ => return None,
    })
}
