//! The query root: `InfrahubInfo`, and each kind's list of nodes with its count and
//! its page (`offset`, `limit`).

use serde_json::{Map, Value, json};

use super::Exec;
use super::validate::cannot_query;
use crate::graphql::Field;
use crate::infrahub::VERSION;
use crate::infrahub::state::{Node, Nodes, Store};

impl Exec {
    /// A root field of a query (validated): `Branch` is answered in `branch`.
    pub(super) fn query(
        &self,
        state: &Store,
        branch: &str,
        field: &Field,
    ) -> Result<Value, String> {
        match field.name.as_str() {
            "__typename" => return Ok(Value::String("Query".into())),
            "InfrahubInfo" => {
                let info = json!({"version": VERSION});
                let info = match info {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                return Ok(self.project_flat(field, &info, "Info"));
            }
            "Branch" => return Ok(self.branches(state, field)),
            _ => {}
        }
        let kind = self
            .kind(&field.name)
            .ok_or_else(|| cannot_query(&field.name, "Query"))?;
        let empty = Vec::new();
        let no_nodes = Nodes::new();
        let all = state.branches.get(branch).map_or(&no_nodes, |b| &b.nodes);
        let nodes = state
            .branches
            .get(branch)
            .and_then(|b| b.nodes.get(&kind.kind))
            .unwrap_or(&empty);
        let matching: Vec<&Node> = nodes
            .iter()
            .filter(|n| self.matches(kind, field, n))
            .collect();
        let (offset, limit) = page(field);
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "count" => json!(matching.len()),
                "__typename" => Value::String(format!("Paginated{}", kind.kind)),
                _ => {
                    let edges = matching
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .map(|node| {
                            let mut edge = Map::new();
                            for edge_field in &sub.selection {
                                let v = if edge_field.name == "node" {
                                    self.project_node(kind, edge_field, node, all)
                                } else {
                                    Value::String(format!("Edged{}", kind.kind))
                                };
                                edge.insert(edge_field.key().to_owned(), v);
                            }
                            Value::Object(edge)
                        })
                        .collect();
                    Value::Array(edges)
                }
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }
}

/// The page a list field asks for: `offset` (default 0) and `limit` (default: every node);
/// numbers past `usize` saturate, negative ones are ignored.
fn page(field: &Field) -> (usize, usize) {
    let number = |name: &str| {
        field
            .argument(name)
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    (
        number("offset").unwrap_or(0),
        number("limit").unwrap_or(usize::MAX),
    )
}
