//! Representations: Keycloak's JSON objects, kept as `serde_json` maps so that fields this
//! fake does not know survive a read-modify-write.

use axum::response::Response;
use serde_json::{Map, Value};

use super::reply::bad_request;

/// A representation (a realm, client, user, role ...).
pub(super) type Obj = Map<String, Value>;

/// The string field `key` of `obj`, if it is one.
pub(super) fn str_field<'a>(obj: &'a Obj, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// A request body that must be a JSON object (400 otherwise).
pub(super) fn parse_object(body: &[u8]) -> Result<Obj, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(bad_request("Invalid JSON: expected an object")),
    }
}

/// Overlays the fields of `update` on `target` (Keycloak's updates ignore absent fields).
pub(super) fn merge(target: &mut Obj, update: Obj) {
    for (key, value) in update {
        target.insert(key, value);
    }
}

/// The object `value` is, or an empty one.
pub(super) fn json_obj(value: Value) -> Obj {
    match value {
        Value::Object(obj) => obj,
        _ => Obj::new(),
    }
}

/// A request body that must be a JSON array (400 otherwise).
pub(super) fn parse_array(body: &[u8]) -> Result<Vec<Obj>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(json_obj).collect()),
        _ => Err(bad_request("Invalid JSON: expected an array")),
    }
}

/// The objects as JSON values, for a list answer.
pub(super) fn values<'a>(items: impl Iterator<Item = &'a Obj>) -> Vec<Value> {
    items.cloned().map(Value::Object).collect()
}
