//! Sets of references kept in `Realm::collections`: default client scopes, memberships, role
//! mappings, composites; each member is `{"id": ...}`.

use serde_json::json;

use super::rep::{json_obj, str_field};
use super::state::Realm;

/// The ids in a set of references under `key`: client default scopes, group memberships ...
pub(super) fn link_ids(r: &Realm, key: &str) -> Vec<String> {
    r.items(key)
        .iter()
        .filter_map(|o| str_field(o, "id").map(str::to_owned))
        .collect()
}

/// Adds `id` to the set under `key` (once).
pub(super) fn add_link(r: &mut Realm, key: String, id: &str) {
    let items = r.items_mut(key);
    if !items.iter().any(|o| str_field(o, "id") == Some(id)) {
        items.push(json_obj(json!({ "id": id })));
    }
}

/// Removes `id` from the set under `key`.
pub(super) fn remove_link(r: &mut Realm, key: String, id: &str) {
    r.items_mut(key).retain(|o| str_field(o, "id") != Some(id));
}
