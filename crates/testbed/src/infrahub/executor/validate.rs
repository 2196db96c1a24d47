//! Validation of an operation before anything runs: the root fields, their arguments and
//! inputs, and every selection, against the kinds served; the errors in graphql-core's
//! wording.

use serde_json::Value;

use super::Exec;
use crate::graphql::Field;
use crate::infrahub::kinds::KindSchema;

/// What an attribute answers besides its value.
const ATTRIBUTE_FIELDS: [&str; 8] = [
    "value",
    "is_default",
    "is_protected",
    "is_visible",
    "id",
    "updated_at",
    "is_from_profile",
    "__typename",
];
/// What a branch answers.
const BRANCH_FIELDS: [&str; 12] = [
    "id",
    "name",
    "description",
    "origin_branch",
    "branched_from",
    "status",
    "graph_version",
    "created_at",
    "sync_with_git",
    "is_default",
    "has_schema_changes",
    "__typename",
];

pub(super) fn cannot_query(field: &str, on: &str) -> String {
    format!("Cannot query field '{field}' on type '{on}'.")
}

pub(super) fn unknown_argument(argument: &str, on: &str) -> String {
    format!("Unknown argument '{argument}' on field '{on}'.")
}

pub(super) fn needs_subfields(field: &Field, on: &str) -> Result<(), String> {
    if field.selection.is_empty() {
        Err(format!(
            "Field '{}' of type '{on}' must have a selection of subfields. Did you mean '{} {{ ... }}'?",
            field.name, field.name
        ))
    } else {
        Ok(())
    }
}

pub(super) fn no_subfields(field: &Field, on: &str) -> Result<(), String> {
    if field.selection.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Field '{}' must not have a selection since type '{on}' has no subfields.",
            field.name
        ))
    }
}

impl Exec {
    pub(super) fn validate_root(&self, root: &str, field: &Field) -> Result<(), String> {
        if field.name == "__typename" {
            return no_subfields(field, "String");
        }
        if root == "Query" {
            if field.name == "Branch" {
                for (arg, _) in &field.arguments {
                    if arg != "ids" && arg != "name" {
                        return Err(unknown_argument(arg, "Query.Branch"));
                    }
                }
                return self.validate_flat(field, "Branch", &BRANCH_FIELDS);
            }
            if field.name == "InfrahubInfo" {
                return self.validate_flat(field, "Info", &["version", "__typename"]);
            }
            let Some(kind) = self.kind(&field.name) else {
                return Err(cannot_query(&field.name, "Query"));
            };
            for (arg, _) in &field.arguments {
                let ok = match arg.as_str() {
                    "offset" | "limit" | "ids" | "hfid" | "order" | "partial_match"
                    | "any__value" => true,
                    other => other
                        .strip_suffix("__value")
                        .or_else(|| other.strip_suffix("__values"))
                        .is_some_and(|attr| kind.attr(attr).is_some()),
                };
                if !ok {
                    return Err(unknown_argument(arg, &format!("Query.{}", kind.kind)));
                }
            }
            return self.validate_paginated(kind, field);
        }
        if field.name == "InfrahubIPAddressPoolGetResource" {
            needs_subfields(field, "IPAddressPoolGetResource")?;
            for sub in &field.selection {
                match sub.name.as_str() {
                    "ok" | "__typename" => no_subfields(sub, "Boolean")?,
                    "node" => self.validate_flat(
                        sub,
                        "PoolAllocatedNode",
                        &[
                            "id",
                            "kind",
                            "display_label",
                            "identifier",
                            "branch",
                            "__typename",
                        ],
                    )?,
                    other => return Err(cannot_query(other, "IPAddressPoolGetResource")),
                }
            }
            return Ok(());
        }
        if matches!(
            field.name.as_str(),
            "BranchCreate" | "BranchDelete" | "BranchMerge" | "BranchRebase"
        ) {
            let payload = field.name.clone();
            needs_subfields(field, &payload)?;
            for sub in &field.selection {
                match sub.name.as_str() {
                    "ok" | "__typename" => no_subfields(sub, "Boolean")?,
                    "object" if field.name != "BranchDelete" => {
                        self.validate_flat(sub, "Branch", &BRANCH_FIELDS)?
                    }
                    other => return Err(cannot_query(other, &payload)),
                }
            }
            return Ok(());
        }
        let Some((kind, suffix)) = self.split_mutation(&field.name) else {
            return Err(cannot_query(&field.name, "Mutation"));
        };
        for (arg, _) in &field.arguments {
            if !matches!(arg.as_str(), "data" | "context") {
                return Err(unknown_argument(arg, &format!("Mutation.{}", field.name)));
            }
        }
        let data = match self.arg(field, "data") {
            Some(Value::Object(data)) => data,
            _ => {
                return Err(format!(
                    "Field '{}' argument 'data' of type '{}{suffix}Input!' is required, but it was not provided.",
                    field.name, kind.kind
                ));
            }
        };
        let input_type = if suffix == "Delete" {
            "DeleteInput".to_owned()
        } else {
            format!("{}{suffix}Input", kind.kind)
        };
        for key in data.keys() {
            let ok = match key.as_str() {
                "id" => true,
                "hfid" => suffix != "Create",
                other => {
                    suffix != "Delete" && (kind.attr(other).is_some() || kind.rel(other).is_some())
                }
            };
            if !ok {
                return Err(format!(
                    "Field '{key}' is not defined by type '{input_type}'."
                ));
            }
        }
        needs_subfields(field, &field.name)?;
        for sub in &field.selection {
            match sub.name.as_str() {
                "ok" | "__typename" => no_subfields(sub, "Boolean")?,
                "object" if suffix != "Delete" => {
                    needs_subfields(sub, &kind.kind)?;
                    self.validate_node(kind, sub)?;
                }
                other => return Err(cannot_query(other, &field.name)),
            }
        }
        Ok(())
    }

    pub(super) fn validate_flat(
        &self,
        field: &Field,
        on: &str,
        allowed: &[&str],
    ) -> Result<(), String> {
        needs_subfields(field, on)?;
        for sub in &field.selection {
            if !allowed.contains(&sub.name.as_str()) {
                return Err(cannot_query(&sub.name, on));
            }
            no_subfields(sub, "String")?;
        }
        Ok(())
    }

    pub(super) fn validate_paginated(
        &self,
        kind: &KindSchema,
        field: &Field,
    ) -> Result<(), String> {
        let on = format!("Paginated{}", kind.kind);
        needs_subfields(field, &on)?;
        for sub in &field.selection {
            match sub.name.as_str() {
                "count" | "__typename" => no_subfields(sub, "Int")?,
                "edges" => {
                    let edged = format!("Edged{}", kind.kind);
                    needs_subfields(sub, &edged)?;
                    for edge in &sub.selection {
                        match edge.name.as_str() {
                            "node" => {
                                needs_subfields(edge, &kind.kind)?;
                                self.validate_node(kind, edge)?;
                            }
                            "__typename" => no_subfields(edge, "String")?,
                            other => return Err(cannot_query(other, &edged)),
                        }
                    }
                }
                other => return Err(cannot_query(other, &on)),
            }
        }
        Ok(())
    }

    pub(super) fn validate_node(&self, kind: &KindSchema, field: &Field) -> Result<(), String> {
        for sub in &field.selection {
            match sub.name.as_str() {
                "id" | "hfid" | "display_label" | "__typename" => no_subfields(sub, "String")?,
                name if kind.attr(name).is_some() => {
                    needs_subfields(sub, "TextAttribute")?;
                    for attr_field in &sub.selection {
                        if !ATTRIBUTE_FIELDS.contains(&attr_field.name.as_str()) {
                            return Err(cannot_query(&attr_field.name, "TextAttribute"));
                        }
                        no_subfields(attr_field, "String")?;
                    }
                }
                name if kind.rel(name).is_some() => {
                    let many = kind.rel(name).is_some_and(|r| r.many);
                    let on = if many {
                        "NestedPaginatedCoreNode"
                    } else {
                        "NestedEdgedCoreNode"
                    };
                    needs_subfields(sub, on)?;
                    for rel_field in &sub.selection {
                        match rel_field.name.as_str() {
                            "count" if many => no_subfields(rel_field, "Int")?,
                            "__typename" => no_subfields(rel_field, "String")?,
                            "edges" if many => {
                                needs_subfields(rel_field, "NestedEdgedCoreNode")?;
                                for edge in &rel_field.selection {
                                    match edge.name.as_str() {
                                        "node" => self.validate_peer(edge)?,
                                        "__typename" => no_subfields(edge, "String")?,
                                        other => {
                                            return Err(cannot_query(other, "NestedEdgedCoreNode"));
                                        }
                                    }
                                }
                            }
                            "node" if !many => self.validate_peer(rel_field)?,
                            other => return Err(cannot_query(other, on)),
                        }
                    }
                }
                other => return Err(cannot_query(other, &kind.kind)),
            }
        }
        Ok(())
    }

    pub(super) fn validate_peer(&self, field: &Field) -> Result<(), String> {
        self.validate_flat(
            field,
            "CoreNode",
            &["id", "hfid", "display_label", "__typename"],
        )
    }
}
