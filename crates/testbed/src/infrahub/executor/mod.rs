//! The GraphQL endpoint of the fake Infrahub: the request envelope, the operation run against
//! a branch (validated whole first, so a bad document changes nothing), the answer.
//!
//! Files: `validate` (fields, arguments and inputs a kind accepts), `query` (node lists and
//! their pages), `filter` (the arguments that select nodes), `project` (nodes as a selection
//! asks for them), `mutation` (node writes), `branch` (branch queries and mutations),
//! `ip_pool` (addresses from IP address pools), `response` (the JSON answer, in selection
//! order).

mod branch;
mod filter;
mod ip_pool;
mod mutation;
mod project;
mod query;
mod response;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::Infrahub;
use super::auth::Authorized;
use super::kinds::KindSchema;
use crate::graphql::{self, Field, OperationKind};
use crate::util::response::json;

/// The suffixes of the mutations every kind has.
const MUTATION_SUFFIXES: [&str; 4] = ["Create", "Update", "Upsert", "Delete"];

/// `POST /graphql`: an operation on `main`.
pub(super) async fn graphql_main(
    State(ih): State<Arc<Infrahub>>,
    _: Authorized,
    body: Bytes,
) -> Response {
    execute_request(&ih, "main", &body)
}

/// `POST /graphql/{branch}`: an operation on that branch.
pub(super) async fn graphql_branch(
    State(ih): State<Arc<Infrahub>>,
    _: Authorized,
    Path(branch): Path<String>,
    body: Bytes,
) -> Response {
    execute_request(&ih, &branch, &body)
}

/// Runs the request in `body` (`{query, variables, operationName}`) on `branch`.
fn execute_request(ih: &Infrahub, branch: &str, body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                &json!({"data": null, "errors": [{"message": "Unable to parse request body as JSON"}]}),
            );
        }
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return json(
            StatusCode::BAD_REQUEST,
            &json!({"data": null, "errors": [{"message": "The query must be a string."}]}),
        );
    };
    let variables = match request.get("variables") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let operation_name = request.get("operationName").and_then(Value::as_str);
    let operation = match graphql::operation(query, operation_name, &variables) {
        Ok(operation) => operation,
        Err(message) => return response::errors_only(message),
    };
    let fields = operation.fields;
    let mut state = ih.lock();
    if !state.branches.contains_key(branch) {
        return response::errors_only(format!("Branch: {branch} not found."));
    }
    let exec = Exec {
        kinds: state.kinds.clone(),
    };
    let root = match operation.kind {
        OperationKind::Query => "Query",
        OperationKind::Mutation => "Mutation",
        OperationKind::Subscription => {
            return response::errors_only("Subscriptions are not supported by the testbed.".into());
        }
    };
    // Validate everything first, so a bad document changes nothing (as GraphQL servers do).
    for field in &fields {
        if let Err(message) = exec.validate_root(root, field) {
            return response::errors_only(message);
        }
    }
    let mut data = Map::new();
    let mut errors = Vec::new();
    for field in &fields {
        let result = if root == "Query" {
            exec.query(&state, branch, field)
        } else {
            exec.mutate(&mut state, branch, field)
        };
        match result {
            Ok(value) => {
                data.insert(field.key().to_owned(), value);
            }
            Err(message) => {
                data.insert(field.key().to_owned(), Value::Null);
                errors.push(json!({"message": message, "path": [field.key()]}));
            }
        }
    }
    response::answer(data, errors, &fields)
}
/// Resolves the fields of one operation against the kinds served.
struct Exec {
    /// The kinds served when the request arrived.
    kinds: BTreeMap<String, KindSchema>,
}

impl Exec {
    pub(super) fn arg(&self, field: &Field, name: &str) -> Option<Value> {
        field.argument(name).cloned()
    }

    pub(super) fn kind(&self, name: &str) -> Option<&KindSchema> {
        self.kinds.get(name)
    }

    pub(super) fn split_mutation<'n>(&self, name: &'n str) -> Option<(&KindSchema, &'n str)> {
        MUTATION_SUFFIXES.iter().find_map(|suffix| {
            let kind = name.strip_suffix(suffix)?;
            Some((self.kind(kind)?, *suffix))
        })
    }
}
