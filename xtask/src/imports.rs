//! `cargo xtask imports`: the import graph of the library crates' files, checked against two
//! rules that keep the layout readable in one pass:
//!
//! 1. **No circles.** No two files import each other, directly or round a circle. A file
//!    "imports" another when it names an item through a path that resolves to the other file's
//!    module (`use crate::retry::reason::RetryReason`, `super::Shared`, `crate::BoxError`, a
//!    path inside an expression). Re-exports are not followed: naming `crate::rate_limit::Quota`
//!    imports `rate_limit/mod.rs`, so importing through a parent that imports you back is a circle.
//! 2. **No import runs up.** Each crate's modules are stacked in [`LAYERS`] (bottom first, as
//!    each crate's docs describe); a file imports only from its own module or from a module in a
//!    lower layer.
//!
//! `mod` declarations are not imports; `#[cfg(test)]` modules (inline or in their own file)
//! are left out: tests may reach anywhere. Generated files are in: they are part of the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;

/// Each library crate's layers, bottom first. An entry names a module path (`a::b`); a file
/// belongs to the longest entry that is a prefix of its module path (`""` is the crate root,
/// which matches only the root file itself).
const LAYERS: &[(&str, &[&[&str]])] = &[
    (
        "crates/pacer",
        &[
            &["namespace"],
            &[
                "body",
                "rate_limit::level",
                "retry::reason",
                "retry_after::cap",
                "rate_limit::quota",
                "retry_after::parse",
            ],
            &["rate_limit::store_error"],
            &[""],
            &["events"],
            &["rate_limit"],
            &["retry_after"],
            &["retry"],
            &["metrics"],
            &["config"],
            &["client"],
            &["auth"],
        ],
    ),
    (
        "crates/admin",
        &[
            &["secret_names"],
            &["error", "redact", "path"],
            &["decode"],
            &["auth"],
            &["client"],
            &["call"],
            &["types"],
            &["api"],
            &["blocking_namespaced"],
            &["blocking_api"],
            &["serverinfo"],
            &["reconcile"],
            &["blocking"],
            &[""],
        ],
    ),
    (
        "crates/inventory",
        &[
            &["error"],
            &["config"],
            &["response"],
            &["auth"],
            &["stack"],
            &["client"],
            &["branch", "node", "schema"],
            &["nodes"],
            &["generated"],
            &["blocking"],
            // The generated blocking twins add methods to the hand-written blocking client.
            &["generated::blocking"],
            &[""],
        ],
    ),
];

/// One source file of a crate: where it is, its module path, the paths it names.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    /// Absolute module paths (crate-relative) named by the file, with the names they end in.
    named: Vec<Vec<String>>,
}

/// Runs the check over every crate in [`LAYERS`]; prints the graph's faults and fails on any.
pub(crate) fn check(root: &Path) -> anyhow::Result<bool> {
    let mut clean = true;
    for (crate_dir, layers) in LAYERS {
        let src = root.join(crate_dir).join("src");
        let files = crate_files(&src)?;
        let report = analyse(&files, layers);
        println!(
            "{crate_dir}: {} files, {} imports between files, {} circles, {} imports running up",
            files.len(),
            report.edges.values().map(BTreeMap::len).sum::<usize>(),
            report.circles.len(),
            report.upward.len(),
        );
        for circle in &report.circles {
            clean = false;
            println!("  circle:");
            for from in circle {
                for (to, names) in &report.edges[from] {
                    if circle.contains(to) {
                        println!("    {from} -> {to}: {}", names.join(", "));
                    }
                }
            }
        }
        for (from, to, names) in &report.upward {
            clean = false;
            println!("  runs up: {from} -> {to}: {}", names.join(", "));
        }
        for file in &report.unlayered {
            clean = false;
            println!("  in no layer: {file}");
        }
    }
    Ok(clean)
}

struct Report {
    /// file -> file -> names taken.
    edges: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    circles: Vec<BTreeSet<String>>,
    upward: Vec<(String, String, Vec<String>)>,
    unlayered: Vec<String>,
}

fn analyse(files: &[SourceFile], layers: &[&[&str]]) -> Report {
    let by_module: BTreeMap<&[String], String> = files
        .iter()
        .map(|file| (file.module.as_slice(), display(&file.path)))
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in files {
        let from = display(&file.path);
        let entry = edges.entry(from.clone()).or_default();
        for named in &file.named {
            let Some((target, name)) = resolve(&by_module, named) else {
                continue;
            };
            if target != from {
                let names = entry.entry(target).or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    let circles = strongly_connected(&edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .collect();

    let layer_of = |module: &[String]| -> Option<(usize, String)> {
        let joined = module.join("::");
        let mut best: Option<(usize, &str)> = None;
        for (index, layer) in layers.iter().enumerate() {
            for entry in layer.iter() {
                let matches = if entry.is_empty() {
                    joined.is_empty()
                } else {
                    joined == *entry || joined.starts_with(&format!("{entry}::"))
                };
                if matches && best.is_none_or(|(_, found)| entry.len() > found.len()) {
                    best = Some((index, entry));
                }
            }
        }
        best.map(|(index, entry)| (index, entry.to_owned()))
    };
    let module_of: BTreeMap<String, &[String]> = files
        .iter()
        .map(|file| (display(&file.path), file.module.as_slice()))
        .collect();
    let mut upward = Vec::new();
    let mut unlayered = Vec::new();
    for (from, targets) in &edges {
        let Some((from_layer, from_entry)) = layer_of(module_of[from]) else {
            unlayered.push(from.clone());
            continue;
        };
        for (to, names) in targets {
            let Some((to_layer, to_entry)) = layer_of(module_of[to]) else {
                continue;
            };
            if to_entry != from_entry && to_layer >= from_layer {
                upward.push((from.clone(), to.clone(), names.clone()));
            }
        }
    }
    Report {
        edges,
        circles,
        upward,
        unlayered,
    }
}

/// The file a crate-relative path names (its longest prefix that is a file's module), and the
/// name the path takes from it.
fn resolve(by_module: &BTreeMap<&[String], String>, path: &[String]) -> Option<(String, String)> {
    (0..=path.len()).rev().find_map(|length| {
        let file = by_module.get(&path[..length])?;
        let name = path
            .get(length)
            .or(path.last())
            .cloned()
            .unwrap_or_default();
        Some((file.clone(), name))
    })
}

/// Tarjan's algorithm over the file graph.
fn strongly_connected(
    edges: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.edges.get(node) {
            for target in targets.keys() {
                let target = target.as_str();
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = BTreeSet::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.insert(member.to_owned());
                if member == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.components
}

fn display(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Every non-test file of the crate whose root is `src/lib.rs`, following `mod` declarations.
fn crate_files(src: &Path) -> anyhow::Result<Vec<SourceFile>> {
    let root = src.join("lib.rs");
    if !root.exists() {
        bail!("{} not found", root.display());
    }
    let mut files = Vec::new();
    let mut pending = vec![(root, Vec::<String>::new())];
    while let Some((path, module)) = pending.pop() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file = syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))?;
        let directory = module_directory(src, &path, &module);
        let mut named = Vec::new();
        let mut children = Vec::new();
        scan_items(&file.items, &module, &mut named, &mut children);
        for (child, explicit) in children {
            let flat = directory.join(format!("{child}.rs"));
            let nested = directory.join(&child).join("mod.rs");
            let child_path = match explicit {
                Some(explicit) => directory.join(explicit),
                None if flat.exists() => flat,
                None => nested,
            };
            let mut child_module = module.clone();
            child_module.push(child);
            pending.push((child_path, child_module));
        }
        let relative = path
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(&path);
        let crate_name = src
            .parent()
            .and_then(Path::file_name)
            .map(PathBuf::from)
            .unwrap_or_default();
        files.push(SourceFile {
            path: Path::new("crates").join(crate_name).join(relative),
            module,
            named,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Where the files of `module`'s child modules live.
fn module_directory(src: &Path, path: &Path, module: &[String]) -> PathBuf {
    let is_dir_module = module.is_empty() || path.file_name().is_some_and(|name| name == "mod.rs");
    if is_dir_module {
        path.parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| src.to_owned())
    } else {
        module
            .iter()
            .fold(src.to_owned(), |dir, segment| dir.join(segment))
    }
}

/// The file a `#[path = "..."]` attribute gives a module, relative to the declaring file's
/// directory.
fn path_attribute(declared: &syn::ItemMod) -> Option<String> {
    declared.attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(pair) if pair.path.is_ident("path") => match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(path),
                ..
            }) => Some(path.value()),
            _ => None,
        },
        _ => None,
    })
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && attr.meta.to_token_stream().to_string().contains("test")
    })
}

/// Collects the paths `items` name (as crate-relative module paths) and the file modules
/// they declare; inline modules are entered with their own path.
fn scan_items(
    items: &[syn::Item],
    module: &[String],
    named: &mut Vec<Vec<String>>,
    children: &mut Vec<(String, Option<String>)>,
) {
    for item in items {
        match item {
            syn::Item::Mod(declared) => {
                if is_test_only(&declared.attrs) {
                    continue;
                }
                match &declared.content {
                    None => children.push((declared.ident.to_string(), path_attribute(declared))),
                    Some((_, inner)) => {
                        let mut inner_module = module.to_vec();
                        inner_module.push(declared.ident.to_string());
                        let mut inline_children = Vec::new();
                        scan_items(inner, &inner_module, named, &mut inline_children);
                    }
                }
            }
            syn::Item::Use(declared) => {
                if !is_test_only(&declared.attrs) {
                    use_tree(&declared.tree, &mut Vec::new(), module, named);
                }
            }
            other => scan_tokens(other.to_token_stream(), module, named),
        }
    }
}

fn use_tree(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    module: &[String],
    named: &mut Vec<Vec<String>>,
) {
    match tree {
        syn::UseTree::Path(path) => {
            prefix.push(path.ident.to_string());
            use_tree(&path.tree, prefix, module, named);
            prefix.pop();
        }
        syn::UseTree::Name(name) => {
            prefix.push(name.ident.to_string());
            named.push(use_path(prefix, module));
            prefix.pop();
        }
        syn::UseTree::Rename(rename) => {
            prefix.push(rename.ident.to_string());
            named.push(use_path(prefix, module));
            prefix.pop();
        }
        syn::UseTree::Glob(_) => named.push(use_path(prefix, module)),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                use_tree(tree, prefix, module, named);
            }
        }
    }
}

/// A `use` path made crate-relative. A path that starts with neither `crate`, `self` nor
/// `super` is read as relative to `module` (2018 paths: `use layer::Layer` names the child
/// module `layer`); one that names an extern crate then resolves to the file itself and is
/// dropped as a self-import.
fn use_path(path: &[String], module: &[String]) -> Vec<String> {
    absolute(path, module).unwrap_or_else(|| module.iter().chain(path).cloned().collect())
}

/// Finds `crate::a::b`, `super::a`, `self::a` paths in code (expressions, types, impls).
fn scan_tokens(tokens: TokenStream, module: &[String], named: &mut Vec<Vec<String>>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut index = 0;
    while index < trees.len() {
        match &trees[index] {
            TokenTree::Group(group) => scan_tokens(group.stream(), module, named),
            TokenTree::Ident(ident)
                if matches!(ident.to_string().as_str(), "crate" | "super" | "self")
                    && is_path_separator(&trees, index + 1) =>
            {
                let mut path = vec![ident.to_string()];
                let mut next = index + 1;
                while is_path_separator(&trees, next) {
                    match trees.get(next + 2) {
                        Some(TokenTree::Ident(segment)) => {
                            path.push(segment.to_string());
                            next += 3;
                        }
                        _ => break,
                    }
                }
                if let Some(absolute) = absolute(&path, module) {
                    named.push(absolute);
                }
                index = next;
                continue;
            }
            _ => {}
        }
        index += 1;
    }
}

fn is_path_separator(trees: &[TokenTree], index: usize) -> bool {
    let colon = |tree: Option<&TokenTree>| matches!(tree, Some(TokenTree::Punct(punct)) if punct.as_char() == ':');
    colon(trees.get(index)) && colon(trees.get(index + 1))
}

/// `path` as seen from `module`, made crate-relative; `None` for paths outside the crate.
fn absolute(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some(module.iter().chain(rest).cloned().collect()),
        "super" => {
            let mut base = module.to_vec();
            base.pop();
            let mut rest = rest;
            while rest.first().is_some_and(|segment| segment == "super") {
                base.pop();
                rest = &rest[1..];
            }
            Some(base.into_iter().chain(rest.iter().cloned()).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A file of a made-up crate, scanned as [`crate_files`] scans a real one.
    fn file(path: &str, module: &[&str], text: &str) -> SourceFile {
        let parsed = syn::parse_file(text).unwrap();
        let module: Vec<String> = module.iter().map(|segment| segment.to_string()).collect();
        let mut named = Vec::new();
        scan_items(&parsed.items, &module, &mut named, &mut Vec::new());
        SourceFile {
            path: PathBuf::from(path),
            module,
            named,
        }
    }

    const LOW_THEN_HIGH: &[&[&str]] = &[&["low"], &["high"], &[""]];

    fn set(files: &[&str]) -> BTreeSet<String> {
        files.iter().map(|file| file.to_string()).collect()
    }

    #[test]
    fn a_two_file_circle_is_reported() {
        let files = [
            file("src/lib.rs", &[], "mod high; mod low;"),
            file(
                "src/low.rs",
                &["low"],
                "pub struct L; fn f(_: crate::high::H) {}",
            ),
            file("src/high.rs", &["high"], "use super::low::L; pub struct H;"),
        ];
        let report = analyse(&files, LOW_THEN_HIGH);
        assert_eq!(report.circles, [set(&["src/high.rs", "src/low.rs"])]);
        assert_eq!(
            report.upward,
            [(
                "src/low.rs".to_owned(),
                "src/high.rs".to_owned(),
                vec!["H".to_owned()]
            )]
        );
    }

    #[test]
    fn an_upward_import_is_reported_without_a_circle() {
        let files = [
            file("src/lib.rs", &[], "mod high; mod low;"),
            file("src/low.rs", &["low"], "use crate::high::H;"),
            file("src/high.rs", &["high"], "pub struct H;"),
        ];
        let report = analyse(&files, LOW_THEN_HIGH);
        assert!(report.circles.is_empty());
        assert_eq!(
            report.upward,
            [(
                "src/low.rs".to_owned(),
                "src/high.rs".to_owned(),
                vec!["H".to_owned()]
            )]
        );
    }

    #[test]
    fn importing_through_a_re_export_imports_the_re_exporting_file() {
        // `crate::L` is `low::L` re-exported: the edge goes to the root, not to `low`.
        let files = [
            file("src/lib.rs", &[], "mod high; mod low; pub use low::L;"),
            file("src/low.rs", &["low"], "pub struct L;"),
            file("src/high.rs", &["high"], "use crate::L;"),
        ];
        let report = analyse(&files, &[&["low"], &[""], &["high"]]);
        assert!(report.circles.is_empty(), "{:?}", report.circles);
        assert!(report.upward.is_empty());
        assert!(report.edges["src/high.rs"].contains_key("src/lib.rs"));

        // So a file that the root re-exports, naming the root back, is in a circle with it.
        let files = [
            file("src/lib.rs", &[], "mod low; pub use low::L; pub struct R;"),
            file("src/low.rs", &["low"], "pub struct L; fn f(_: crate::R) {}"),
        ];
        let report = analyse(&files, &[&["low"], &[""]]);
        assert_eq!(report.circles, [set(&["src/lib.rs", "src/low.rs"])]);
    }

    #[test]
    fn downward_imports_and_test_modules_are_no_fault() {
        let files = [
            file("src/lib.rs", &[], "mod high; mod low;"),
            file(
                "src/low.rs",
                &["low"],
                "pub struct L; #[cfg(test)] mod tests { use crate::high::H; }",
            ),
            file("src/high.rs", &["high"], "use crate::low::L;"),
        ];
        let report = analyse(&files, LOW_THEN_HIGH);
        assert!(report.circles.is_empty());
        assert!(report.upward.is_empty());
        assert!(report.unlayered.is_empty());
        assert!(report.edges["src/high.rs"].contains_key("src/low.rs"));
    }
}
