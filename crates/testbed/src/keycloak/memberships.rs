//! Group memberships: a user's groups, and a group's members.

use http::{Method, StatusCode};
use serde_json::Value;

use super::groups::group_not_found;
use super::links::{add_link, link_ids, remove_link};
use super::rep::str_field;
use super::reply::{Reply, unserved};
use super::state::Realm;
use crate::util::response::{empty, json};

/// `/admin/realms/{realm}/users/{user}/groups[/{group}]`, `tail` being what follows
/// `groups`: `GET` the user's groups, `PUT`/`DELETE` one membership.
pub(super) fn user_groups(r: &mut Realm, method: &Method, user: &str, tail: &[&str]) -> Reply {
    match (method.as_str(), tail) {
        ("GET", []) => {
            let ids = link_ids(r, &format!("users/{user}/groups"));
            let groups: Vec<Value> = r
                .groups
                .iter()
                .filter(|g| str_field(&g.rep, "id").is_some_and(|id| ids.iter().any(|i| i == id)))
                .map(|g| r.group_view(g))
                .collect();
            Ok(json(StatusCode::OK, &Value::Array(groups)))
        }
        ("PUT", [group]) => {
            r.find_group(group).ok_or_else(group_not_found)?;
            add_link(r, format!("users/{user}/groups"), group);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        ("DELETE", [group]) => {
            r.find_group(group).ok_or_else(group_not_found)?;
            remove_link(r, format!("users/{user}/groups"), group);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(unserved(tail, 1)),
    }
}

/// `GET /admin/realms/{realm}/groups/{group}/members`.
pub(super) fn group_members(r: &Realm, group: &str) -> Reply {
    let members: Vec<Value> = r
        .users
        .iter()
        .filter(|u| {
            let id = str_field(u, "id").unwrap_or("");
            link_ids(r, &format!("users/{id}/groups"))
                .iter()
                .any(|g| g == group)
        })
        .map(|u| Value::Object(u.clone()))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(members)))
}
