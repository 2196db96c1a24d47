//! Groups: the tree (paths, children, sub-group counts), CRUD, children, lookup by path.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::Keycloak;
use super::extract::{Authorized, ListQuery, Rep};
use super::listing::{contains_ci, page};
use super::realms::with_realm;
use super::rep::{Obj, merge, str_field};
use super::reply::{Reply, bad_request, conflict, created, error};
use super::routed::Routed;
use super::segments::encode_segment;
use super::state::{Group, Realm};
use crate::util::ids::new_id;
use crate::util::response::{empty, json};

/// Keycloak's 404 for an unknown group id.
pub(super) fn group_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Could not find group by id")
}

impl Realm {
    /// The group as Keycloak answers it: with its `path`, `subGroupCount` and `parentId`.
    pub(super) fn group_view(&self, group: &Group) -> Value {
        let id = str_field(&group.rep, "id").unwrap_or("");
        let mut rep = group.rep.clone();
        let children = self
            .groups
            .iter()
            .filter(|g| g.parent.as_deref() == Some(id))
            .count();
        rep.insert("path".into(), Value::String(self.group_path(group)));
        rep.insert("subGroupCount".into(), json!(children));
        rep.entry("subGroups").or_insert_with(|| json!([]));
        if let Some(parent) = &group.parent {
            rep.insert("parentId".into(), Value::String(parent.clone()));
        }
        Value::Object(rep)
    }

    /// `/parent/child`.
    pub(super) fn group_path(&self, group: &Group) -> String {
        let mut names = vec![str_field(&group.rep, "name").unwrap_or("").to_owned()];
        let mut parent = group.parent.clone();
        // Bounded by the number of groups, so a cycle (impossible here) cannot hang.
        for _ in 0..self.groups.len() {
            let Some(pid) = parent else { break };
            let Some(p) = self.find_group(&pid) else {
                break;
            };
            names.push(str_field(&p.rep, "name").unwrap_or("").to_owned());
            parent = p.parent.clone();
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    pub(super) fn find_group(&self, id: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| str_field(&g.rep, "id") == Some(id))
    }

    /// Adds a group under `parent`; names are unique among siblings.
    pub(super) fn add_group(
        &mut self,
        mut rep: Obj,
        parent: Option<String>,
    ) -> Result<String, Response> {
        let Some(name) = str_field(&rep, "name").map(str::to_owned) else {
            return Err(bad_request("Group name is missing"));
        };
        if self
            .groups
            .iter()
            .any(|g| g.parent == parent && str_field(&g.rep, "name") == Some(name.as_str()))
        {
            return Err(conflict(match parent {
                None => format!("Top level group named '{name}' already exists."),
                Some(_) => format!("Sibling group named '{name}' already exists."),
            }));
        }
        let id = new_id();
        rep.insert("id".into(), Value::String(id.clone()));
        rep.remove("subGroups");
        self.groups.push(Group { rep, parent });
        Ok(id)
    }
}

/// A page of the groups under `parent` (top level for `None`), searched by name.
fn group_page(r: &Realm, parent: Option<&str>, query: &HashMap<String, String>) -> Value {
    let items: Vec<Value> = r
        .groups
        .iter()
        .filter(|g| g.parent.as_deref() == parent)
        .filter(|g| match query.get("search") {
            Some(needle) => contains_ci(str_field(&g.rep, "name"), needle),
            None => true,
        })
        .map(|g| r.group_view(g))
        .collect();
    Value::Array(page(items, query, 100))
}

/// `/admin/realms/{realm}/groups[/{id}]`.
pub(super) struct Groups;

impl Routed for Groups {
    const PATH: &'static str = "groups";

    fn list(r: &Realm, query: &HashMap<String, String>) -> Value {
        group_page(r, None, query)
    }

    fn insert(r: &mut Realm, rep: Obj) -> Result<String, Response> {
        r.add_group(rep, None)
    }

    fn get(r: &Realm, id: &str) -> Reply {
        let group = r.find_group(id).ok_or_else(group_not_found)?;
        Ok(json(StatusCode::OK, &r.group_view(group)))
    }

    /// Names are unique among siblings; the computed fields of the view are not stored.
    fn update(r: &mut Realm, id: &str, mut update: Obj) -> Reply {
        let index = r
            .groups
            .iter()
            .position(|g| str_field(&g.rep, "id") == Some(id))
            .ok_or_else(group_not_found)?;
        if let Some(name) = str_field(&update, "name") {
            let parent = r.groups[index].parent.clone();
            if r.groups.iter().enumerate().any(|(i, g)| {
                i != index && g.parent == parent && str_field(&g.rep, "name") == Some(name)
            }) {
                return Err(conflict(format!(
                    "Sibling group named '{name}' already exists."
                )));
            }
        }
        for computed in ["id", "path", "subGroupCount", "subGroups", "parentId"] {
            update.remove(computed);
        }
        merge(&mut r.groups[index].rep, update);
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// Removes the group and all its descendants.
    fn delete(r: &mut Realm, id: &str) -> Reply {
        r.find_group(id).ok_or_else(group_not_found)?;
        let mut doomed = vec![id.to_owned()];
        let mut i = 0;
        while i < doomed.len() {
            let current = doomed[i].clone();
            doomed.extend(
                r.groups
                    .iter()
                    .filter(|g| g.parent.as_deref() == Some(current.as_str()))
                    .filter_map(|g| str_field(&g.rep, "id").map(str::to_owned)),
            );
            i += 1;
        }
        r.groups.retain(|g| {
            !str_field(&g.rep, "id").is_some_and(|gid| doomed.iter().any(|d| d == gid))
        });
        Ok(empty(StatusCode::NO_CONTENT))
    }
}

/// `GET /admin/realms/{realm}/groups/{id}/children`.
pub(super) async fn list_children(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path((realm, id)): Path<(String, String)>,
    ListQuery(query): ListQuery,
) -> Reply {
    with_realm(&kc, &realm, |r| {
        r.find_group(&id).ok_or_else(group_not_found)?;
        Ok(json(StatusCode::OK, &group_page(r, Some(&id), &query)))
    })
}

/// `POST /admin/realms/{realm}/groups/{id}/children`: the `Location` is under the groups.
pub(super) async fn create_child(
    State(kc): State<Arc<Keycloak>>,
    admin: Authorized,
    Path((realm, id)): Path<(String, String)>,
    Rep(rep): Rep,
) -> Reply {
    with_realm(&kc, &realm, |r| {
        r.find_group(&id).ok_or_else(group_not_found)?;
        let child = r.add_group(rep, Some(id))?;
        Ok(created(format!(
            "{}/admin/realms/{}/groups/{child}",
            admin.base_url,
            encode_segment(&realm)
        )))
    })
}

/// `GET /admin/realms/{realm}/group-by-path/{path}`.
pub(super) fn by_path(r: &Realm, path: &[&str]) -> Reply {
    let wanted = format!("/{}", path.join("/"));
    r.groups
        .iter()
        .find(|g| r.group_path(g) == wanted)
        .map(|g| json(StatusCode::OK, &r.group_view(g)))
        .ok_or_else(group_not_found)
}
