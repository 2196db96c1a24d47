//! Branches in GraphQL: the `Branch` query (`ids`, `name`), and the mutations `BranchCreate` (a copy of `main`), `BranchDelete`, `BranchMerge`,
//! `BranchRebase`.

use serde_json::{Map, Value, json};

use super::Exec;
use crate::graphql::Field;
use crate::infrahub::branches::branch_meta;
use crate::infrahub::state::{Branch, Store};
use crate::util::clock::timestamp;

impl Exec {
    /// `Branch(ids, name)`: the branches that match, as the selection asks.
    pub(super) fn branches(&self, state: &Store, field: &Field) -> Value {
        let ids = self.arg(field, "ids");
        let name = self.arg(field, "name");
        let list = state
            .branches
            .values()
            .filter(|b| match &ids {
                Some(Value::Array(ids)) => ids.iter().any(|id| b.meta.get("id") == Some(id)),
                _ => true,
            })
            .filter(|b| match &name {
                Some(Value::String(n)) => b.meta.get("name") == Some(&Value::String(n.clone())),
                _ => true,
            })
            .map(|b| self.project_flat(field, &b.meta, "Branch"))
            .collect();
        Value::Array(list)
    }

    pub(super) fn branch_create(&self, state: &mut Store, field: &Field) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let Some(name) = data.get("name").and_then(Value::as_str) else {
            return Err("Field 'name' of required type 'String!' was not provided.".into());
        };
        let valid = !name.is_empty()
            && name.len() <= 250
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if !valid {
            return Err(format!("Branch name '{name}' is not valid."));
        }
        if state.branches.contains_key(name) {
            return Err(format!("The branch {name} already exists"));
        }
        let description = data
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let sync = data
            .get("sync_with_git")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let nodes = state
            .branches
            .get("main")
            .map(|b| b.nodes.clone())
            .unwrap_or_default();
        let meta = branch_meta(name, description, false, sync);
        let payload = {
            let mut out = Map::new();
            for sub in &field.selection {
                let value = match sub.name.as_str() {
                    "ok" => Value::Bool(true),
                    "object" => self.project_flat(sub, &meta, "Branch"),
                    _ => Value::String("BranchCreate".into()),
                };
                out.insert(sub.key().to_owned(), value);
            }
            Value::Object(out)
        };
        state
            .branches
            .insert(name.to_owned(), Branch { meta, nodes });
        Ok(payload)
    }

    /// `BranchMerge` copies the branch's nodes into `main` (the branch's version wins);
    /// `BranchRebase` copies `main`'s nodes the branch lacks into it.
    pub(super) fn branch_merge_or_rebase(
        &self,
        state: &mut Store,
        field: &Field,
    ) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let name = data.get("name").and_then(Value::as_str).unwrap_or("");
        if name == "main" {
            return Err("Unable to merge or rebase the default branch".into());
        }
        let Some(branch) = state.branches.get(name).cloned() else {
            return Err(format!("Branch: {name} not found."));
        };
        let Some(main) = state.branches.get("main").cloned() else {
            return Err("Branch: main not found.".into());
        };
        let (from, to) = if field.name == "BranchMerge" {
            (&branch, "main")
        } else {
            (&main, name)
        };
        let merge = field.name == "BranchMerge";
        if let Some(target) = state.branches.get_mut(to) {
            for (kind, nodes) in &from.nodes {
                let existing = target.nodes.entry(kind.clone()).or_default();
                for node in nodes {
                    match existing.iter().position(|n| n.id == node.id) {
                        Some(i) if merge => existing[i] = node.clone(),
                        Some(_) => {}
                        None => existing.push(node.clone()),
                    }
                }
            }
            if !merge {
                target
                    .meta
                    .insert("branched_from".into(), json!(timestamp()));
            }
        }
        let meta = state
            .branches
            .get(name)
            .map(|b| b.meta.clone())
            .unwrap_or_default();
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "ok" => Value::Bool(true),
                "object" => self.project_flat(sub, &meta, "Branch"),
                _ => Value::String(field.name.clone()),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    pub(super) fn branch_delete(&self, state: &mut Store, field: &Field) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let name = data.get("name").and_then(Value::as_str).unwrap_or("");
        if name == "main" {
            return Err("Unable to delete the default branch".into());
        }
        if state.branches.remove(name).is_none() {
            return Err(format!("Branch: {name} not found."));
        }
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "ok" => Value::Bool(true),
                _ => Value::String("BranchDelete".into()),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }
}
