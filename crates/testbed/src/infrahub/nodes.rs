//! Writes to a branch's nodes, shared by every kind: create, find (by id, hfid or unique
//! attribute), update, with Infrahub's uniqueness and mandatory-attribute checks, and the
//! peers relationship inputs name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::kinds::KindSchema;
use super::state::{Node, Nodes};
use crate::util::ids::new_id;

/// The text of a stored value, for hfids, display labels and loose comparisons.
pub(super) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value an attribute input carries: `{value: x, ...}` gives `x`.
pub(super) fn attribute_value(input: &Value) -> Value {
    match input {
        Value::Object(map) => map.get("value").cloned().unwrap_or(Value::Null),
        // Some clients send the bare value; accept it.
        other => other.clone(),
    }
}

/// `attrs` with the attribute inputs of `data` laid over them; Infrahub's error if a
/// mandatory attribute is left without a value.
fn with_attributes(
    kind: &KindSchema,
    mut attrs: Map<String, Value>,
    data: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    for (key, input) in data {
        if key != "id" && key != "hfid" && kind.rel(key).is_none() {
            attrs.insert(key.clone(), attribute_value(input));
        }
    }
    for attr in kind.attributes.iter().filter(|a| !a.optional) {
        if attrs.get(&attr.name).is_none_or(Value::is_null) {
            return Err(format!("{} is mandatory for {}", attr.name, kind.kind));
        }
    }
    Ok(attrs)
}

/// Infrahub's error if a unique attribute of `attrs` has the value of a node other than
/// the one at `skip`.
fn unique_clash(
    kind: &KindSchema,
    nodes: &[Node],
    attrs: &Map<String, Value>,
    skip: Option<usize>,
) -> Result<(), String> {
    for attr in kind.attributes.iter().filter(|a| a.unique) {
        let Some(value) = attrs.get(&attr.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let clash = nodes
            .iter()
            .enumerate()
            .any(|(i, n)| Some(i) != skip && n.attrs.get(&attr.name) == Some(value));
        if clash {
            return Err(format!(
                "Violates uniqueness constraint '{}' with '{}'",
                attr.name,
                value_text(value)
            ));
        }
    }
    Ok(())
}

/// Adds a node of `kind` from a `Create` (or upserting) input: an `id` given must be free,
/// mandatory and unique attributes are checked.
pub(super) fn create(
    kind: &KindSchema,
    nodes: &mut Vec<Node>,
    data: &Map<String, Value>,
    rels: &BTreeMap<String, Vec<String>>,
) -> Result<Node, String> {
    let attrs = with_attributes(kind, Map::new(), data)?;
    let id = match data.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => {
            if nodes.iter().any(|n| n.id == id) {
                return Err(format!("A node with id '{id}' already exists"));
            }
            id.to_owned()
        }
        _ => new_id(),
    };
    unique_clash(kind, nodes, &attrs, None)?;
    let node = Node {
        id,
        attrs,
        rels: rels.clone(),
    };
    nodes.push(node.clone());
    Ok(node)
}

/// The index of the node `data` names: by `id`, else by `hfid`, else (an upsert without
/// either) by the kind's first unique attribute.
pub(super) fn find(
    kind: &KindSchema,
    nodes: &[Node],
    data: &Map<String, Value>,
) -> Result<usize, String> {
    let not_found = |what: String| {
        format!(
            "Unable to find the node {what} / {} in the database.",
            kind.kind
        )
    };
    if let Some(id) = data.get("id").and_then(Value::as_str) {
        return nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| not_found(id.to_owned()));
    }
    let wanted = match (data.get("hfid"), kind.hfid_attr()) {
        (Some(Value::Array(parts)), Some(attr)) => {
            Some((attr, parts.first().cloned().unwrap_or(Value::Null)))
        }
        (_, Some(attr)) => data
            .get(attr)
            .map(attribute_value)
            .filter(|v| !v.is_null())
            .map(|v| (attr, v)),
        (_, None) => None,
    };
    match wanted {
        Some((attr, wanted)) => nodes
            .iter()
            .position(|n| n.attrs.get(attr) == Some(&wanted))
            .ok_or_else(|| not_found(value_text(&wanted))),
        None => Err(format!(
            "Either id or hfid must be provided to find a {}",
            kind.kind
        )),
    }
}

/// Lays an `Update` input over the node at `index`; the relationships given replace theirs.
pub(super) fn update(
    kind: &KindSchema,
    nodes: &mut [Node],
    index: usize,
    data: &Map<String, Value>,
    rels: &BTreeMap<String, Vec<String>>,
) -> Result<Node, String> {
    let attrs = with_attributes(kind, nodes[index].attrs.clone(), data)?;
    unique_clash(kind, nodes, &attrs, Some(index))?;
    nodes[index].attrs = attrs;
    for (name, peers) in rels {
        nodes[index].rels.insert(name.clone(), peers.clone());
    }
    Ok(nodes[index].clone())
}

/// The peer ids the relationship inputs of `data` name (`{id}`, `{hfid, kind}`, or lists of
/// them); an unknown peer is Infrahub's "Unable to find the node" error.
pub(super) fn resolve_rels(
    kind: &KindSchema,
    data: &Map<String, Value>,
    all: &Nodes,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for (key, input) in data {
        if kind.rel(key).is_none() {
            continue;
        }
        let items: Vec<&Value> = match input {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            one => vec![one],
        };
        let mut ids = Vec::new();
        for item in items {
            let id = if let Some(id) = item.get("id").and_then(Value::as_str) {
                all.values()
                    .flatten()
                    .any(|n| n.id == id)
                    .then(|| id.to_owned())
                    .ok_or_else(|| format!("Unable to find the node {id} in the database."))?
            } else if let Some(Value::Array(parts)) = item.get("hfid") {
                let wanted = parts.first().cloned().unwrap_or(Value::Null);
                let peer_kind = item.get("kind").and_then(Value::as_str);
                all.iter()
                    .filter(|(k, _)| peer_kind.is_none_or(|p| p == k.as_str()))
                    .find_map(|(_, nodes)| {
                        nodes.iter().find(|n| n.attrs.get("name") == Some(&wanted))
                    })
                    .map(|n| n.id.clone())
                    .ok_or_else(|| {
                        format!(
                            "Unable to find the node {} in the database.",
                            value_text(&wanted)
                        )
                    })?
            } else {
                return Err(format!("{key}: a related node needs an id or an hfid"));
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        out.insert(key.clone(), ids);
    }
    Ok(out)
}
