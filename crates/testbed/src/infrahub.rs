//! The fake Infrahub: GraphQL (`POST /graphql`, `POST /graphql/{branch}`), login and refresh
//! (`POST /api/auth/login`, `POST /api/auth/refresh`), API keys (`X-INFRAHUB-KEY`), and
//! `GET /api/schema`.
//!
//! Nodes are stored per branch and kind as JSON attribute values; queries and mutations are
//! resolved generically for every kind the testbed was given (see [`KindSchema`]).

// Handlers answer errors as ready responses (`Result<Response, Response>`, the axum idiom);
// their size does not matter for a test server.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::Credentials;
use crate::graphql::{self, Field, OperationKind};
use crate::util::clock::{deadline, unix_now};
use crate::util::ids::new_id;
use crate::util::jwt::jwt;
use crate::util::request::bearer;
use crate::util::response::json;

/// The Infrahub version the fake claims to be (`InfrahubInfo`).
pub(crate) const VERSION: &str = "1.10.6";

/// The header Infrahub reads API keys from.
pub const API_KEY_HEADER: &str = "x-infrahub-key";

const PRUNE_AT: usize = 4096;

/// The schema of one node kind the fake Infrahub serves: its name (`BuiltinTag`) and its
/// attributes (all text-like: values are stored as given, as JSON).
///
/// ```
/// use pacer_testbed::KindSchema;
///
/// let device = KindSchema::new("InfraDevice")
///     .unique("name") // required, unique, and the kind's human friendly id
///     .attribute("description")
///     .required("role");
/// assert_eq!(device.kind(), "InfraDevice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSchema {
    kind: String,
    attributes: Vec<AttributeSchema>,
    relationships: Vec<RelationshipSchema>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RelationshipSchema {
    name: String,
    many: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AttributeSchema {
    name: String,
    unique: bool,
    optional: bool,
}

impl KindSchema {
    /// A kind named `kind` (`Namespace` + `Name` in CamelCase, e.g. `BuiltinTag`), with no
    /// attributes yet.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            attributes: Vec::new(),
            relationships: Vec::new(),
        }
    }

    /// Adds a relationship of cardinality one (`{name} { node { id hfid display_label } }`
    /// in queries, `{name}: {id | hfid}` in inputs). Peers may be nodes of any kind.
    pub fn relationship_one(mut self, name: impl Into<String>) -> Self {
        self.relationships.push(RelationshipSchema {
            name: name.into(),
            many: false,
        });
        self
    }

    /// Adds a relationship of cardinality many (`{name} { count edges { node { ... } } }` in
    /// queries, `{name}: [{id | hfid}, ...]` in inputs).
    pub fn relationship_many(mut self, name: impl Into<String>) -> Self {
        self.relationships.push(RelationshipSchema {
            name: name.into(),
            many: true,
        });
        self
    }

    fn rel(&self, name: &str) -> Option<&RelationshipSchema> {
        self.relationships.iter().find(|r| r.name == name)
    }

    /// Adds an optional attribute.
    pub fn attribute(mut self, name: impl Into<String>) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.into(),
            unique: false,
            optional: true,
        });
        self
    }

    /// Adds a required attribute.
    pub fn required(mut self, name: impl Into<String>) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.into(),
            unique: false,
            optional: false,
        });
        self
    }

    /// Adds a required, unique attribute; the first one is the kind's human friendly id
    /// (`hfid`) and what `Upsert` matches on when no id is given.
    pub fn unique(mut self, name: impl Into<String>) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.into(),
            unique: true,
            optional: false,
        });
        self
    }

    /// The kind's name.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The kind's namespace and name: `BuiltinTag` is (`Builtin`, `Tag`).
    fn split(&self) -> (&str, &str) {
        let at = self
            .kind
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_ascii_uppercase())
            .map_or(self.kind.len(), |(i, _)| i);
        self.kind.split_at(at)
    }

    fn attr(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn hfid_attr(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.unique)
            .map(|a| a.name.as_str())
    }

    /// The kinds a stock Infrahub has that the testbed serves by default: `BuiltinTag`,
    /// `CoreRepository` and `CoreStandardGroup`.
    pub fn defaults() -> Vec<KindSchema> {
        vec![
            KindSchema::new("BuiltinTag")
                .unique("name")
                .attribute("description"),
            KindSchema::new("CoreRepository")
                .unique("name")
                .required("location")
                .attribute("description")
                .attribute("default_branch")
                .attribute("commit"),
            KindSchema::new("CoreStandardGroup")
                .unique("name")
                .attribute("label")
                .attribute("description"),
        ]
    }
}

#[derive(Debug)]
pub(crate) struct Infrahub {
    state: Mutex<IhState>,
    journal: Mutex<Journal>,
    credentials: Credentials,
    token_lifetime: Duration,
    refresh_lifetime: Duration,
}

#[derive(Debug, Default)]
struct IhState {
    kinds: BTreeMap<String, KindSchema>,
    branches: BTreeMap<String, Branch>,
    /// (branch, pool id) -> allocations (identifier, address node id, address)
    allocations: HashMap<(String, String), Vec<Allocation>>,
    access: HashMap<String, Instant>,
    refresh: HashMap<String, Instant>,
}

#[derive(Debug, Clone)]
struct Branch {
    meta: Map<String, Value>,
    /// kind -> nodes in creation order
    nodes: BTreeMap<String, Vec<Node>>,
}

#[derive(Debug, Clone)]
struct Node {
    id: String,
    attrs: Map<String, Value>,
    /// relationship -> peer ids
    rels: BTreeMap<String, Vec<String>>,
}

fn branch_meta(
    name: &str,
    description: &str,
    default: bool,
    sync_with_git: bool,
) -> Map<String, Value> {
    match json!({
        "id": new_id(),
        "name": name,
        "description": description,
        "origin_branch": "main",
        "branched_from": format!("{}", unix_now()),
        "status": "OPEN",
        "graph_version": 1,
        "created_at": format!("{}", unix_now()),
        "sync_with_git": sync_with_git,
        "is_default": default,
        "has_schema_changes": false,
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Infrahub {
    pub(crate) fn new(
        kinds: Vec<KindSchema>,
        credentials: Credentials,
        token_lifetime: Duration,
        refresh_lifetime: Duration,
    ) -> Self {
        let mut state = IhState {
            kinds: kinds.into_iter().map(|k| (k.kind.clone(), k)).collect(),
            ..IhState::default()
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
            journal: Mutex::new(Journal::default()),
            credentials,
            token_lifetime,
            refresh_lifetime,
        }
    }

    fn lock(&self) -> MutexGuard<'_, IhState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` for a live access token or the API key, else Infrahub's 401.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        if let Some(key) = headers.get(API_KEY_HEADER) {
            return if key.as_bytes() == self.credentials.infrahub_api_key.as_bytes() {
                Ok(())
            } else {
                Err(unauthorized("Invalid token"))
            };
        }
        let Some(token) = bearer(headers) else {
            return Err(unauthorized(
                "Authentication is required to perform this operation",
            ));
        };
        match self.lock().access.get(token) {
            Some(expires) if Instant::now() < *expires => Ok(()),
            // The message the Python SDK looks for before it refreshes its token.
            Some(_) => Err(unauthorized("Expired Signature")),
            None => Err(unauthorized("Invalid token")),
        }
    }

    fn issue_access(&self, state: &mut IhState, subject: &str) -> String {
        let now = Instant::now();
        if state.access.len() >= PRUNE_AT {
            state.access.retain(|_, e| *e > now);
        }
        let token = jwt("access", subject, "infrahub", self.token_lifetime.as_secs());
        state
            .access
            .insert(token.clone(), deadline(self.token_lifetime));
        token
    }
}

fn unauthorized(message: &str) -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        &json!({"data": null, "errors": [{"message": message, "extensions": {"code": 401}}]}),
    )
}

pub(crate) fn router(ih: Arc<Infrahub>) -> Router {
    Router::new()
        .route("/graphql", post(graphql_main))
        .route("/graphql/{branch}", post(graphql_branch))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/schema", get(schema))
        .route("/api/schema/load", post(schema_load))
        .route("/api/schema/check", post(schema_check))
        .route("/api/branch", get(branches))
        .route_layer(axum::middleware::from_fn_with_state(ih.clone(), journal))
        .with_state(ih)
}

async fn login(State(ih): State<Arc<Infrahub>>, body: Bytes) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let username = parsed.get("username").and_then(Value::as_str);
    let password = parsed.get("password").and_then(Value::as_str);
    if username != Some(ih.credentials.infrahub_user.as_str())
        || password != Some(ih.credentials.infrahub_password.as_str())
    {
        return unauthorized("Incorrect username or password");
    }
    let mut state = ih.lock();
    let subject = ih.credentials.infrahub_user.clone();
    let access = ih.issue_access(&mut state, &subject);
    let now = Instant::now();
    if state.refresh.len() >= PRUNE_AT {
        state.refresh.retain(|_, e| *e > now);
    }
    let refresh = jwt(
        "refresh",
        &subject,
        "infrahub",
        ih.refresh_lifetime.as_secs(),
    );
    state
        .refresh
        .insert(refresh.clone(), deadline(ih.refresh_lifetime));
    json(
        StatusCode::OK,
        &json!({"access_token": access, "refresh_token": refresh}),
    )
}

async fn refresh(State(ih): State<Arc<Infrahub>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized("Authentication is required to perform this operation");
    };
    let mut state = ih.lock();
    match state.refresh.get(token) {
        Some(expires) if Instant::now() < *expires => {
            let subject = ih.credentials.infrahub_user.clone();
            let access = ih.issue_access(&mut state, &subject);
            json(StatusCode::OK, &json!({"access_token": access}))
        }
        Some(_) => unauthorized("Expired Signature"),
        None => unauthorized("Invalid token"),
    }
}

async fn schema(State(ih): State<Arc<Infrahub>>, headers: HeaderMap) -> Result<Response, Response> {
    ih.authorize(&headers)?;
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
    Ok(json(
        StatusCode::OK,
        &json!({"main": schema_hash(&state.kinds), "nodes": nodes, "generics": [], "profiles": [], "templates": []}),
    ))
}

/// A stable hash of the kinds served (the schema's `hash`).
fn schema_hash(kinds: &BTreeMap<String, KindSchema>) -> String {
    // FNV-1a over the kinds' debug text: deterministic across runs, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{kinds:?}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The kinds a `POST /api/schema/load|check` body defines: `{"schemas": [{"nodes": [{"name",
/// "namespace", "attributes": [{"name", "unique", "optional"}], "relationships": [{"name",
/// "cardinality"}]}]}]}`.
fn kinds_from_schemas(body: &[u8]) -> Result<Vec<KindSchema>, Response> {
    let invalid = |message: &str| {
        json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"errors": [{"message": message, "extensions": {"code": 422}}]}),
        )
    };
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| invalid("Unable to parse the schemas as JSON"))?;
    let schemas = parsed
        .get("schemas")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("schemas: field required"))?;
    let mut kinds = Vec::new();
    for schema in schemas {
        for node in schema
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(namespace), Some(name)) = (
                node.get("namespace").and_then(Value::as_str),
                node.get("name").and_then(Value::as_str),
            ) else {
                return Err(invalid("nodes: namespace and name are required"));
            };
            let kind_name = format!("{namespace}{name}");
            let valid = |s: &str| {
                s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric())
            };
            if !valid(namespace) || !valid(name) {
                return Err(invalid(&format!("{kind_name}: invalid namespace or name")));
            }
            let mut kind = KindSchema::new(kind_name);
            for attribute in node
                .get("attributes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(attr) = attribute.get("name").and_then(Value::as_str) else {
                    return Err(invalid("attributes: name is required"));
                };
                let flag = |key| attribute.get(key).and_then(Value::as_bool);
                kind = if flag("unique") == Some(true) {
                    kind.unique(attr)
                } else if flag("optional") == Some(false) {
                    kind.required(attr)
                } else {
                    kind.attribute(attr)
                };
            }
            for relationship in node
                .get("relationships")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(rel) = relationship.get("name").and_then(Value::as_str) else {
                    return Err(invalid("relationships: name is required"));
                };
                kind = if relationship.get("cardinality").and_then(Value::as_str) == Some("one") {
                    kind.relationship_one(rel)
                } else {
                    kind.relationship_many(rel)
                };
            }
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// `POST /api/schema/load`: adds (or replaces) the kinds the schemas define, on every branch.
async fn schema_load(
    State(ih): State<Arc<Infrahub>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ih.authorize(&headers)?;
    let kinds = kinds_from_schemas(&body)?;
    let mut state = ih.lock();
    let previous = schema_hash(&state.kinds);
    for kind in kinds {
        state.kinds.insert(kind.kind.clone(), kind);
    }
    let hash = schema_hash(&state.kinds);
    Ok(json(
        StatusCode::OK,
        &json!({"hash": hash, "previous_hash": previous, "schema_updated": hash != previous, "warnings": []}),
    ))
}

/// `POST /api/schema/check`: the diff loading the schemas would make, without loading them.
async fn schema_check(
    State(ih): State<Arc<Infrahub>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ih.authorize(&headers)?;
    let kinds = kinds_from_schemas(&body)?;
    let state = ih.lock();
    let mut added = Map::new();
    let mut changed = Map::new();
    for kind in kinds {
        match state.kinds.get(&kind.kind) {
            None => {
                added.insert(kind.kind.clone(), json!({}));
            }
            Some(existing) if *existing != kind => {
                changed.insert(kind.kind.clone(), json!({}));
            }
            Some(_) => {}
        }
    }
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({"diff": {"added": added, "changed": changed, "removed": {}}}),
    ))
}

/// One request the fake Infrahub received (after faults and the server-side limit), as
/// recorded for [`crate::Testbed::infrahub_requests`]. Credentials are not recorded (only
/// which kind was sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfrahubRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `api-key`, `bearer` or `none`.
    pub auth: &'static str,
    /// The `X-Priority` header, if any.
    pub priority: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// The request journal, bounded: past [`JOURNAL_CAP`] entries the oldest are dropped.
#[derive(Debug, Default)]
struct Journal {
    entries: std::collections::VecDeque<InfrahubRequest>,
}

/// How many requests the journal keeps.
pub const JOURNAL_CAP: usize = 10_000;

impl Infrahub {
    fn record(&self, request: InfrahubRequest) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if journal.entries.len() >= JOURNAL_CAP {
            journal.entries.pop_front();
        }
        journal.entries.push_back(request);
    }

    /// The recorded requests, oldest first.
    pub(crate) fn requests(&self) -> Vec<InfrahubRequest> {
        let journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        journal.entries.iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub(crate) fn clear_requests(&self) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        journal.entries.clear();
    }
}

/// Records every request to the Infrahub routes in the journal.
async fn journal(
    State(ih): State<Arc<Infrahub>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    // The bodies clients send are small; 16 MiB bounds a hostile one.
    let bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"errors": [{"message": "request body too large"}]}),
            );
        }
    };
    let auth = if parts.headers.contains_key(API_KEY_HEADER) {
        "api-key"
    } else if bearer(&parts.headers).is_some() {
        "bearer"
    } else {
        "none"
    };
    let body_text = String::from_utf8_lossy(&bytes);
    // Login bodies carry a password: record that a login was sent, not its content.
    let body_text = if parts.uri.path() == "/api/auth/login" {
        "(credentials)".to_owned()
    } else {
        body_text.into_owned()
    };
    ih.record(InfrahubRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        auth,
        priority: parts
            .headers
            .get("x-priority")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body_text,
    });
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

async fn branches(
    State(ih): State<Arc<Infrahub>>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    ih.authorize(&headers)?;
    let state = ih.lock();
    let list: Vec<Value> = state
        .branches
        .values()
        .map(|b| Value::Object(b.meta.clone()))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(list)))
}

async fn graphql_main(
    State(ih): State<Arc<Infrahub>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ih.authorize(&headers)?;
    Ok(execute_request(&ih, "main", &body))
}

async fn graphql_branch(
    State(ih): State<Arc<Infrahub>>,
    Path(branch): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    ih.authorize(&headers)?;
    Ok(execute_request(&ih, &branch, &body))
}

fn errors_only(message: String) -> Response {
    json(
        StatusCode::OK,
        &json!({"data": null, "errors": [{"message": message}]}),
    )
}

fn execute_request(ih: &Infrahub, branch: &str, body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                &json!({"data": null, "errors": [{"message": "Unable to parse request body as JSON"}]}),
            );
        }
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return json(
            StatusCode::BAD_REQUEST,
            &json!({"data": null, "errors": [{"message": "The query must be a string."}]}),
        );
    };
    let variables = match request.get("variables") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let operation_name = request.get("operationName").and_then(Value::as_str);
    let operation = match graphql::operation(query, operation_name, &variables) {
        Ok(operation) => operation,
        Err(message) => return errors_only(message),
    };
    let fields = operation.fields;
    let mut state = ih.lock();
    if !state.branches.contains_key(branch) {
        return errors_only(format!("Branch: {branch} not found."));
    }
    let exec = Exec {
        kinds: state.kinds.clone(),
    };
    let root = match operation.kind {
        OperationKind::Query => "Query",
        OperationKind::Mutation => "Mutation",
        OperationKind::Subscription => {
            return errors_only("Subscriptions are not supported by the testbed.".into());
        }
    };
    // Validate everything first, so a bad document changes nothing (as GraphQL servers do).
    for field in &fields {
        if let Err(message) = exec.validate_root(root, field) {
            return errors_only(message);
        }
    }
    let mut data = Map::new();
    let mut errors = Vec::new();
    for field in &fields {
        let result = if root == "Query" {
            exec.query(&state, branch, field)
        } else {
            exec.mutate(&mut state, branch, field)
        };
        match result {
            Ok(value) => {
                data.insert(field.key().to_owned(), value);
            }
            Err(message) => {
                data.insert(field.key().to_owned(), Value::Null);
                errors.push(json!({"message": message, "path": [field.key()]}));
            }
        }
    }
    // GraphQL responses list fields in selection order (serde_json's map is sorted).
    let mut body = String::from("{\"data\":");
    write_ordered(&mut body, &Value::Object(data), &fields, 0);
    if !errors.is_empty() {
        body.push_str(",\"errors\":");
        body.push_str(&Value::Array(errors).to_string());
    }
    body.push('}');
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Writes `value` as JSON with each object's keys in the order `fields` selects them.
fn write_ordered(out: &mut String, value: &Value, fields: &[Field], depth: usize) {
    match value {
        Value::Object(map) if !fields.is_empty() && depth < 64 => {
            out.push('{');
            let mut written: Vec<&str> = Vec::with_capacity(fields.len());
            for field in fields {
                let key = field.key();
                let Some(item) = map.get(key) else { continue };
                if written.contains(&key) {
                    continue;
                }
                if !written.is_empty() {
                    out.push(',');
                }
                written.push(key);
                out.push_str(&Value::String(key.to_owned()).to_string());
                out.push(':');
                write_ordered(out, item, &field.selection, depth + 1);
            }
            // Anything the selection does not name (none today) still goes out.
            for (key, item) in map {
                if !written.contains(&key.as_str()) {
                    if !written.is_empty() {
                        out.push(',');
                    }
                    written.push(key);
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    out.push_str(&item.to_string());
                }
            }
            out.push('}');
        }
        Value::Array(items) if depth < 64 => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ordered(out, item, fields, depth + 1);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

struct Exec {
    /// The kinds served when the request arrived.
    kinds: BTreeMap<String, KindSchema>,
}

const MUTATION_SUFFIXES: [&str; 4] = ["Create", "Update", "Upsert", "Delete"];
const ATTRIBUTE_FIELDS: [&str; 8] = [
    "value",
    "is_default",
    "is_protected",
    "is_visible",
    "id",
    "updated_at",
    "is_from_profile",
    "__typename",
];
const BRANCH_FIELDS: [&str; 12] = [
    "id",
    "name",
    "description",
    "origin_branch",
    "branched_from",
    "status",
    "graph_version",
    "created_at",
    "sync_with_git",
    "is_default",
    "has_schema_changes",
    "__typename",
];

fn cannot_query(field: &str, on: &str) -> String {
    format!("Cannot query field '{field}' on type '{on}'.")
}

fn unknown_argument(argument: &str, on: &str) -> String {
    format!("Unknown argument '{argument}' on field '{on}'.")
}

fn needs_subfields(field: &Field, on: &str) -> Result<(), String> {
    if field.selection.is_empty() {
        Err(format!(
            "Field '{}' of type '{on}' must have a selection of subfields. Did you mean '{} {{ ... }}'?",
            field.name, field.name
        ))
    } else {
        Ok(())
    }
}

fn no_subfields(field: &Field, on: &str) -> Result<(), String> {
    if field.selection.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Field '{}' must not have a selection since type '{on}' has no subfields.",
            field.name
        ))
    }
}

impl Exec {
    fn arg(&self, field: &Field, name: &str) -> Option<Value> {
        field.argument(name).cloned()
    }

    fn kind(&self, name: &str) -> Option<&KindSchema> {
        self.kinds.get(name)
    }

    fn split_mutation<'n>(&self, name: &'n str) -> Option<(&KindSchema, &'n str)> {
        MUTATION_SUFFIXES.iter().find_map(|suffix| {
            let kind = name.strip_suffix(suffix)?;
            Some((self.kind(kind)?, *suffix))
        })
    }

    // ---- validation

    fn validate_root(&self, root: &str, field: &Field) -> Result<(), String> {
        if field.name == "__typename" {
            return no_subfields(field, "String");
        }
        if root == "Query" {
            if field.name == "Branch" {
                for (arg, _) in &field.arguments {
                    if arg != "ids" && arg != "name" {
                        return Err(unknown_argument(arg, "Query.Branch"));
                    }
                }
                return self.validate_flat(field, "Branch", &BRANCH_FIELDS);
            }
            if field.name == "InfrahubInfo" {
                return self.validate_flat(field, "Info", &["version", "__typename"]);
            }
            let Some(kind) = self.kind(&field.name) else {
                return Err(cannot_query(&field.name, "Query"));
            };
            for (arg, _) in &field.arguments {
                let ok = match arg.as_str() {
                    "offset" | "limit" | "ids" | "hfid" | "order" | "partial_match"
                    | "any__value" => true,
                    other => other
                        .strip_suffix("__value")
                        .or_else(|| other.strip_suffix("__values"))
                        .is_some_and(|attr| kind.attr(attr).is_some()),
                };
                if !ok {
                    return Err(unknown_argument(arg, &format!("Query.{}", kind.kind)));
                }
            }
            return self.validate_paginated(kind, field);
        }
        if field.name == "InfrahubIPAddressPoolGetResource" {
            needs_subfields(field, "IPAddressPoolGetResource")?;
            for sub in &field.selection {
                match sub.name.as_str() {
                    "ok" | "__typename" => no_subfields(sub, "Boolean")?,
                    "node" => self.validate_flat(
                        sub,
                        "PoolAllocatedNode",
                        &[
                            "id",
                            "kind",
                            "display_label",
                            "identifier",
                            "branch",
                            "__typename",
                        ],
                    )?,
                    other => return Err(cannot_query(other, "IPAddressPoolGetResource")),
                }
            }
            return Ok(());
        }
        if matches!(
            field.name.as_str(),
            "BranchCreate" | "BranchDelete" | "BranchMerge" | "BranchRebase"
        ) {
            let payload = field.name.clone();
            needs_subfields(field, &payload)?;
            for sub in &field.selection {
                match sub.name.as_str() {
                    "ok" | "__typename" => no_subfields(sub, "Boolean")?,
                    "object" if field.name != "BranchDelete" => {
                        self.validate_flat(sub, "Branch", &BRANCH_FIELDS)?
                    }
                    other => return Err(cannot_query(other, &payload)),
                }
            }
            return Ok(());
        }
        let Some((kind, suffix)) = self.split_mutation(&field.name) else {
            return Err(cannot_query(&field.name, "Mutation"));
        };
        for (arg, _) in &field.arguments {
            if !matches!(arg.as_str(), "data" | "context") {
                return Err(unknown_argument(arg, &format!("Mutation.{}", field.name)));
            }
        }
        let data = match self.arg(field, "data") {
            Some(Value::Object(data)) => data,
            _ => {
                return Err(format!(
                    "Field '{}' argument 'data' of type '{}{suffix}Input!' is required, but it was not provided.",
                    field.name, kind.kind
                ));
            }
        };
        let input_type = if suffix == "Delete" {
            "DeleteInput".to_owned()
        } else {
            format!("{}{suffix}Input", kind.kind)
        };
        for key in data.keys() {
            let ok = match key.as_str() {
                "id" => true,
                "hfid" => suffix != "Create",
                other => {
                    suffix != "Delete" && (kind.attr(other).is_some() || kind.rel(other).is_some())
                }
            };
            if !ok {
                return Err(format!(
                    "Field '{key}' is not defined by type '{input_type}'."
                ));
            }
        }
        needs_subfields(field, &field.name)?;
        for sub in &field.selection {
            match sub.name.as_str() {
                "ok" | "__typename" => no_subfields(sub, "Boolean")?,
                "object" if suffix != "Delete" => {
                    needs_subfields(sub, &kind.kind)?;
                    self.validate_node(kind, sub)?;
                }
                other => return Err(cannot_query(other, &field.name)),
            }
        }
        Ok(())
    }

    fn validate_flat(&self, field: &Field, on: &str, allowed: &[&str]) -> Result<(), String> {
        needs_subfields(field, on)?;
        for sub in &field.selection {
            if !allowed.contains(&sub.name.as_str()) {
                return Err(cannot_query(&sub.name, on));
            }
            no_subfields(sub, "String")?;
        }
        Ok(())
    }

    fn validate_paginated(&self, kind: &KindSchema, field: &Field) -> Result<(), String> {
        let on = format!("Paginated{}", kind.kind);
        needs_subfields(field, &on)?;
        for sub in &field.selection {
            match sub.name.as_str() {
                "count" | "__typename" => no_subfields(sub, "Int")?,
                "edges" => {
                    let edged = format!("Edged{}", kind.kind);
                    needs_subfields(sub, &edged)?;
                    for edge in &sub.selection {
                        match edge.name.as_str() {
                            "node" => {
                                needs_subfields(edge, &kind.kind)?;
                                self.validate_node(kind, edge)?;
                            }
                            "__typename" => no_subfields(edge, "String")?,
                            other => return Err(cannot_query(other, &edged)),
                        }
                    }
                }
                other => return Err(cannot_query(other, &on)),
            }
        }
        Ok(())
    }

    fn validate_node(&self, kind: &KindSchema, field: &Field) -> Result<(), String> {
        for sub in &field.selection {
            match sub.name.as_str() {
                "id" | "hfid" | "display_label" | "__typename" => no_subfields(sub, "String")?,
                name if kind.attr(name).is_some() => {
                    needs_subfields(sub, "TextAttribute")?;
                    for attr_field in &sub.selection {
                        if !ATTRIBUTE_FIELDS.contains(&attr_field.name.as_str()) {
                            return Err(cannot_query(&attr_field.name, "TextAttribute"));
                        }
                        no_subfields(attr_field, "String")?;
                    }
                }
                name if kind.rel(name).is_some() => {
                    let many = kind.rel(name).is_some_and(|r| r.many);
                    let on = if many {
                        "NestedPaginatedCoreNode"
                    } else {
                        "NestedEdgedCoreNode"
                    };
                    needs_subfields(sub, on)?;
                    for rel_field in &sub.selection {
                        match rel_field.name.as_str() {
                            "count" if many => no_subfields(rel_field, "Int")?,
                            "__typename" => no_subfields(rel_field, "String")?,
                            "edges" if many => {
                                needs_subfields(rel_field, "NestedEdgedCoreNode")?;
                                for edge in &rel_field.selection {
                                    match edge.name.as_str() {
                                        "node" => self.validate_peer(edge)?,
                                        "__typename" => no_subfields(edge, "String")?,
                                        other => {
                                            return Err(cannot_query(other, "NestedEdgedCoreNode"));
                                        }
                                    }
                                }
                            }
                            "node" if !many => self.validate_peer(rel_field)?,
                            other => return Err(cannot_query(other, on)),
                        }
                    }
                }
                other => return Err(cannot_query(other, &kind.kind)),
            }
        }
        Ok(())
    }

    fn validate_peer(&self, field: &Field) -> Result<(), String> {
        self.validate_flat(
            field,
            "CoreNode",
            &["id", "hfid", "display_label", "__typename"],
        )
    }

    // ---- resolution (after validation)

    fn project_flat(&self, field: &Field, source: &Map<String, Value>, typename: &str) -> Value {
        let mut out = Map::new();
        for sub in &field.selection {
            let value = if sub.name == "__typename" {
                Value::String(typename.to_owned())
            } else {
                source.get(&sub.name).cloned().unwrap_or(Value::Null)
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }

    fn project_node(&self, kind: &KindSchema, field: &Field, node: &Node, all: &Nodes) -> Value {
        let mut out = Map::new();
        for sub in &field.selection {
            let name = sub.name.as_str();
            let value = if let Some(rel) = kind.rel(name) {
                self.project_rel(sub, node.rels.get(name), rel.many, all)
            } else if let Some(meta) = node_meta(kind, node, name) {
                meta
            } else {
                let value = node.attrs.get(name).cloned().unwrap_or(Value::Null);
                let mut wrapper = Map::new();
                for attr_field in &sub.selection {
                    let v = match attr_field.name.as_str() {
                        "value" => value.clone(),
                        "is_default" => Value::Bool(value.is_null()),
                        "is_protected" | "is_from_profile" => Value::Bool(false),
                        "is_visible" => Value::Bool(true),
                        "id" => Value::String(format!("{}-{name}", node.id)),
                        "__typename" => Value::String("TextAttribute".into()),
                        _ => Value::Null,
                    };
                    wrapper.insert(attr_field.key().to_owned(), v);
                }
                Value::Object(wrapper)
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }

    /// A relationship: `{node: peer | null}` or `{count, edges: [{node: peer}]}`; peers that
    /// no longer exist are left out.
    fn project_rel(
        &self,
        field: &Field,
        peers: Option<&Vec<String>>,
        many: bool,
        all: &Nodes,
    ) -> Value {
        let found: Vec<(&KindSchema, &Node)> = peers
            .into_iter()
            .flatten()
            .filter_map(|id| {
                all.iter().find_map(|(kind, nodes)| {
                    let node = nodes.iter().find(|n| &n.id == id)?;
                    Some((self.kinds.get(kind)?, node))
                })
            })
            .collect();
        let peer = |field: &Field, kind: &KindSchema, node: &Node| -> Value {
            let mut out = Map::new();
            for sub in &field.selection {
                let value = node_meta(kind, node, &sub.name).unwrap_or(Value::Null);
                out.insert(sub.key().to_owned(), value);
            }
            Value::Object(out)
        };
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "count" => json!(found.len()),
                "node" => found
                    .first()
                    .map_or(Value::Null, |(kind, node)| peer(sub, kind, node)),
                "edges" => Value::Array(
                    found
                        .iter()
                        .map(|(kind, node)| {
                            let mut edge = Map::new();
                            for edge_field in &sub.selection {
                                let v = if edge_field.name == "node" {
                                    peer(edge_field, kind, node)
                                } else {
                                    Value::String("NestedEdgedCoreNode".into())
                                };
                                edge.insert(edge_field.key().to_owned(), v);
                            }
                            Value::Object(edge)
                        })
                        .collect(),
                ),
                _ => Value::String(
                    if many {
                        "NestedPaginatedCoreNode"
                    } else {
                        "NestedEdgedCoreNode"
                    }
                    .into(),
                ),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }

    fn query(&self, state: &IhState, branch: &str, field: &Field) -> Result<Value, String> {
        match field.name.as_str() {
            "__typename" => return Ok(Value::String("Query".into())),
            "InfrahubInfo" => {
                let info = json!({"version": VERSION});
                let info = match info {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                return Ok(self.project_flat(field, &info, "Info"));
            }
            "Branch" => {
                let ids = self.arg(field, "ids");
                let name = self.arg(field, "name");
                let list = state
                    .branches
                    .values()
                    .filter(|b| match &ids {
                        Some(Value::Array(ids)) => {
                            ids.iter().any(|id| b.meta.get("id") == Some(id))
                        }
                        _ => true,
                    })
                    .filter(|b| match &name {
                        Some(Value::String(n)) => {
                            b.meta.get("name") == Some(&Value::String(n.clone()))
                        }
                        _ => true,
                    })
                    .map(|b| self.project_flat(field, &b.meta, "Branch"))
                    .collect();
                return Ok(Value::Array(list));
            }
            _ => {}
        }
        let kind = self
            .kind(&field.name)
            .ok_or_else(|| cannot_query(&field.name, "Query"))?;
        let empty = Vec::new();
        let no_nodes = Nodes::new();
        let all = state.branches.get(branch).map_or(&no_nodes, |b| &b.nodes);
        let nodes = state
            .branches
            .get(branch)
            .and_then(|b| b.nodes.get(&kind.kind))
            .unwrap_or(&empty);
        let matching: Vec<&Node> = nodes
            .iter()
            .filter(|n| self.matches(kind, field, n))
            .collect();
        let offset = self
            .arg(field, "offset")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize;
        let limit = self
            .arg(field, "limit")
            .and_then(|v| v.as_u64())
            .map_or(usize::MAX, |l| l as usize);
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "count" => json!(matching.len()),
                "__typename" => Value::String(format!("Paginated{}", kind.kind)),
                _ => {
                    let edges = matching
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .map(|node| {
                            let mut edge = Map::new();
                            for edge_field in &sub.selection {
                                let v = if edge_field.name == "node" {
                                    self.project_node(kind, edge_field, node, all)
                                } else {
                                    Value::String(format!("Edged{}", kind.kind))
                                };
                                edge.insert(edge_field.key().to_owned(), v);
                            }
                            Value::Object(edge)
                        })
                        .collect();
                    Value::Array(edges)
                }
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    fn matches(&self, kind: &KindSchema, field: &Field, node: &Node) -> bool {
        let partial = self.arg(field, "partial_match") == Some(Value::Bool(true));
        let equal = |stored: Option<&Value>, wanted: &Value| -> bool {
            let stored = stored.unwrap_or(&Value::Null);
            if partial {
                if let (Some(s), Some(w)) = (stored.as_str(), wanted.as_str()) {
                    return s.to_lowercase().contains(&w.to_lowercase());
                }
            }
            stored == wanted || (!stored.is_null() && value_text(stored) == value_text(wanted))
        };
        for (name, input) in &field.arguments {
            let wanted = input;
            let ok = match name.as_str() {
                "offset" | "limit" | "order" | "partial_match" => true,
                "ids" => match &wanted {
                    Value::Array(ids) => ids.iter().any(|id| id.as_str() == Some(node.id.as_str())),
                    Value::Null => true,
                    one => one.as_str() == Some(node.id.as_str()),
                },
                "hfid" => match (&wanted, kind.hfid_attr()) {
                    (Value::Array(parts), Some(attr)) => parts
                        .first()
                        .is_some_and(|p| equal(node.attrs.get(attr), p)),
                    (Value::Null, _) => true,
                    _ => false,
                },
                "any__value" => {
                    wanted.is_null() || node.attrs.values().any(|v| equal(Some(v), wanted))
                }
                other => {
                    if let Some(attr) = other.strip_suffix("__values") {
                        match &wanted {
                            Value::Array(options) => {
                                options.iter().any(|o| equal(node.attrs.get(attr), o))
                            }
                            _ => true,
                        }
                    } else if let Some(attr) = other.strip_suffix("__value") {
                        wanted.is_null() || equal(node.attrs.get(attr), wanted)
                    } else {
                        true
                    }
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn mutate(&self, state: &mut IhState, branch: &str, field: &Field) -> Result<Value, String> {
        match field.name.as_str() {
            "__typename" => return Ok(Value::String("Mutation".into())),
            "BranchCreate" => return self.branch_create(state, field),
            "BranchDelete" => return self.branch_delete(state, field),
            "BranchMerge" | "BranchRebase" => return self.branch_merge_or_rebase(state, field),
            "InfrahubIPAddressPoolGetResource" => {
                return self.allocate_address(state, branch, field);
            }
            _ => {}
        }
        let (kind, suffix) = self
            .split_mutation(&field.name)
            .ok_or_else(|| cannot_query(&field.name, "Mutation"))?;
        let data = match self.arg(field, "data") {
            Some(Value::Object(data)) => data,
            _ => return Err("data is required".into()),
        };
        let Some(b) = state.branches.get_mut(branch) else {
            return Err(format!("Branch: {branch} not found."));
        };
        let rels = resolve_rels(kind, &data, &b.nodes)?;
        let nodes = b.nodes.entry(kind.kind.clone()).or_default();
        let node = match suffix {
            "Create" => create(kind, nodes, &data, &rels)?,
            "Update" => {
                let index = find(kind, nodes, &data)?;
                update(kind, nodes, index, &data, &rels)?
            }
            "Upsert" => match find(kind, nodes, &data) {
                Ok(index) => update(kind, nodes, index, &data, &rels)?,
                Err(_) => {
                    let mut data = data.clone();
                    // An upsert by hfid creates the node with that hfid.
                    if let (Some(Value::Array(parts)), Some(attr)) =
                        (data.remove("hfid"), kind.hfid_attr())
                    {
                        if let Some(first) = parts.first() {
                            data.entry(attr.to_owned())
                                .or_insert_with(|| json!({"value": first}));
                        }
                    }
                    create(kind, nodes, &data, &rels)?
                }
            },
            _ => {
                let index = find(kind, nodes, &data)?;
                nodes.remove(index);
                return Ok(self.payload(kind, field, None, &Nodes::new()));
            }
        };
        let no_nodes = Nodes::new();
        let all = state.branches.get(branch).map_or(&no_nodes, |b| &b.nodes);
        Ok(self.payload(kind, field, Some(&node), all))
    }

    fn payload(&self, kind: &KindSchema, field: &Field, node: Option<&Node>, all: &Nodes) -> Value {
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match (sub.name.as_str(), node) {
                ("ok", _) => Value::Bool(true),
                ("__typename", _) => Value::String(field.name.clone()),
                ("object", Some(node)) => self.project_node(kind, sub, node, all),
                _ => Value::Null,
            };
            out.insert(sub.key().to_owned(), value);
        }
        Value::Object(out)
    }

    fn branch_create(&self, state: &mut IhState, field: &Field) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let Some(name) = data.get("name").and_then(Value::as_str) else {
            return Err("Field 'name' of required type 'String!' was not provided.".into());
        };
        let valid = !name.is_empty()
            && name.len() <= 250
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if !valid {
            return Err(format!("Branch name '{name}' is not valid."));
        }
        if state.branches.contains_key(name) {
            return Err(format!("The branch {name} already exists"));
        }
        let description = data
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let sync = data
            .get("sync_with_git")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let nodes = state
            .branches
            .get("main")
            .map(|b| b.nodes.clone())
            .unwrap_or_default();
        let meta = branch_meta(name, description, false, sync);
        let payload = {
            let mut out = Map::new();
            for sub in &field.selection {
                let value = match sub.name.as_str() {
                    "ok" => Value::Bool(true),
                    "object" => self.project_flat(sub, &meta, "Branch"),
                    _ => Value::String("BranchCreate".into()),
                };
                out.insert(sub.key().to_owned(), value);
            }
            Value::Object(out)
        };
        state
            .branches
            .insert(name.to_owned(), Branch { meta, nodes });
        Ok(payload)
    }

    /// `BranchMerge` copies the branch's nodes into `main` (the branch's version wins);
    /// `BranchRebase` copies `main`'s nodes the branch lacks into it.
    fn branch_merge_or_rebase(&self, state: &mut IhState, field: &Field) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let name = data.get("name").and_then(Value::as_str).unwrap_or("");
        if name == "main" {
            return Err("Unable to merge or rebase the default branch".into());
        }
        let Some(branch) = state.branches.get(name).cloned() else {
            return Err(format!("Branch: {name} not found."));
        };
        let Some(main) = state.branches.get("main").cloned() else {
            return Err("Branch: main not found.".into());
        };
        let (from, to) = if field.name == "BranchMerge" {
            (&branch, "main")
        } else {
            (&main, name)
        };
        let merge = field.name == "BranchMerge";
        if let Some(target) = state.branches.get_mut(to) {
            for (kind, nodes) in &from.nodes {
                let existing = target.nodes.entry(kind.clone()).or_default();
                for node in nodes {
                    match existing.iter().position(|n| n.id == node.id) {
                        Some(i) if merge => existing[i] = node.clone(),
                        Some(_) => {}
                        None => existing.push(node.clone()),
                    }
                }
            }
            if !merge {
                target
                    .meta
                    .insert("branched_from".into(), json!(format!("{}", unix_now())));
            }
        }
        let meta = state
            .branches
            .get(name)
            .map(|b| b.meta.clone())
            .unwrap_or_default();
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "ok" => Value::Bool(true),
                "object" => self.project_flat(sub, &meta, "Branch"),
                _ => Value::String(field.name.clone()),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    /// `InfrahubIPAddressPoolGetResource`: the next free host address of the pool's
    /// `resources` (nodes with a `prefix` attribute such as `10.0.0.0/24`); the same
    /// `identifier` gets the same address again. The address is stored as a node of the
    /// pool's `default_address_type` (default `IpamIPAddress`) when that kind is served.
    fn allocate_address(
        &self,
        state: &mut IhState,
        branch: &str,
        field: &Field,
    ) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let Some(b) = state.branches.get(branch) else {
            return Err(format!("Branch: {branch} not found."));
        };
        let pools = b
            .nodes
            .get("CoreIPAddressPool")
            .map(Vec::as_slice)
            .unwrap_or_default();
        let pool = if let Some(id) = data.get("id").and_then(Value::as_str) {
            pools.iter().find(|p| p.id == id)
        } else if let Some(Value::Array(parts)) = data.get("hfid") {
            pools.iter().find(|p| {
                parts
                    .first()
                    .is_some_and(|w| p.attrs.get("name") == Some(w))
            })
        } else {
            None
        };
        let Some(pool) = pool.cloned() else {
            return Err("Unable to find the pool in the database.".into());
        };
        let identifier = data
            .get("identifier")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let key = (branch.to_owned(), pool.id.clone());
        let taken = state.allocations.entry(key.clone()).or_default();
        let existing = identifier
            .as_ref()
            .and_then(|i| taken.iter().find(|a| a.identifier.as_ref() == Some(i)))
            .cloned();
        let allocation = match existing {
            Some(allocation) => allocation,
            None => {
                let prefixes: Vec<String> = pool
                    .rels
                    .get("resources")
                    .into_iter()
                    .flatten()
                    .filter_map(|id| {
                        b.nodes
                            .values()
                            .flatten()
                            .find(|n| &n.id == id)
                            .and_then(|n| n.attrs.get("prefix"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .collect();
                let prefix_length = data.get("prefix_length").and_then(Value::as_u64);
                let used: Vec<&str> = taken.iter().map(|a| a.address.as_str()).collect();
                let address = prefixes
                    .iter()
                    .find_map(|p| next_free_address(p, prefix_length, &used))
                    .ok_or_else(|| {
                        format!("No more resources available in the pool {}", pool.id)
                    })?;
                let address_kind = pool
                    .attrs
                    .get("default_address_type")
                    .and_then(Value::as_str)
                    .unwrap_or("IpamIPAddress")
                    .to_owned();
                let allocation = Allocation {
                    identifier: identifier.clone(),
                    id: new_id(),
                    kind: address_kind,
                    address,
                };
                taken.push(allocation.clone());
                if self.kinds.contains_key(&allocation.kind) {
                    let mut attrs = Map::new();
                    attrs.insert("address".into(), json!(allocation.address));
                    if let Some(b) = state.branches.get_mut(branch) {
                        b.nodes
                            .entry(allocation.kind.clone())
                            .or_default()
                            .push(Node {
                                id: allocation.id.clone(),
                                attrs,
                                rels: BTreeMap::new(),
                            });
                    }
                }
                allocation
            }
        };
        let node = match json!({
            "id": allocation.id,
            "kind": allocation.kind,
            "display_label": allocation.address,
            "identifier": allocation.identifier,
            "branch": branch,
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "ok" => Value::Bool(true),
                "node" => self.project_flat(sub, &node, "PoolAllocatedNode"),
                _ => Value::String("IPAddressPoolGetResource".into()),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    fn branch_delete(&self, state: &mut IhState, field: &Field) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let name = data.get("name").and_then(Value::as_str).unwrap_or("");
        if name == "main" {
            return Err("Unable to delete the default branch".into());
        }
        if state.branches.remove(name).is_none() {
            return Err(format!("Branch: {name} not found."));
        }
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "ok" => Value::Bool(true),
                _ => Value::String("BranchDelete".into()),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }
}

/// The text of a stored value, for hfids, display labels and loose comparisons.
/// The fields every node answers whatever its kind (`id`, `__typename`, `hfid`,
/// `display_label`); `None` for any other name.
fn node_meta(kind: &KindSchema, node: &Node, name: &str) -> Option<Value> {
    let label = || kind.hfid_attr().and_then(|a| node.attrs.get(a));
    Some(match name {
        "id" => Value::String(node.id.clone()),
        "__typename" => Value::String(kind.kind.clone()),
        "hfid" => label().map_or(Value::Null, |v| json!([value_text(v)])),
        "display_label" => Value::String(label().map_or_else(|| node.id.clone(), value_text)),
        _ => return None,
    })
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value an attribute input carries: `{value: x, ...}` gives `x`.
fn attribute_value(input: &Value) -> Value {
    match input {
        Value::Object(map) => map.get("value").cloned().unwrap_or(Value::Null),
        // Some clients send the bare value; accept it.
        other => other.clone(),
    }
}

fn unique_clash(
    kind: &KindSchema,
    nodes: &[Node],
    attrs: &Map<String, Value>,
    skip: Option<usize>,
) -> Result<(), String> {
    for attr in kind.attributes.iter().filter(|a| a.unique) {
        let Some(value) = attrs.get(&attr.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let clash = nodes
            .iter()
            .enumerate()
            .any(|(i, n)| Some(i) != skip && n.attrs.get(&attr.name) == Some(value));
        if clash {
            return Err(format!(
                "Violates uniqueness constraint '{}' with '{}'",
                attr.name,
                value_text(value)
            ));
        }
    }
    Ok(())
}

fn create(
    kind: &KindSchema,
    nodes: &mut Vec<Node>,
    data: &Map<String, Value>,
    rels: &BTreeMap<String, Vec<String>>,
) -> Result<Node, String> {
    let mut attrs = Map::new();
    for (key, input) in data {
        if key != "id" && key != "hfid" && kind.rel(key).is_none() {
            attrs.insert(key.clone(), attribute_value(input));
        }
    }
    for attr in kind.attributes.iter().filter(|a| !a.optional) {
        if attrs.get(&attr.name).is_none_or(Value::is_null) {
            return Err(format!("{} is mandatory for {}", attr.name, kind.kind));
        }
    }
    let id = match data.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => {
            if nodes.iter().any(|n| n.id == id) {
                return Err(format!("A node with id '{id}' already exists"));
            }
            id.to_owned()
        }
        _ => new_id(),
    };
    unique_clash(kind, nodes, &attrs, None)?;
    let node = Node {
        id,
        attrs,
        rels: rels.clone(),
    };
    nodes.push(node.clone());
    Ok(node)
}

fn find(kind: &KindSchema, nodes: &[Node], data: &Map<String, Value>) -> Result<usize, String> {
    if let Some(id) = data.get("id").and_then(Value::as_str) {
        return nodes.iter().position(|n| n.id == id).ok_or_else(|| {
            format!(
                "Unable to find the node {id} / {} in the database.",
                kind.kind
            )
        });
    }
    if let (Some(Value::Array(parts)), Some(attr)) = (data.get("hfid"), kind.hfid_attr()) {
        let wanted = parts.first().cloned().unwrap_or(Value::Null);
        return nodes
            .iter()
            .position(|n| n.attrs.get(attr) == Some(&wanted))
            .ok_or_else(|| {
                format!(
                    "Unable to find the node {} / {} in the database.",
                    value_text(&wanted),
                    kind.kind
                )
            });
    }
    // Upsert without id or hfid: match on the first unique attribute.
    if let Some(attr) = kind.hfid_attr() {
        if let Some(wanted) = data.get(attr).map(attribute_value).filter(|v| !v.is_null()) {
            return nodes
                .iter()
                .position(|n| n.attrs.get(attr) == Some(&wanted))
                .ok_or_else(|| {
                    format!(
                        "Unable to find the node {} / {} in the database.",
                        value_text(&wanted),
                        kind.kind
                    )
                });
        }
    }
    Err(format!(
        "Either id or hfid must be provided to find a {}",
        kind.kind
    ))
}

fn update(
    kind: &KindSchema,
    nodes: &mut [Node],
    index: usize,
    data: &Map<String, Value>,
    rels: &BTreeMap<String, Vec<String>>,
) -> Result<Node, String> {
    let mut attrs = nodes[index].attrs.clone();
    for (key, input) in data {
        if key != "id" && key != "hfid" && kind.rel(key).is_none() {
            attrs.insert(key.clone(), attribute_value(input));
        }
    }
    for attr in kind.attributes.iter().filter(|a| !a.optional) {
        if attrs.get(&attr.name).is_none_or(Value::is_null) {
            return Err(format!("{} is mandatory for {}", attr.name, kind.kind));
        }
    }
    unique_clash(kind, nodes, &attrs, Some(index))?;
    nodes[index].attrs = attrs;
    for (name, peers) in rels {
        nodes[index].rels.insert(name.clone(), peers.clone());
    }
    Ok(nodes[index].clone())
}

/// A branch's nodes: kind -> nodes in creation order.
type Nodes = BTreeMap<String, Vec<Node>>;

/// The peer ids the relationship inputs of `data` name (`{id}`, `{hfid, kind}`, or lists of
/// them); an unknown peer is Infrahub's "Unable to find the node" error.
fn resolve_rels(
    kind: &KindSchema,
    data: &Map<String, Value>,
    all: &Nodes,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for (key, input) in data {
        if kind.rel(key).is_none() {
            continue;
        }
        let items: Vec<&Value> = match input {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            one => vec![one],
        };
        let mut ids = Vec::new();
        for item in items {
            let id = if let Some(id) = item.get("id").and_then(Value::as_str) {
                all.values()
                    .flatten()
                    .any(|n| n.id == id)
                    .then(|| id.to_owned())
                    .ok_or_else(|| format!("Unable to find the node {id} in the database."))?
            } else if let Some(Value::Array(parts)) = item.get("hfid") {
                let wanted = parts.first().cloned().unwrap_or(Value::Null);
                let peer_kind = item.get("kind").and_then(Value::as_str);
                all.iter()
                    .filter(|(k, _)| peer_kind.is_none_or(|p| p == k.as_str()))
                    .find_map(|(_, nodes)| {
                        nodes.iter().find(|n| n.attrs.get("name") == Some(&wanted))
                    })
                    .map(|n| n.id.clone())
                    .ok_or_else(|| {
                        format!(
                            "Unable to find the node {} in the database.",
                            value_text(&wanted)
                        )
                    })?
            } else {
                return Err(format!("{key}: a related node needs an id or an hfid"));
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        out.insert(key.clone(), ids);
    }
    Ok(out)
}

/// An address allocated from a pool.
#[derive(Debug, Clone)]
struct Allocation {
    identifier: Option<String>,
    id: String,
    kind: String,
    address: String,
}

/// The first host address of IPv4 `prefix` (`10.0.0.0/24`) not in `used`, written with
/// `prefix_length` (default: the prefix's own), e.g. `10.0.0.1/24`.
fn next_free_address(prefix: &str, prefix_length: Option<u64>, used: &[&str]) -> Option<String> {
    let (network, length) = prefix.split_once('/')?;
    let length: u32 = length.parse().ok().filter(|l| *l <= 32)?;
    let network: std::net::Ipv4Addr = network.parse().ok()?;
    let base = u32::from(network) & u32::MAX.checked_shl(32 - length).unwrap_or(0);
    let size = 1u64 << (32 - length);
    let (first, last) = if size > 2 {
        (1, size - 2)
    } else {
        (0, size - 1)
    };
    let shown = prefix_length.unwrap_or(u64::from(length));
    (first..=last.min(first + 65_535)).find_map(|offset| {
        let host = std::net::Ipv4Addr::from(base.wrapping_add(offset as u32));
        let host = host.to_string();
        let taken = used
            .iter()
            .any(|u| u.split('/').next() == Some(host.as_str()));
        (!taken).then(|| format!("{host}/{shown}"))
    })
}

/// The kinds matching pacer-inventory's generated ones, from their schema facts (`name` is
/// each kind's unique attribute and human-friendly id), plus the IPAM kinds an IP address pool
/// allocates from and into: what the examples and tests serve to the generated client.
#[cfg(feature = "inventory")]
pub fn generated_inventory_kinds() -> Vec<KindSchema> {
    use pacer_inventory::{Cardinality, KINDS};
    let mut kinds: Vec<KindSchema> = KINDS
        .iter()
        .map(|info| {
            let mut kind = KindSchema::new(info.kind);
            for attribute in info.attributes {
                kind = if *attribute == "name" {
                    kind.unique(*attribute)
                } else {
                    kind.attribute(*attribute)
                };
            }
            for relationship in info.relationships {
                kind = match relationship.cardinality {
                    Cardinality::One => kind.relationship_one(relationship.name),
                    Cardinality::Many => kind.relationship_many(relationship.name),
                };
            }
            kind
        })
        .collect();
    kinds.push(KindSchema::new("IpamIPPrefix").unique("prefix"));
    kinds.push(KindSchema::new("IpamIPAddress").unique("address"));
    kinds
}
