//! The fake Keycloak: the OpenID Connect token endpoint and an in-memory subset of the admin
//! REST API.
//!
//! Representations are stored as JSON objects (`serde_json::Map`), so fields this fake does
//! not know are kept and returned: a read-modify-write by a client round-trips.
//!
//! Files, lower ones used by higher ones: `rep` (representations), `reply` (answers), `extract` (what handlers take from a request),
//! `segments`, `listing`, `links` (sets of references); `state` (what the fake holds);
//! `family` (the generic collection of objects) and `families` (how each is keyed and worded);
//! `routed` (families with routes of their own); `token`, `serverinfo`, `realms`, `clients`,
//! `client_resources`, `client_scopes`, `scope_links`, `users`, `memberships`, `groups`,
//! `roles`, `role_mappings`, `identity_providers`; `nested` (the raw-path routes); `journal`
//! (the request log). This file holds the shared handle and the routes.

// Handlers answer errors as ready responses (`Result<Response, Response>`, the axum idiom);
// their size does not matter for a test server.
#![allow(clippy::result_large_err)]

mod client_resources;
mod client_scopes;
mod clients;
mod extract;
mod families;
mod family;
mod groups;
mod identity_providers;
mod journal;
mod links;
mod listing;
mod memberships;
mod nested;
mod realms;
mod rep;
mod reply;
mod role_mappings;
mod roles;
mod routed;
mod scope_links;
mod segments;
mod serverinfo;
mod state;
mod token;
mod users;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};

pub use journal::RecordedRequest;

use crate::Credentials;
use crate::util::journal::Journal;
use state::Store;

/// The Keycloak version the fake claims to be (`GET /admin/serverinfo`).
pub(crate) const VERSION: &str = "26.6.0";

/// The fake Keycloak, shared by its handlers: its state behind one lock, the journal behind
/// another, and its token lifetimes.
#[derive(Debug)]
pub(crate) struct Keycloak {
    state: Mutex<Store>,
    journal: Journal<RecordedRequest>,
    token_lifetime: Duration,
    refresh_lifetime: Duration,
    fallback_base: String,
}

impl Keycloak {
    pub(crate) fn new(
        credentials: &Credentials,
        token_lifetime: Duration,
        refresh_lifetime: Duration,
        fallback_base: String,
    ) -> Self {
        let mut state = Store::default();
        state.realms.insert(
            credentials.keycloak_realm.clone(),
            realms::seeded(credentials, token_lifetime),
        );
        Self {
            state: Mutex::new(state),
            journal: Journal::new(journal::LOG_LIMIT),
            token_lifetime,
            refresh_lifetime,
            fallback_base,
        }
    }

    /// The state; a handler that panicked while holding it leaves it usable.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fake's routes, every one recorded in the journal.
pub(crate) fn router(kc: Arc<Keycloak>) -> Router {
    let routes = Router::new();
    let routes = routed::routed::<clients::Clients>(routes);
    let routes = routed::routed::<users::Users>(routes);
    let routes = routed::routed::<groups::Groups>(routes);
    let routes = routed::routed::<roles::Roles>(routes);
    routes
        .route(
            "/realms/{realm}/protocol/openid-connect/token",
            post(token::token),
        )
        .route("/admin/serverinfo", get(serverinfo::serverinfo))
        .route(
            "/admin/realms",
            get(realms::list_realms).post(realms::create_realm),
        )
        .route(
            "/admin/realms/{realm}",
            get(realms::get_realm)
                .put(realms::update_realm)
                .delete(realms::delete_realm),
        )
        .route("/admin/realms/{realm}/users/count", get(users::count_users))
        .route(
            "/admin/realms/{realm}/groups/{id}/children",
            get(groups::list_children).post(groups::create_child),
        )
        .route("/admin/realms/{realm}/{*rest}", any(nested::nested))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&kc),
            journal::record,
        ))
        .with_state(kc)
}
