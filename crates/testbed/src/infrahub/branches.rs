//! Branches outside GraphQL: the metadata a branch is created with, and `GET /api/branch`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::Infrahub;
use super::auth::Authorized;
use crate::util::clock::timestamp;
use crate::util::ids::new_id;
use crate::util::response::json;

/// The metadata of a new branch, as `Branch` queries and `GET /api/branch` answer it; its
/// times are RFC 3339 timestamps, as Infrahub writes them.
pub(super) fn branch_meta(
    name: &str,
    description: &str,
    default: bool,
    sync_with_git: bool,
) -> Map<String, Value> {
    let now = timestamp();
    match json!({
        "id": new_id(),
        "name": name,
        "description": description,
        "origin_branch": "main",
        "branched_from": now,
        "status": "OPEN",
        "graph_version": 1,
        "created_at": now,
        "sync_with_git": sync_with_git,
        "is_default": default,
        "has_schema_changes": false,
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `GET /api/branch`: every branch's metadata.
pub(super) async fn branches(State(ih): State<Arc<Infrahub>>, _: Authorized) -> Response {
    let state = ih.lock();
    let list: Vec<Value> = state
        .branches
        .values()
        .map(|b| Value::Object(b.meta.clone()))
        .collect();
    json(StatusCode::OK, &Value::Array(list))
}
