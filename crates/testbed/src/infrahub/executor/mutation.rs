//! The mutation root: `{Kind}Create|Update|Upsert|Delete`, and the dispatch to the branch
//! and pool mutations.

use serde_json::{Map, Value, json};

use super::Exec;
use super::validate::cannot_query;
use crate::graphql::Field;
use crate::infrahub::kinds::KindSchema;
use crate::infrahub::nodes::{create, find, resolve_rels, update};
use crate::infrahub::state::{Node, Nodes, Store};

impl Exec {
    pub(super) fn mutate(
        &self,
        state: &mut Store,
        branch: &str,
        field: &Field,
    ) -> Result<Value, String> {
        match field.name.as_str() {
            "__typename" => return Ok(Value::String("Mutation".into())),
            "BranchCreate" => return self.branch_create(state, field),
            "BranchDelete" => return self.branch_delete(state, field),
            "BranchMerge" | "BranchRebase" => return self.branch_merge_or_rebase(state, field),
            "InfrahubIPAddressPoolGetResource" => {
                return self.allocate_address(state, branch, field);
            }
            _ => {}
        }
        let (kind, suffix) = self
            .split_mutation(&field.name)
            .ok_or_else(|| cannot_query(&field.name, "Mutation"))?;
        let data = match self.arg(field, "data") {
            Some(Value::Object(data)) => data,
            _ => return Err("data is required".into()),
        };
        let Some(b) = state.branches.get_mut(branch) else {
            return Err(format!("Branch: {branch} not found."));
        };
        let rels = resolve_rels(kind, &data, &b.nodes)?;
        let nodes = b.nodes.entry(kind.kind.clone()).or_default();
        let node = match suffix {
            "Create" => create(kind, nodes, &data, &rels)?,
            "Update" => {
                let index = find(kind, nodes, &data)?;
                update(kind, nodes, index, &data, &rels)?
            }
            "Upsert" => match find(kind, nodes, &data) {
                Ok(index) => update(kind, nodes, index, &data, &rels)?,
                Err(_) => {
                    let mut data = data.clone();
                    // An upsert by hfid creates the node with that hfid.
                    if let (Some(Value::Array(parts)), Some(attr)) =
                        (data.remove("hfid"), kind.hfid_attr())
                    {
                        if let Some(first) = parts.first() {
                            data.entry(attr.to_owned())
                                .or_insert_with(|| json!({"value": first}));
                        }
                    }
                    create(kind, nodes, &data, &rels)?
                }
            },
            _ => {
                let index = find(kind, nodes, &data)?;
                nodes.remove(index);
                return Ok(self.payload(kind, field, None, &Nodes::new()));
            }
        };
        let no_nodes = Nodes::new();
        let all = state.branches.get(branch).map_or(&no_nodes, |b| &b.nodes);
        Ok(self.payload(kind, field, Some(&node), all))
    }

    pub(super) fn payload(
        &self,
        kind: &KindSchema,
        field: &Field,
        node: Option<&Node>,
        all: &Nodes,
    ) -> Value {
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match (sub.name.as_str(), node) {
                ("ok", _) => Value::Bool(true),
                ("__typename", _) => Value::String(field.name.clone()),
                ("object", Some(node)) => self.project_node(kind, sub, node, all),
                _ => Value::Null,
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }
}
