//! `POST /api/schema/load` and `POST /api/schema/check`: the kinds a schema file defines,
//! added to those served or compared with them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::Infrahub;
use super::auth::Authorized;
use super::kinds::KindSchema;
use super::schema::schema_hash;
use crate::util::response::json;

/// The kinds a `POST /api/schema/load|check` body defines: `{"schemas": [{"nodes": [{"name",
/// "namespace", "default_filter", "attributes": [{"name", "unique", "optional"}], "relationships": [{"name",
/// "cardinality"}]}]}]}`.
pub(super) fn kinds_from_schemas(body: &[u8]) -> Result<Vec<KindSchema>, Response> {
    let invalid = |message: &str| {
        json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"errors": [{"message": message, "extensions": {"code": 422}}]}),
        )
    };
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| invalid("Unable to parse the schemas as JSON"))?;
    let schemas = parsed
        .get("schemas")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("schemas: field required"))?;
    let mut kinds = Vec::new();
    for schema in schemas {
        for node in list(schema, "nodes") {
            let (Some(namespace), Some(name)) = (
                node.get("namespace").and_then(Value::as_str),
                node.get("name").and_then(Value::as_str),
            ) else {
                return Err(invalid("nodes: namespace and name are required"));
            };
            let kind_name = format!("{namespace}{name}");
            let valid = |s: &str| {
                s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric())
            };
            if !valid(namespace) || !valid(name) {
                return Err(invalid(&format!("{kind_name}: invalid namespace or name")));
            }
            let mut kind = KindSchema::new(kind_name);
            for attribute in list(node, "attributes") {
                let Some(attr) = attribute.get("name").and_then(Value::as_str) else {
                    return Err(invalid("attributes: name is required"));
                };
                let flag = |key| attribute.get(key).and_then(Value::as_bool);
                kind = if flag("unique") == Some(true) {
                    kind.unique(attr)
                } else if flag("optional") == Some(false) {
                    kind.required(attr)
                } else {
                    kind.attribute(attr)
                };
            }
            for relationship in list(node, "relationships") {
                let Some(rel) = relationship.get("name").and_then(Value::as_str) else {
                    return Err(invalid("relationships: name is required"));
                };
                kind = if relationship.get("cardinality").and_then(Value::as_str) == Some("one") {
                    kind.relationship_one(rel)
                } else {
                    kind.relationship_many(rel)
                };
            }
            if let Some(filter) = node.get("default_filter").and_then(Value::as_str) {
                kind = kind.default_filter(filter);
            }
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// The items of the array `value[key]`; none if it is missing or not an array.
fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `POST /api/schema/load`: adds (or replaces) the kinds the schemas define, on every branch.
pub(super) async fn schema_load(
    State(ih): State<Arc<Infrahub>>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, Response> {
    let kinds = kinds_from_schemas(&body)?;
    let mut state = ih.lock();
    let previous = schema_hash(&state.kinds);
    for kind in kinds {
        state.kinds.insert(kind.kind.clone(), kind);
    }
    let hash = schema_hash(&state.kinds);
    Ok(json(
        StatusCode::OK,
        &json!({"hash": hash, "previous_hash": previous, "schema_updated": hash != previous, "warnings": []}),
    ))
}

/// `POST /api/schema/check`: the diff loading the schemas would make, without loading them.
pub(super) async fn schema_check(
    State(ih): State<Arc<Infrahub>>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, Response> {
    let kinds = kinds_from_schemas(&body)?;
    let state = ih.lock();
    let mut added = Map::new();
    let mut changed = Map::new();
    for kind in kinds {
        match state.kinds.get(&kind.kind) {
            None => {
                added.insert(kind.kind.clone(), json!({}));
            }
            Some(existing) if *existing != kind => {
                changed.insert(kind.kind.clone(), json!({}));
            }
            Some(_) => {}
        }
    }
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({"diff": {"added": added, "changed": changed, "removed": {}}}),
    ))
}
