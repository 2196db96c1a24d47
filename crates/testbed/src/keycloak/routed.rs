//! The families with routes of their own (`/admin/realms/{realm}/{PATH}[/{id}]`), served by
//! generic handlers over the [`Routed`] trait each of them implements.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use serde_json::Value;

use super::Keycloak;
use super::extract::{Authorized, ListQuery, Rep};
use super::realms::with_realm;
use super::rep::Obj;
use super::reply::{Reply, created};
use super::segments::encode_segment;
use super::state::Realm;
use crate::util::response::json;

/// A family with its own routes, `/admin/realms/{realm}/{PATH}` and `.../{PATH}/{id}`,
/// served by the generic handlers below.
pub(super) trait Routed: 'static {
    /// The collection's path under the realm (`clients`).
    const PATH: &'static str;
    /// The answer to a `GET` on the collection, with the query's filters and paging.
    fn list(r: &Realm, query: &HashMap<String, String>) -> Value;
    /// Adds a member; the answer is the last segment of its `Location`.
    fn insert(r: &mut Realm, rep: Obj) -> Result<String, Response>;
    /// The answer to `GET` on the member `id` (its URL segment).
    fn get(r: &Realm, id: &str) -> Reply;
    /// The answer to `PUT` on the member `id`.
    fn update(r: &mut Realm, id: &str, update: Obj) -> Reply;
    /// The answer to `DELETE` on the member `id`.
    fn delete(r: &mut Realm, id: &str) -> Reply;
}

/// Adds the collection and member routes of `F`.
pub(super) fn routed<F: Routed>(routes: Router<Arc<Keycloak>>) -> Router<Arc<Keycloak>> {
    let collection = format!("/admin/realms/{{realm}}/{}", F::PATH);
    let member = format!("{collection}/{{id}}");
    routes
        .route(&collection, get(list_members::<F>).post(create_member::<F>))
        .route(
            &member,
            get(get_member::<F>)
                .put(update_member::<F>)
                .delete(delete_member::<F>),
        )
}

pub(super) async fn list_members<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path(realm): Path<String>,
    ListQuery(query): ListQuery,
) -> Reply {
    with_realm(&kc, &realm, |r| {
        Ok(json(StatusCode::OK, &F::list(r, &query)))
    })
}

pub(super) async fn create_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    admin: Authorized,
    Path(realm): Path<String>,
    Rep(rep): Rep,
) -> Reply {
    with_realm(&kc, &realm, |r| {
        let segment = F::insert(r, rep)?;
        Ok(created(format!(
            "{}/admin/realms/{}/{}/{segment}",
            admin.base_url,
            encode_segment(&realm),
            F::PATH
        )))
    })
}

pub(super) async fn get_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path((realm, id)): Path<(String, String)>,
) -> Reply {
    with_realm(&kc, &realm, |r| F::get(r, &id))
}

pub(super) async fn update_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path((realm, id)): Path<(String, String)>,
    Rep(update): Rep,
) -> Reply {
    with_realm(&kc, &realm, |r| F::update(r, &id, update))
}

pub(super) async fn delete_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path((realm, id)): Path<(String, String)>,
) -> Reply {
    with_realm(&kc, &realm, |r| F::delete(r, &id))
}
