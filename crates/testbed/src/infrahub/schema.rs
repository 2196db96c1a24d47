//! `GET /api/schema`: the kinds served, and the hash that names that set.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::Infrahub;
use super::auth::Authorized;
use super::kinds::KindSchema;
use crate::util::response::json;

/// `GET /api/schema`: the kinds served, in the shape of Infrahub's schema API.
pub(super) async fn schema(State(ih): State<Arc<Infrahub>>, _: Authorized) -> Response {
    let state = ih.lock();
    let nodes: Vec<Value> = state
        .kinds
        .values()
        .map(|k| {
            let (namespace, name) = k.split();
            json!({
                "id": format!("schema-{}", k.kind),
                "kind": k.kind,
                "namespace": namespace,
                "name": name,
                "default_filter": k.default_filter,
                "human_friendly_id": k.hfid_attr().map(|a| vec![format!("{a}__value")]),
                "attributes": k.attributes.iter().map(|a| json!({
                    "name": a.name,
                    "kind": "Text",
                    "unique": a.unique,
                    "optional": a.optional,
                })).collect::<Vec<_>>(),
                "relationships": k.relationships.iter().map(|r| json!({
                    "name": r.name,
                    "peer": "CoreNode",
                    "cardinality": if r.many { "many" } else { "one" },
                    "optional": true,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({"main": schema_hash(&state.kinds), "nodes": nodes, "generics": [], "profiles": [], "templates": []}),
    )
}

/// A stable hash of the kinds served (the schema's `hash`).
pub(super) fn schema_hash(kinds: &BTreeMap<String, KindSchema>) -> String {
    // FNV-1a over the kinds' debug text: deterministic across runs, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{kinds:?}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
