//! The blocking twin: one method on `blocking::InventoryClient` for every `pub async fn` of an
//! `impl InventoryClient` block (hand-written sources and generated kinds alike), which drives
//! the async method on the blocking client's own runtime. Generated, so the two cannot drift.

use anyhow::bail;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ImplItem, Item, Pat, Type, Visibility};

/// The twins of the `pub async fn`s in `sources`: each file's module path in the crate
/// (`["branch"]`, `["generated", "builtin_tag"]`) and its code.
pub(crate) fn twins(sources: &[(Vec<String>, syn::File)]) -> anyhow::Result<TokenStream> {
    let files: Vec<&syn::File> = sources.iter().map(|(_, file)| file).collect();
    let mut methods = Vec::new();
    // The sources' imports, and the public items each source defines (imported from that
    // source's module, never through the crate root, which re-exports this file's parent), so
    // the copied signatures and docs name the same items.
    let mut uses: Vec<String> = Vec::new();
    for (module, file) in sources {
        for name in public_items(file) {
            let path = format!("crate::{}::{name}", module.join("::"));
            if !uses.contains(&path) {
                uses.push(path);
            }
        }
    }
    for file in &files {
        for item in &file.items {
            if let Item::Use(item) = item {
                let mut paths = Vec::new();
                flatten(&item.tree, String::new(), &mut paths);
                for path in paths {
                    if !uses.contains(&path) {
                        uses.push(path);
                    }
                }
            }
        }
    }
    uses.sort();
    let uses = uses
        .iter()
        .map(|path| format!("use {path};").parse::<TokenStream>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("re-parsing an import: {e}"))?;
    for file in &files {
        for item in &file.items {
            let Item::Impl(block) = item else { continue };
            if block.trait_.is_some() || !is_client(&block.self_ty) {
                continue;
            }
            for item in &block.items {
                let ImplItem::Fn(function) = item else {
                    continue;
                };
                if !matches!(function.vis, Visibility::Public(_))
                    || function.sig.asyncness.is_none()
                {
                    continue;
                }
                methods.push(twin(function)?);
            }
        }
    }
    Ok(quote! {
        //! Blocking twins of the async client's methods.
        #![allow(unused_imports)]
        #(#uses)*
        impl crate::blocking::InventoryClient {
            #(#methods)*
        }
    })
}

/// The names of the items `file` defines at its top level with `pub`: the copied signatures
/// name its types, and the copied docs may link to its constants and functions.
fn public_items(file: &syn::File) -> impl Iterator<Item = &syn::Ident> {
    let public = |vis: &Visibility| matches!(vis, Visibility::Public(_));
    file.items.iter().filter_map(move |item| match item {
        Item::Struct(item) if public(&item.vis) => Some(&item.ident),
        Item::Enum(item) if public(&item.vis) => Some(&item.ident),
        Item::Type(item) if public(&item.vis) => Some(&item.ident),
        Item::Trait(item) if public(&item.vis) => Some(&item.ident),
        Item::Const(item) if public(&item.vis) => Some(&item.ident),
        Item::Static(item) if public(&item.vis) => Some(&item.ident),
        Item::Fn(item) if public(&item.vis) => Some(&item.sig.ident),
        _ => None,
    })
}

/// One path per imported name (`a::{b, c as d}` gives `a::b` and `a::c as d`).
fn flatten(tree: &syn::UseTree, prefix: String, out: &mut Vec<String>) {
    match tree {
        syn::UseTree::Path(path) => flatten(&path.tree, format!("{prefix}{}::", path.ident), out),
        // `a::{self, b}`: `self` names the module `a`.
        syn::UseTree::Name(name) if name.ident == "self" => {
            out.push(prefix.trim_end_matches("::").to_owned());
        }
        syn::UseTree::Name(name) => out.push(format!("{prefix}{}", name.ident)),
        syn::UseTree::Rename(rename) => {
            out.push(format!("{prefix}{} as {}", rename.ident, rename.rename));
        }
        syn::UseTree::Glob(_) => out.push(format!("{prefix}*")),
        syn::UseTree::Group(group) => {
            for item in &group.items {
                flatten(item, prefix.clone(), out);
            }
        }
    }
}

fn is_client(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "InventoryClient"),
        _ => false,
    }
}

/// Whether `ty` is `Result<_, Error>` (the crate's error).
fn returns_result(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if last.ident != "Result" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    matches!(args.args.iter().nth(1), Some(syn::GenericArgument::Type(Type::Path(error)))
        if error.path.segments.last().is_some_and(|s| s.ident == "Error"))
}

fn twin(function: &syn::ImplItemFn) -> anyhow::Result<TokenStream> {
    let sig = &function.sig;
    let name = &sig.ident;
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    let inputs = &sig.inputs;
    let output = &sig.output;
    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_none() || receiver.mutability.is_some() {
                    bail!("{name}: only `&self` methods get a blocking twin");
                }
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => {
                    let arg = &pat.ident;
                    args.push(quote!(#arg));
                }
                _ => bail!("{name}: arguments must be plain names to get a blocking twin"),
            },
        }
    }
    let type_params: Vec<_> = sig.generics.type_params().map(|p| &p.ident).collect();
    let turbofish = if type_params.is_empty() {
        quote!()
    } else {
        quote!(::<#(#type_params),*>)
    };
    let docs = function.attrs.iter().filter(|a| a.path().is_ident("doc"));
    let note = " Blocking: runs the async method of the same name on this client's runtime \
                (`Error::Blocking` from inside an async runtime).";
    let call = quote!(self.block_on(self.inner().#name #turbofish(#(#args),*)));
    // A `Result<_, Error>` keeps its type (the refusal is one more error); anything else
    // becomes `Result<_, Error>`.
    let (output, body) = match output {
        syn::ReturnType::Type(_, ty) if returns_result(ty) => {
            (quote!(#output), quote!(#call.and_then(|answer| answer)))
        }
        syn::ReturnType::Type(_, ty) => (quote!(-> Result<#ty, Error>), call),
        syn::ReturnType::Default => (quote!(-> Result<(), Error>), call),
    };
    Ok(quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #note]
        pub fn #name #generics(#inputs) #output #where_clause {
            #body
        }
    })
}
