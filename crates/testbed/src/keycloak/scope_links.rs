//! Default and optional client scopes, of the realm or of a client: links to client scopes.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::families::CLIENT_SCOPES;
use super::links::{add_link, link_ids, remove_link};
use super::rep::str_field;
use super::reply::{Reply, unserved};
use super::state::Realm;
use crate::util::response::{empty, json};

/// `GET` of the client scopes linked under `key` (id and name), `PUT`/`DELETE` of one link.
pub(super) fn serve(r: &mut Realm, method: &Method, tail: &[&str], key: String) -> Reply {
    match (method.as_str(), tail) {
        ("GET", []) => {
            let ids = link_ids(r, &key);
            let scopes: Vec<Value> = r
                .items("client-scopes")
                .iter()
                .filter(|s| str_field(s, "id").is_some_and(|id| ids.iter().any(|i| i == id)))
                .map(|s| json!({ "id": s.get("id"), "name": s.get("name") }))
                .collect();
            Ok(json(StatusCode::OK, &Value::Array(scopes)))
        }
        ("PUT", [scope]) => {
            CLIENT_SCOPES.require(r.items("client-scopes"), scope)?;
            add_link(r, key, scope);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        ("DELETE", [scope]) => {
            remove_link(r, key, scope);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(unserved(tail, 1)),
    }
}
