//! The Keycloak admin client (`crates/admin`) from the OpenAPI description and
//! `crates/admin/codegen.toml`.
//!
//! The allow-list names every operation the client exposes, with a curated Rust name and the
//! flags the spec cannot express (ids from `Location`, 404 as `None`, the body patches). From
//! it and the spec this module emits, into `crates/admin/src/generated/`:
//!
//! - `types.rs`: the representation types reachable from the listed operations, and one query
//!   struct per operation with query parameters;
//! - `api.rs`: one async struct per group, one method per operation;
//! - `blocking.rs`: the blocking twins, each method driving its async original.
//!
//! Everything is emitted in a fixed order (allow-list order for operations, name order for
//! types), so the output only changes when the inputs do.

mod emit;
mod schema;
// The one rule for secret-looking names, shared with the client (which applies it at run
// time to fields it does not know).
#[allow(unreachable_pub)]
#[path = "../../crates/admin/src/secret_names.rs"]
mod secret_names;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::codegen::{GeneratedFile, read_pinned};

/// Where the allow-list lives, relative to the workspace root.
const ALLOW_LIST: &str = "crates/admin/codegen.toml";
/// Where the generated files go, relative to the workspace root.
const OUT_DIR: &str = "crates/admin/src/generated";

/// `crates/admin/codegen.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowList {
    pub(crate) spec: SpecPin,
    pub(crate) group: Vec<Group>,
    pub(crate) operation: Vec<OperationEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpecPin {
    pub(crate) file: String,
    pub(crate) sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    pub(crate) doc: String,
    /// Path parameters fixed when the group is opened (`clients("realm")`).
    #[serde(default)]
    pub(crate) bound: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OperationEntry {
    pub(crate) op: String,
    pub(crate) group: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) returns: Option<String>,
    #[serde(default)]
    pub(crate) optional: bool,
    #[serde(default)]
    pub(crate) body: Option<String>,
    #[serde(default)]
    pub(crate) response: Option<String>,
    #[serde(default)]
    pub(crate) greedy: Vec<String>,
}

/// One operation, resolved against the spec.
#[derive(Debug)]
pub(crate) struct Operation<'a> {
    pub(crate) entry: &'a OperationEntry,
    pub(crate) group: &'a Group,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) doc: String,
    pub(crate) path_params: Vec<String>,
    pub(crate) query: Vec<QueryParam>,
    pub(crate) body: Option<schema::Ty>,
    pub(crate) response: Response,
}

#[derive(Debug)]
pub(crate) struct QueryParam {
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) ty: schema::Ty,
}

#[derive(Debug)]
pub(crate) enum Response {
    /// 201 with the new id in `Location`.
    Location,
    /// A 2xx without a body.
    Empty,
    /// A JSON body; `optional`: 404 is `None`.
    Json { ty: schema::Ty, optional: bool },
}

pub(crate) fn generate(root: &Path, specs: &Path) -> anyhow::Result<Vec<GeneratedFile>> {
    let allow_path = root.join(ALLOW_LIST);
    let text = std::fs::read_to_string(&allow_path)
        .with_context(|| format!("reading {}", allow_path.display()))?;
    let allow: AllowList =
        toml::from_str(&text).with_context(|| format!("parsing {}", allow_path.display()))?;
    let spec_bytes = read_pinned(&specs.join(&allow.spec.file), &allow.spec.sha256)?;
    let spec: Value = serde_json::from_slice(&spec_bytes).context("parsing the OpenAPI spec")?;
    generate_from(&allow, &spec)
}

pub(crate) fn generate_from(allow: &AllowList, spec: &Value) -> anyhow::Result<Vec<GeneratedFile>> {
    let operations = resolve(allow, spec)?;
    let schemas = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .context("the spec has no components.schemas")?;
    let mut roots = BTreeSet::new();
    for op in &operations {
        if let Some(body) = &op.body {
            body.named(&mut roots);
        }
        if let Response::Json { ty, .. } = &op.response {
            ty.named(&mut roots);
        }
        for param in &op.query {
            param.ty.named(&mut roots);
        }
    }
    let types = schema::TypeSet::collect(schemas, &roots)?;
    let source = format!("{} and {ALLOW_LIST}", allow.spec.file);
    let out = PathBuf::from(OUT_DIR);
    Ok(vec![
        GeneratedFile {
            path: out.join("types.rs"),
            contents: crate::codegen::render(&source, emit::types(&types, &operations)?)?,
        },
        GeneratedFile {
            path: out.join("api.rs"),
            contents: crate::codegen::render(&source, emit::api(&allow.group, &operations)?)?,
        },
        GeneratedFile {
            path: out.join("blocking.rs"),
            contents: crate::codegen::render(&source, emit::blocking(&allow.group, &operations)?)?,
        },
    ])
}

/// Checks every allow-list entry against the spec and resolves its parameters and types.
fn resolve<'a>(allow: &'a AllowList, spec: &Value) -> anyhow::Result<Vec<Operation<'a>>> {
    let groups: BTreeMap<&str, &Group> = allow.group.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut operations = Vec::new();
    for entry in &allow.operation {
        let context = || format!("allow-list entry {:?}", entry.op);
        let (method, path) = entry.op.split_once(' ').with_context(context)?;
        if !seen.insert(entry.op.as_str()) {
            bail!("{} is listed twice", entry.op);
        }
        let group = *groups
            .get(entry.group.as_str())
            .with_context(|| format!("{}: unknown group {:?}", entry.op, entry.group))?;
        if !names.insert((entry.group.as_str(), entry.name.as_str())) {
            bail!("{}: {}.{} is used twice", entry.op, entry.group, entry.name);
        }
        let item = spec
            .get("paths")
            .and_then(|paths| paths.get(path))
            .with_context(|| format!("{}: the spec has no path {path}", entry.op))?;
        let operation = item
            .get(method.to_ascii_lowercase())
            .with_context(|| format!("{}: the spec has no {method} on {path}", entry.op))?;
        operations.push(
            resolve_one(entry, group, method, path, item, operation, spec).with_context(context)?,
        );
    }
    Ok(operations)
}

fn resolve_one<'a>(
    entry: &'a OperationEntry,
    group: &'a Group,
    method: &str,
    path: &str,
    item: &Value,
    operation: &Value,
    spec: &Value,
) -> anyhow::Result<Operation<'a>> {
    // Most parameters sit at path level in this spec; operation-level ones come after.
    let params: Vec<&Value> = [item.get("parameters"), operation.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .collect();
    let path_params: Vec<String> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect();
    for name in &path_params {
        let declared = params.iter().any(|p| {
            p.get("in").and_then(Value::as_str) == Some("path")
                && p.get("name").and_then(Value::as_str) == Some(name)
        });
        if !declared {
            bail!("path parameter {name} is not declared");
        }
    }
    for bound in &group.bound {
        if !path_params.contains(bound) {
            bail!("group {} binds {bound}, which {path} lacks", group.name);
        }
    }
    for greedy in &entry.greedy {
        if !path_params.contains(greedy) {
            bail!("greedy parameter {greedy} is not in the path");
        }
    }
    let mut query = Vec::new();
    for p in &params {
        if p.get("in").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .context("a query parameter without a name")?;
        let ty = schema::Ty::of(p.get("schema").unwrap_or(&Value::Null))?;
        let doc = p.get("description").and_then(Value::as_str).unwrap_or("");
        query.push(QueryParam {
            name: name.to_owned(),
            doc: doc.to_owned(),
            ty,
        });
    }
    query.sort_by(|a, b| a.name.cmp(&b.name));
    query.dedup_by(|a, b| a.name == b.name);

    let body = match (&entry.body, operation.pointer("/requestBody/content")) {
        (Some(name), _) => Some(named_schema(spec, name)?),
        (None, Some(content)) => {
            let schema = content
                .get("application/json")
                .and_then(|c| c.get("schema"))
                .context("a request body that is not application/json")?;
            let ty = schema::Ty::of(schema)?;
            if matches!(ty, schema::Ty::String) {
                bail!("a string request body (binary?): patch it with `body = ...`");
            }
            Some(ty)
        }
        (None, None) => None,
    };

    let response = match (entry.returns.as_deref(), &entry.response) {
        (Some("location"), None) => Response::Location,
        (Some(other), _) => bail!("unknown `returns = {other:?}`"),
        (None, Some(name)) => Response::Json {
            ty: named_schema(spec, name)?,
            optional: entry.optional,
        },
        (None, None) => response_of(operation, entry.optional)?,
    };
    if entry.optional && !matches!(response, Response::Json { .. }) {
        bail!("`optional` needs a JSON response");
    }

    let summary = operation
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or("");
    let description = operation
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let doc = [summary, description]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Operation {
        entry,
        group,
        method: method.to_owned(),
        path: path.to_owned(),
        doc,
        path_params,
        query,
        body,
        response,
    })
}

fn named_schema(spec: &Value, name: &str) -> anyhow::Result<schema::Ty> {
    if spec
        .pointer(&format!("/components/schemas/{name}"))
        .is_none()
    {
        bail!("the spec has no schema {name}");
    }
    Ok(schema::Ty::Named(name.to_owned()))
}

fn response_of(operation: &Value, optional: bool) -> anyhow::Result<Response> {
    let responses = operation
        .get("responses")
        .and_then(Value::as_object)
        .context("no responses")?;
    for (status, response) in responses {
        if !status.starts_with('2') {
            continue;
        }
        if let Some(schema) = response.pointer("/content/application~1json/schema") {
            return Ok(Response::Json {
                ty: schema::Ty::of(schema)?,
                optional,
            });
        }
    }
    Ok(Response::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    fn load() -> (AllowList, Value) {
        let root = root();
        let text = std::fs::read_to_string(root.join(ALLOW_LIST)).expect("allow-list");
        let allow: AllowList = toml::from_str(&text).expect("allow-list parses");
        let specs = root.join("..").join("shared").join("specs");
        let bytes = read_pinned(&specs.join(&allow.spec.file), &allow.spec.sha256)
            .expect("the pinned spec");
        (allow, serde_json::from_slice(&bytes).expect("spec parses"))
    }

    #[test]
    fn every_allow_listed_operation_exists_in_the_spec() {
        let (allow, spec) = load();
        for entry in &allow.operation {
            let (method, path) = entry.op.split_once(' ').expect("METHOD /path");
            assert!(
                spec.pointer(&format!(
                    "/paths/{}/{}",
                    path.replace('~', "~0").replace('/', "~1"),
                    method.to_ascii_lowercase()
                ))
                .is_some(),
                "{} is not in the spec",
                entry.op
            );
        }
        assert!(
            allow.operation.len() >= 90,
            "the issue's list has ~100 operations"
        );
    }

    #[test]
    fn an_operation_missing_from_the_spec_is_an_error() {
        let (mut allow, spec) = load();
        allow.operation[0].op = "GET /admin/realms/{realm}/no-such-thing".into();
        let error = generate_from(&allow, &spec).expect_err("must fail");
        assert!(format!("{error:#}").contains("no path"), "{error:#}");
        let (mut allow, spec) = load();
        allow.operation[0].op = "PATCH /admin/realms".into();
        assert!(generate_from(&allow, &spec).is_err());
    }

    #[test]
    fn a_binary_body_must_be_patched() {
        let (mut allow, spec) = load();
        for entry in &mut allow.operation {
            entry.body = None;
        }
        let error = generate_from(&allow, &spec).expect_err("must fail");
        assert!(format!("{error:#}").contains("binary"), "{error:#}");
    }

    #[test]
    fn checked_in_code_is_what_the_generator_produces() {
        let (allow, spec) = load();
        for file in generate_from(&allow, &spec).expect("generates") {
            let current = std::fs::read_to_string(root().join(&file.path)).unwrap_or_default();
            assert!(
                current == file.contents,
                "{} is stale: run `cargo xtask codegen`",
                file.path.display()
            );
        }
    }
}
