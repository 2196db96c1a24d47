//! The fake Infrahub: GraphQL (`POST /graphql`, `POST /graphql/{branch}`), login and refresh
//! (`POST /api/auth/login`, `POST /api/auth/refresh`), API keys (`X-INFRAHUB-KEY`), and
//! `GET /api/schema`.
//!
//! Nodes are stored per branch and kind as JSON attribute values; queries and mutations are
//! resolved generically for every kind the testbed was given (see [`KindSchema`]).
//!
//! Files, lower ones used by higher ones: `kinds` (the kinds served) and `inventory_kinds`
//! (those pacer-inventory generates); `state` (what the fake holds); `nodes` (writes to a
//! branch's nodes); `auth` (API key, login, refresh), `branches` (branch metadata,
//! `GET /api/branch`), `schema` and `schema_load` (the schema endpoints), `journal` (the
//! requests received); `executor` (the GraphQL endpoint). This file holds the shared handle
//! and the routes.

// Handlers answer errors as ready responses (`Result<Response, Response>`, the axum idiom);
// their size does not matter for a test server.
#![allow(clippy::result_large_err)]

mod auth;
mod branches;
mod executor;
#[cfg(feature = "inventory")]
mod inventory_kinds;
mod journal;
mod kinds;
mod nodes;
mod schema;
mod schema_load;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use auth::API_KEY_HEADER;
#[cfg(feature = "inventory")]
pub use inventory_kinds::generated_inventory_kinds;
pub use journal::{InfrahubRequest, JOURNAL_CAP};
pub use kinds::KindSchema;

use crate::Credentials;
use crate::util::journal::Journal;
use branches::branch_meta;
use state::{Branch, Store};

/// The Infrahub version the fake claims to be (`InfrahubInfo`).
pub(crate) const VERSION: &str = "1.10.6";

/// The fake Infrahub, shared by its handlers: its state behind one lock, the journal behind
/// another (so recording a request never waits for a long query), and its configuration.
#[derive(Debug)]
pub(crate) struct Infrahub {
    state: Mutex<Store>,
    journal: Journal<InfrahubRequest>,
    credentials: Credentials,
    token_lifetime: Duration,
    refresh_lifetime: Duration,
}

impl Infrahub {
    pub(crate) fn new(
        kinds: Vec<KindSchema>,
        credentials: Credentials,
        token_lifetime: Duration,
        refresh_lifetime: Duration,
    ) -> Self {
        let mut state = Store {
            kinds: kinds.into_iter().map(|k| (k.kind.clone(), k)).collect(),
            ..Store::default()
        };
        state.branches.insert(
            "main".into(),
            Branch {
                meta: branch_meta("main", "Default Branch", true, true),
                nodes: BTreeMap::new(),
            },
        );
        Self {
            state: Mutex::new(state),
            journal: Journal::new(JOURNAL_CAP),
            credentials,
            token_lifetime,
            refresh_lifetime,
        }
    }

    /// The state; a handler that panicked while holding it leaves it usable.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fake's routes, every one recorded in the journal.
pub(crate) fn router(ih: Arc<Infrahub>) -> Router {
    Router::new()
        .route("/graphql", post(executor::graphql_main))
        .route("/graphql/{branch}", post(executor::graphql_branch))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/schema", get(schema::schema))
        .route("/api/schema/load", post(schema_load::schema_load))
        .route("/api/schema/check", post(schema_load::schema_check))
        .route("/api/branch", get(branches::branches))
        .route_layer(axum::middleware::from_fn_with_state(
            ih.clone(),
            journal::journal,
        ))
        .with_state(ih)
}
