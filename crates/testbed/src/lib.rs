//! pacer-testbed: embedded, in-process fakes of the two HTTP APIs pacer's clients target —
//! Keycloak (token endpoint and an admin API subset) and Infrahub (GraphQL, auth, schema) —
//! served by axum on one local port, rate limited with pacer's own reject mode, with fault
//! injection (429 storms, 503s, latency, connection resets) a test can change while the
//! server runs, and counters of what the server saw.
//!
//! It is for pacer's examples, tests and benches; the library crates never depend on it.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use pacer_testbed::Testbed;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let testbed = Testbed::builder().start().await?; // 127.0.0.1, a free port
//! let creds = testbed.credentials().clone();
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//!
//! // A client-credentials token from the fake Keycloak...
//! let form = format!(
//!     "grant_type=client_credentials&client_id={}&client_secret={}",
//!     creds.keycloak_client_id, creds.keycloak_client_secret
//! );
//! let request = http::Request::post(format!("{}/realms/master/protocol/openid-connect/token", testbed.keycloak_url()))
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(Full::new(Bytes::from(form)))?;
//! let response = tokio::time::timeout(Duration::from_secs(10), client.request(request)).await??;
//! assert_eq!(response.status(), 200);
//! let body = response.into_body().collect().await?.to_bytes();
//! let token: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(token["token_type"], "Bearer");
//!
//! // ...and a 429 storm injected while the server runs.
//! testbed.faults().storm(1, Some(Duration::from_secs(2)));
//! let request = http::Request::get(format!("{}/admin/serverinfo", testbed.keycloak_url()))
//!     .body(Full::new(Bytes::new()))?;
//! let response = tokio::time::timeout(Duration::from_secs(10), client.request(request)).await??;
//! assert_eq!(response.status(), 429);
//! assert_eq!(response.headers()["retry-after"], "2");
//! assert_eq!(testbed.stats().too_many_requests(), 1);
//! # Ok(()) }
//! ```
//!
//! # Paths (all on one port)
//!
//! | path | fake |
//! |---|---|
//! | `POST /realms/{realm}/protocol/openid-connect/token` | Keycloak token endpoint: `client_credentials`, `password`, `refresh_token` |
//! | `GET /admin/serverinfo` | Keycloak server info (`systemInfo.version` = 26.6.0) |
//! | `/admin/realms[/{realm}]` | realms: list, create, get, update, delete |
//! | `/admin/realms/{realm}/clients[/{id}]` | clients: list (`?clientId=`, `search`, `first`, `max`), create, get, update, delete |
//! | `/admin/realms/{realm}/users[/count|/{id}]` | users: list/search, count, create, get, update, delete |
//! | `/admin/realms/{realm}/groups[/{id}[/children]]` | groups: list, create, get, update, delete, children |
//! | `/admin/realms/{realm}/roles[/{name}]` | realm roles: list, create, get, update, delete |
//! | `/admin/realms/{realm}/roles/{name}/composites`, `/roles-by-id/{id}` | composites; roles by id |
//! | `/admin/realms/{realm}/client-scopes[/{id}[/protocol-mappers/models[/{id}]]]` | client scopes and their mappers |
//! | `/admin/realms/{realm}/default-{default,optional}-client-scopes[/{id}]` | realm default scopes |
//! | `/admin/realms/{realm}/clients/{id}/{roles,protocol-mappers/models,client-secret,service-account-user,default-client-scopes,optional-client-scopes}` | client sub-resources |
//! | `/admin/realms/{realm}/users/{id}/{reset-password,groups[/{id}],role-mappings/realm}` | passwords, membership, realm role mappings |
//! | `/admin/realms/{realm}/groups/{id}/{members,role-mappings/realm}`, `/group-by-path/{path}` | members, role mappings, lookup by path |
//! | `/admin/realms/{realm}/identity-provider/instances[/{alias}[/mappers[/{id}]]]` | identity providers and mappers |
//! | `POST /admin/realms/{realm}/partialImport`, `POST /admin/realms/{realm}/logout-all` | realm roles import; end all sessions (revokes the realm's tokens) |
//! | `POST /graphql`, `POST /graphql/{branch}` | Infrahub GraphQL |
//! | `POST /api/auth/login`, `POST /api/auth/refresh` | Infrahub JWT login and refresh |
//! | `GET /api/schema`, `GET /api/branch` | Infrahub schema (kinds served) and branches |
//! | `POST /api/schema/load`, `POST /api/schema/check` | Infrahub schema load (adds kinds) and check (diff) |
//!
//! [`Testbed::keycloak_url`] and [`Testbed::infrahub_url`] are both the server's base URL
//! (`http://127.0.0.1:PORT`); clients append the paths above.
//!
//! # Keycloak
//!
//! The `master` realm (see [`Credentials`]) holds a confidential client with service accounts
//! (for `client_credentials`), the public `admin-cli` client and an admin user (for the
//! `password` grant). Tokens are JWT-shaped (`exp` in the claims) but only this server can
//! check them: it looks them up. They expire after [`TestbedBuilder::token_lifetime`]; refresh
//! tokens after [`TestbedBuilder::refresh_lifetime`]. As in Keycloak, `client_credentials`
//! returns no refresh token (`refresh_expires_in: 0`). Bad client credentials answer
//! `401 {"error":"invalid_client"}`, a bad password `401 {"error":"invalid_grant"}`, a bad or
//! expired refresh token `400 {"error":"invalid_grant"}`. Client secrets may also be sent with
//! HTTP Basic authentication.
//!
//! The admin API needs a live Bearer token from any realm (401 `{"error":"HTTP 401
//! Unauthorized"}` otherwise). Representations are kept as JSON objects: unknown fields
//! survive a read-modify-write; `PUT` overlays the given fields, as Keycloak does, and keeps
//! what Keycloak keeps (ids, a client role's `id` and container). Creates answer `201` with an
//! empty body and `Location: {base}/admin/realms/...`; unknown ids `404 {"error":...}`;
//! duplicates `409 {"errorMessage":...}`, on update too (a user given another user's email:
//! `User exists with same email`). A path with segments beyond what its resource serves is
//! `404 {"error":"HTTP 404 Not Found"}`, a method it does not take `405`. Usernames are
//! lower-cased; user `credentials` of type `password` set the password for the `password`
//! grant and are never returned.
//!
//! # Infrahub
//!
//! GraphQL requests need a live access token (`Authorization: Bearer`, from
//! `POST /api/auth/login`) or the API key in `X-INFRAHUB-KEY`; otherwise `401` with
//! `{"errors":[{"message": ...}]}` (an expired token says `Expired Signature`, which the
//! Python SDK looks for before refreshing). Supported per kind (see [`KindSchema`], default
//! `BuiltinTag`, `CoreRepository`, `CoreStandardGroup`):
//!
//! - `{Kind}(offset, limit, ids, hfid, partial_match, any__value, <attr>__value, <attr>__values)
//!   { count edges { node { id hfid display_label <attr> { value ... } } } }`
//! - `{Kind}Create(data: {<attr>: {value: ...}})`, `{Kind}Update(data: {id | hfid, ...})`,
//!   `{Kind}Upsert(data: {...})` (matches on id, hfid or the first unique attribute), each
//!   `{ ok object { ... } }`; `{Kind}Delete(data: {id | hfid}) { ok }`
//! - `Branch(ids, name) { ... }`, `BranchCreate(data: {name ...})` (copies `main`),
//!   `BranchDelete(data: {name})`, `BranchMerge(data: {name})` (the branch's nodes into
//!   `main`), `BranchRebase(data: {name})` (`main`'s missing nodes into the branch),
//!   `InfrahubInfo { version }`; `/graphql/{branch}` runs against that branch's copy.
//!   Branch times (`branched_from`, `created_at`) are RFC 3339 timestamps, as Infrahub
//!   writes them: `2024-01-01T00:00:00.000000Z`.
//! - Relationships ([`KindSchema::relationship_one`], [`KindSchema::relationship_many`]):
//!   `{rel} { node { id hfid display_label __typename } }` or `{rel} { count edges { node
//!   {...} } }`; inputs `{rel}: {id}` / `{hfid, kind}` (hfids match on `name`) or lists.
//! - `InfrahubIPAddressPoolGetResource(data: {id | hfid, identifier, prefix_length})` on a
//!   `CoreIPAddressPool` node whose `resources` are nodes with a `prefix` attribute: the next
//!   free IPv4 host address, the same one again for the same `identifier`.
//!
//! Unknown kinds, fields or arguments, and syntax errors, answer HTTP 200 with `{"data": null,
//! "errors": [{"message": ...}]}` and change nothing; resolver errors (unknown id, uniqueness,
//! missing mandatory attribute) answer `{"data": {"KindUpdate": null}, "errors": [{"message",
//! "path"}]}`. Attribute metadata other than `value` is not modelled. Every request to the
//! Infrahub paths is recorded ([`Testbed::infrahub_requests`]).
//! `GET /api/schema` lists the kinds served with their attributes, relationships and
//! `default_filter` (`BuiltinTag`'s is `name__value`, as Infrahub 1.10 ships it; see
//! [`KindSchema::default_filter`]).
//!
//! Documents are parsed with `graphql-parser` (its executable-document side) and executed
//! against the kinds served, with bounds on nesting (50 brackets; 64 levels of fields and
//! fragment spreads) and fragment expansion (10 000 fields): a server library with a static
//! schema cannot serve the kinds a test invents, and a dynamic one costs far more build time.
//!
//! # Limits and faults
//!
//! [`TestbedBuilder::rate_limit`] puts a [`pacer::rate_limit::RateLimitLayer::reject`] in front
//! of both fakes: `429` with `Retry-After` and the `RateLimit-Policy`/`RateLimit` fields,
//! keyed on a request header with [`TestbedBuilder::rate_limit_key`] (else one default
//! namespace). [`Faults`] injects 429 storms, 503s, latency and connection resets before the
//! limit; [`Stats`] counts what was answered.
//! [`hostile`] is a raw-socket server that misbehaves at the HTTP/1.1 wire level on demand.
//!
//! # Layout
//!
//! One job a file, shared helpers below what uses them: `server`, `faults`, `stats`;
//! `graphql` (documents, through `graphql-parser`); `util/` (responses, request headers,
//! ids, clocks, base64, JWTs, token tables, request journals); `keycloak/` (one file per
//! resource family, the token endpoint, the raw-path routes, the journal); `infrahub/`
//! (kinds, state, node writes, auth, branches, schema endpoints, journal) and
//! `infrahub/executor/` (GraphQL validation, queries and pages, filters, projection,
//! mutations, branches, IP pools, the answer). The crate's README has the file-by-file
//! table. `hostile/` is the misbehaving raw-socket server.
#![deny(unsafe_code, missing_docs)]

mod faults;
mod graphql;
pub mod hostile;
mod infrahub;
mod keycloak;
mod server;
mod stats;
pub mod support;
mod util;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderName, Request};
use pacer::Namespace;
use pacer::rate_limit::{RateLimitLayer, RateLimiter};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::Faults;
#[cfg(feature = "inventory")]
pub use infrahub::generated_inventory_kinds;
pub use infrahub::{API_KEY_HEADER, InfrahubRequest, JOURNAL_CAP, KindSchema};
pub use keycloak::RecordedRequest;
pub use stats::{LoggedRequest, PathCount, Stats};

/// The Keycloak version the fake reports.
pub const KEYCLOAK_VERSION: &str = keycloak::VERSION;
/// The Infrahub version the fake reports.
pub const INFRAHUB_VERSION: &str = infrahub::VERSION;

/// The credentials both fakes accept. [`Default`] gives fixed, well-known test values.
///
/// These are fake test credentials, so `Debug` shows them (handy when a test fails).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The Keycloak realm the clients and admin user live in (default `master`).
    pub keycloak_realm: String,
    /// A confidential client with service accounts, for `client_credentials` (default `pacer`).
    pub keycloak_client_id: String,
    /// Its secret (default `pacer-secret`).
    pub keycloak_client_secret: String,
    /// A user for the `password` grant with `admin-cli` (default `admin`).
    pub keycloak_admin_user: String,
    /// Its password (default `admin`).
    pub keycloak_admin_password: String,
    /// The Infrahub login user (default `admin`).
    pub infrahub_user: String,
    /// Its password (default `infrahub`).
    pub infrahub_password: String,
    /// The Infrahub API key for `X-INFRAHUB-KEY` (default `testbed-api-key`).
    pub infrahub_api_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            keycloak_realm: "master".into(),
            keycloak_client_id: "pacer".into(),
            keycloak_client_secret: "pacer-secret".into(),
            keycloak_admin_user: "admin".into(),
            keycloak_admin_password: "admin".into(),
            infrahub_user: "admin".into(),
            infrahub_password: "infrahub".into(),
            infrahub_api_key: "testbed-api-key".into(),
        }
    }
}

/// Configures and starts a [`Testbed`]; see [`Testbed::builder`].
#[derive(Debug, Clone)]
pub struct TestbedBuilder {
    addr: SocketAddr,
    credentials: Credentials,
    token_lifetime: Duration,
    refresh_lifetime: Duration,
    limiter: Option<RateLimiter>,
    limit_key: Option<HeaderName>,
    faults: Faults,
    kinds: Vec<KindSchema>,
}

impl Default for TestbedBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: Credentials::default(),
            token_lifetime: Duration::from_secs(300),
            refresh_lifetime: Duration::from_secs(1800),
            limiter: None,
            limit_key: None,
            faults: Faults::default(),
            kinds: KindSchema::defaults(),
        }
    }
}

impl TestbedBuilder {
    /// The address to listen on (default `127.0.0.1:0`: loopback, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The credentials both fakes accept (default [`Credentials::default`]).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// How long access tokens live, both fakes (default 300 s, as Keycloak). Whole seconds
    /// are reported in `expires_in`; a sub-second lifetime is honoured by the server but
    /// reported as 0.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// How long refresh tokens live, both fakes (default 1800 s, as Keycloak).
    pub fn refresh_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_lifetime = lifetime;
        self
    }

    /// Limits both fakes with `limiter` in pacer's reject mode (`429` + `Retry-After`, never
    /// queued). Its `max_wait` is irrelevant here.
    pub fn rate_limit(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Keys the rate limit on this request header (one bucket per value, malformed or
    /// missing values to the default namespace) instead of one default namespace.
    pub fn rate_limit_key(mut self, header: HeaderName) -> Self {
        self.limit_key = Some(header);
        self
    }

    /// Uses `faults` as the fault handle (so faults can be set before the server starts).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Adds an Infrahub kind to those served (replacing one of the same name).
    pub fn kind(mut self, kind: KindSchema) -> Self {
        self.kinds.retain(|k| k.kind() != kind.kind());
        self.kinds.push(kind);
        self
    }

    /// Serves exactly these Infrahub kinds, replacing the defaults.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = KindSchema>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Binds the address and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<Testbed> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let keycloak = Arc::new(keycloak::Keycloak::new(
            &self.credentials,
            self.token_lifetime,
            self.refresh_lifetime,
            base.clone(),
        ));
        let infrahub = Arc::new(infrahub::Infrahub::new(
            self.kinds,
            self.credentials.clone(),
            self.token_lifetime,
            self.refresh_lifetime,
        ));
        let mut router = Router::new()
            .merge(keycloak::router(Arc::clone(&keycloak)))
            .merge(infrahub::router(infrahub.clone()));
        if let Some(limiter) = self.limiter {
            let key = self.limit_key;
            let extract = move |request: &Request<Body>| -> Namespace {
                key.as_ref()
                    .and_then(|header| request.headers().get(header))
                    .and_then(|value| Namespace::from_untrusted(value.as_bytes()))
                    .unwrap_or_default()
            };
            router = router.layer(RateLimitLayer::reject(limiter).with_extractor(extract));
        }
        let stats = Stats::default();
        let frontend = server::Frontend {
            router,
            faults: self.faults.clone(),
            stats: stats.clone(),
        };
        let (shutdown, signal) = watch::channel(());
        let task = tokio::spawn(server::serve(listener, frontend, signal));
        Ok(Testbed {
            addr,
            base,
            credentials: self.credentials,
            faults: self.faults,
            stats,
            keycloak,
            infrahub,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }
}

/// A running testbed: both fakes on one local port. Dropping it shuts the server down
/// gracefully (in-flight requests get up to 5 s); [`Testbed::shutdown`] also waits for that.
pub struct Testbed {
    addr: SocketAddr,
    base: String,
    credentials: Credentials,
    faults: Faults,
    stats: Stats,
    keycloak: Arc<keycloak::Keycloak>,
    infrahub: Arc<infrahub::Infrahub>,
    shutdown: Option<watch::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Testbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Testbed")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Testbed {
    /// A builder with the defaults: `127.0.0.1:0`, [`Credentials::default`], 300 s tokens,
    /// no rate limit, no faults, the default kinds.
    pub fn builder() -> TestbedBuilder {
        TestbedBuilder::default()
    }

    /// Starts a testbed with the defaults.
    pub async fn start() -> io::Result<Testbed> {
        Self::builder().start().await
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL, `http://IP:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The fake Keycloak's base URL (the server's base URL: it serves `/realms` and `/admin`).
    pub fn keycloak_url(&self) -> &str {
        &self.base
    }

    /// The fake Infrahub's base URL (the server's base URL: it serves `/graphql` and `/api`).
    pub fn infrahub_url(&self) -> &str {
        &self.base
    }

    /// The credentials both fakes accept.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The fault-injection handle, changeable while the server runs.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The counters of what the server saw.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The requests the fake Keycloak received (admin API and token endpoint), oldest first,
    /// without their `Authorization` headers: what a client sent, to compare two clients.
    pub fn keycloak_requests(&self) -> Vec<RecordedRequest> {
        self.keycloak.requests()
    }

    /// Forgets the requests recorded so far (see [`Testbed::keycloak_requests`]).
    pub fn clear_keycloak_requests(&self) {
        self.keycloak.clear_requests();
    }

    /// The requests the fake Infrahub received (those that passed the faults and the
    /// server-side limit), oldest first, at most [`JOURNAL_CAP`]. Credentials are not recorded.
    pub fn infrahub_requests(&self) -> Vec<InfrahubRequest> {
        self.infrahub.requests()
    }

    /// Forgets the recorded Infrahub requests.
    pub fn clear_infrahub_requests(&self) {
        self.infrahub.clear_requests();
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 5 s) and waits
    /// for the accept loop to end.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Dropping the sender tells the accept loop and every connection to shut down.
        self.shutdown.take();
    }
}
