//! The Infrahub inventory client (`crates/inventory`) from a GraphQL SDL and
//! `crates/inventory/codegen.toml`.
//!
//! The SDL is the one a stock Infrahub serves (`GET /schema.graphql`), pinned by sha256 in the
//! allow-list; `--infrahub-sdl FILE` points the generator at another instance's schema (with the
//! user's own kinds), unpinned. For each allow-listed kind the generator reads the node type, its
//! query field and its four mutations, and emits one module (see [`emit`]); the blocking twins
//! of every `pub async fn` on `InventoryClient` come from [`blocking`].

mod blocking;
mod emit;
mod model;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::codegen::{self, GeneratedFile};

/// `crates/inventory/codegen.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowList {
    spec: Spec,
    blocking_sources: Vec<String>,
    kinds: BTreeMap<String, KindEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    file: String,
    sha256: Option<String>,
}

/// One allow-listed kind.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindEntry {
    /// Prefix of the typed methods; default: the kind in snake_case.
    pub(crate) method: Option<String>,
    /// Attributes that are written but never selected (secrets): typed `SecretString` in the inputs,
    /// absent from the node struct and the documents.
    #[serde(default)]
    pub(crate) write_only: Vec<String>,
}

const CRATE_DIR: &str = "crates/inventory";

pub(crate) fn generate(
    root: &Path,
    specs: &Path,
    sdl_override: Option<&Path>,
) -> anyhow::Result<Vec<GeneratedFile>> {
    let crate_dir = root.join(CRATE_DIR);
    let allow_path = crate_dir.join("codegen.toml");
    let allow: AllowList = toml::from_str(
        &fs::read_to_string(&allow_path)
            .with_context(|| format!("reading {}", allow_path.display()))?,
    )
    .with_context(|| format!("parsing {}", allow_path.display()))?;

    let (sdl_path, bytes) = match sdl_override {
        Some(path) => (
            path.to_path_buf(),
            fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => {
            let path = resolve(specs, &allow.spec.file);
            let bytes = match &allow.spec.sha256 {
                Some(sha) => codegen::read_pinned(&path, sha)?,
                None => fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            };
            (path, bytes)
        }
    };
    let text = String::from_utf8(bytes).context("the SDL is not UTF-8")?;
    let source = sdl_path.file_name().map_or_else(
        || sdl_path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );

    let schema = model::Schema::parse(&text)?;
    let mut kinds = Vec::new();
    for (kind, entry) in &allow.kinds {
        kinds.push(
            schema
                .kind(kind, entry)
                .with_context(|| format!("kind {kind} in {}", source))?,
        );
    }

    let mut files = Vec::new();
    let out = PathBuf::from(CRATE_DIR).join("src").join("generated");
    let mut kind_files = Vec::new();
    for kind in &kinds {
        let tokens = emit::kind_module(kind);
        kind_files.push((
            vec!["generated".to_owned(), kind.module.clone()],
            syn::parse2::<syn::File>(tokens.clone())
                .with_context(|| format!("generated code for {} is not valid Rust", kind.kind))?,
        ));
        files.push(GeneratedFile {
            path: out.join(format!("{}.rs", kind.module)),
            contents: codegen::render(&source, tokens)?,
        });
    }
    files.push(GeneratedFile {
        path: out.join("mod.rs"),
        contents: codegen::render(&source, emit::mod_file(&kinds))?,
    });

    let mut sources = Vec::new();
    for relative in &allow.blocking_sources {
        let path = crate_dir.join(relative);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file = syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))?;
        sources.push((module_path(relative)?, file));
    }
    sources.extend(kind_files);
    files.push(GeneratedFile {
        path: out.join("blocking.rs"),
        contents: codegen::render(
            "the async InventoryClient's methods",
            blocking::twins(&sources)?,
        )?,
    });
    Ok(files)
}

/// The module path of a source file given relative to the crate (`src/branch.rs` is
/// `["branch"]`, `src/a/mod.rs` is `["a"]`).
fn module_path(relative: &str) -> anyhow::Result<Vec<String>> {
    let Some(inside) = relative
        .strip_prefix("src/")
        .and_then(|path| path.strip_suffix(".rs"))
    else {
        anyhow::bail!("blocking source {relative}: not a `src/**.rs` file");
    };
    let mut module: Vec<String> = inside.split('/').map(str::to_owned).collect();
    if module.last().is_some_and(|last| last == "mod") {
        module.pop();
    }
    if module.is_empty() || module == ["lib"] {
        anyhow::bail!(
            "blocking source {relative}: the crate root has no module path to import from"
        );
    }
    Ok(module)
}

fn resolve(specs: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        specs.join(path)
    }
}

/// `CoreIPAddressPool` -> `core_ip_address_pool`: a new word starts at an upper-case letter
/// that follows a lower-case one or that precedes one (so acronyms stay together).
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_keeps_acronyms_together() {
        assert_eq!(snake_case("CoreIPAddressPool"), "core_ip_address_pool");
        assert_eq!(snake_case("CoreGraphQLQuery"), "core_graph_ql_query");
        assert_eq!(snake_case("BuiltinTag"), "builtin_tag");
        assert_eq!(snake_case("IpamNamespace"), "ipam_namespace");
    }
}
