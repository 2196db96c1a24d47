//! Token streams for the three generated files.

use anyhow::bail;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::schema::{Def, Redaction, Ty, TypeSet, pascal_case, serde_camel, snake_case};
use super::{Group, Operation, Response};

/// Turns spec prose into a safe doc string: one line (so indentation never makes a doctest),
/// and no Markdown that rustdoc would read as links or HTML.
fn doc(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            if word.starts_with("http://") || word.starts_with("https://") {
                format!("`{}`", word.replace('`', ""))
            } else {
                word.replace('[', "\\[")
                    .replace(']', "\\]")
                    .replace('<', "\\<")
                    .replace('>', "\\>")
            }
        })
        .collect();
    words.join(" ")
}

/// `#[doc]` attributes, one per line, each with the leading space `///` comments have.
fn doc_attrs(text: &str) -> TokenStream {
    let lines = text.lines().map(|line| {
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}

fn doc_or(text: &str, fallback: String) -> String {
    let text = doc(text);
    if text.is_empty() { fallback } else { text }
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// A Rust identifier for a snake_case name: raw for keywords, `_`-suffixed where raw is not
/// allowed (`self`, `super`, `crate`).
fn ident(name: &str) -> Ident {
    if matches!(name, "self" | "super" | "crate" | "Self") {
        format_ident!("{name}_")
    } else if KEYWORDS.contains(&name) {
        format_ident!("r#{name}")
    } else {
        format_ident!("{name}")
    }
}

fn types_path() -> TokenStream {
    quote!(crate::types::)
}

pub(crate) fn types(set: &TypeSet, operations: &[Operation<'_>]) -> anyhow::Result<TokenStream> {
    let mut items = Vec::new();
    for (name, def) in &set.defs {
        let type_ident = format_ident!("{name}");
        items.push(match def {
            Def::Alias { doc: text, ty } => {
                let text = doc_attrs(&doc_or(text, format!("The `{name}` schema.")));
                let ty = ty.tokens(&quote!());
                quote! { #text pub type #type_ident = #ty; }
            }
            Def::Enum {
                doc: text,
                variants,
            } => {
                let text = doc_attrs(&doc_or(text, format!("The `{name}` values.")));
                let variants = variants.iter().map(|value| {
                    let variant = format_ident!("{}", pascal_case(value));
                    let variant_doc = doc_attrs(&format!("`{value}`"));
                    quote! { #variant_doc #[serde(rename = #value)] #variant, }
                });
                quote! {
                    #text
                    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
                    pub enum #type_ident {
                        #(#variants)*
                        /// A value this client does not know (from a newer Keycloak), kept as sent.
                        #[serde(untagged)]
                        Other(String),
                    }
                }
            }
            Def::Struct { doc: text, fields } => {
                let text = doc_attrs(&doc_or(text, format!("The `{name}` representation.")));
                let eq = if set.floats.contains(name) {
                    quote!()
                } else {
                    quote!(Eq,)
                };
                let field_tokens = fields.iter().map(|field| {
                    let ident = ident(&field.ident);
                    let field_doc = doc_attrs(&doc_or(&field.doc, format!("`{}`", field.json)));
                    let mut ty = field.ty.tokens(&quote!());
                    if field.boxed {
                        ty = quote!(Box<#ty>);
                    }
                    let json = &field.json;
                    let rename = if serde_camel(&field.ident) == field.json {
                        quote!()
                    } else {
                        quote!(rename = #json,)
                    };
                    quote! {
                        #field_doc
                        #[serde(#rename skip_serializing_if = "Option::is_none")]
                        pub #ident: Option<#ty>,
                    }
                });
                // Every struct's `Debug` is written out, so that the redaction rule
                // (`Redaction`) applies to each field and to `extra`.
                let entries = fields.iter().map(|field| {
                    let ident = ident(&field.ident);
                    let json = &field.json;
                    match field.redaction {
                        Redaction::None => quote!(.field(#json, &self.#ident)),
                        Redaction::Whole => {
                            quote!(.field(#json, &crate::redact::Whole(&self.#ident)))
                        }
                        Redaction::Values => {
                            quote!(.field(#json, &crate::redact::Values(&self.#ident)))
                        }
                        Redaction::ByKey => {
                            quote!(.field(#json, &crate::redact::ByKey(&self.#ident)))
                        }
                    }
                });
                let debug_impl = quote! {
                    impl std::fmt::Debug for #type_ident {
                        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                            f.debug_struct(#name)
                                #(#entries)*
                                .field("extra", &crate::redact::ByKey(&self.extra))
                                .finish()
                        }
                    }
                };
                quote! {
                    #text
                    #[derive(Clone, Default, PartialEq, #eq Serialize, Deserialize)]
                    #[serde(rename_all = "camelCase")]
                    pub struct #type_ident {
                        #(#field_tokens)*
                        /// Fields this client does not know (from a newer Keycloak), kept so that a
                        /// read-modify-write sends them back unchanged.
                        #[serde(flatten)]
                        pub extra: serde_json::Map<String, serde_json::Value>,
                    }
                    #debug_impl
                }
            }
        });
    }
    for op in operations {
        if op.query.is_empty() {
            continue;
        }
        let name = query_type(op);
        let struct_doc = doc_attrs(&format!(
            "Query parameters of [`{}::{}`](crate::api::{}::{}) (`{} {}`); `None` leaves a parameter out.",
            op.group.type_name,
            op.entry.name,
            op.group.type_name,
            op.entry.name,
            op.method,
            op.path
        ));
        let mut fields = Vec::new();
        let mut pushes = Vec::new();
        for param in &op.query {
            let field = ident(&snake_case(&param.name));
            let field_doc = doc_attrs(&doc_or(&param.doc, format!("`{}`", param.name)));
            let ty = param.ty.tokens(&types_path());
            let json = &param.name;
            match &param.ty {
                Ty::String | Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64 => {
                    pushes.push(quote! {
                        if let Some(value) = &self.#field {
                            pairs.push((#json, value.to_string()));
                        }
                    });
                }
                Ty::Vec(inner) if matches!(**inner, Ty::String | Ty::Bool | Ty::I32 | Ty::I64) => {
                    pushes.push(quote! {
                        for value in self.#field.iter().flatten() {
                            pairs.push((#json, value.to_string()));
                        }
                    });
                }
                other => bail!("{}: query parameter {json} of type {other:?}", op.entry.op),
            }
            fields.push(quote! { #field_doc pub #field: Option<#ty>, });
        }
        items.push(quote! {
            #struct_doc
            #[derive(Debug, Clone, Default, PartialEq)]
            pub struct #name { #(#fields)* }
            impl #name {
                /// The parameters that are set, in name order.
                pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
                    let mut pairs = Vec::new();
                    #(#pushes)*
                    pairs
                }
            }
        });
    }
    Ok(quote! {
        //! Keycloak representations and query parameters, generated from the OpenAPI spec.
        //!
        //! Every field is optional (Keycloak omits what is unset and ignores what is absent on
        //! update) and every struct keeps unknown fields in `extra`, so that reading an object,
        //! changing one field and writing it back loses nothing a newer Keycloak added.
        #![allow(clippy::doc_markdown, clippy::large_enum_variant)]
        use serde::{Deserialize, Serialize};
        #(#items)*
    })
}

fn query_type(op: &Operation<'_>) -> Ident {
    format_ident!("{}{}Query", op.group.type_name, pascal_case(&op.entry.name))
}

fn group_ops<'a, 'b>(
    group: &'a Group,
    operations: &'b [Operation<'a>],
) -> impl Iterator<Item = &'b Operation<'a>> {
    operations
        .iter()
        .filter(move |op| op.group.name == group.name)
}

/// The method's arguments after `&self`: free path parameters, body, query.
fn arguments(op: &Operation<'_>) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut declared = Vec::new();
    let mut passed = Vec::new();
    for param in &op.path_params {
        if op.group.bound.contains(param) {
            continue;
        }
        let name = ident(&snake_case(param));
        declared.push(quote!(#name: &str));
        passed.push(quote!(#name));
    }
    if let Some(body) = &op.body {
        let ty = body.arg_tokens(&types_path());
        declared.push(quote!(body: #ty));
        passed.push(quote!(body));
    }
    if !op.query.is_empty() {
        let ty = query_type(op);
        declared.push(quote!(query: &crate::types::#ty));
        passed.push(quote!(query));
    }
    (declared, passed)
}

fn return_type(op: &Operation<'_>) -> TokenStream {
    match &op.response {
        Response::Location => quote!(String),
        Response::Empty => quote!(()),
        Response::Json {
            ty,
            optional: false,
        } => ty.tokens(&types_path()),
        Response::Json { ty, optional: true } => {
            let ty = ty.tokens(&types_path());
            quote!(Option<#ty>)
        }
    }
}

fn method_doc(op: &Operation<'_>) -> String {
    let mut text = doc_or(&op.doc, format!("`{} {}`.", op.method, op.path));
    text.push_str(&format!("\n\n`{} {}`", op.method, op.path));
    match &op.response {
        Response::Location => {
            text.push_str(". Returns the new object's id: the last segment of `Location`.");
        }
        Response::Json { optional: true, .. } => {
            text.push_str(". Returns `None` when Keycloak answers 404.");
        }
        _ => {}
    }
    text
}

fn group_struct_doc(group: &Group) -> String {
    let bound = group
        .bound
        .iter()
        .map(|b| format!("`{b}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if bound.is_empty() {
        group.doc.clone()
    } else {
        format!("{} Opened for one {bound}.", group.doc)
    }
}

pub(crate) fn api(groups: &[Group], operations: &[Operation<'_>]) -> anyhow::Result<TokenStream> {
    let mut items = Vec::new();
    for group in groups {
        let type_ident = format_ident!("{}", group.type_name);
        let accessor = format_ident!("{}", group.name);
        let bound: Vec<Ident> = group.bound.iter().map(|b| ident(&snake_case(b))).collect();
        let struct_doc = doc_attrs(&group_struct_doc(group));
        let accessor_doc = doc_attrs(&format!(
            "The [`{}`] API of this namespace.",
            group.type_name
        ));
        let mut methods = Vec::new();
        for op in group_ops(group, operations) {
            let name = ident(&op.entry.name);
            let (declared, _) = arguments(op);
            let ret = return_type(op);
            let text = doc_attrs(&method_doc(op));
            let mut build = Vec::new();
            let mut literal = String::new();
            for segment in op.path.split('/').skip(1) {
                literal.push('/');
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(param) => {
                        let value_ident = ident(&snake_case(param));
                        let value = if group.bound.iter().any(|b| b == param) {
                            quote!(&self.#value_ident)
                        } else {
                            quote!(#value_ident)
                        };
                        let lit = std::mem::take(&mut literal);
                        build.push(quote!(target.push_str(#lit);));
                        if op.entry.greedy.iter().any(|g| g == param) {
                            build.push(quote!(crate::path::push_segments(&mut target, #value);));
                        } else {
                            build.push(quote!(crate::path::push_segment(&mut target, #value);));
                        }
                    }
                    None => literal.push_str(segment),
                }
            }
            if !literal.is_empty() {
                build.push(quote!(target.push_str(#literal);));
            }
            let method = format_ident!("{}", op.method.to_ascii_uppercase());
            let mut call = quote!(crate::call::Call::new(http::Method::#method, target));
            if !op.query.is_empty() {
                call = quote!(#call.query(query.pairs()));
            }
            if op.body.is_some() {
                call = quote!(#call.json(body)?);
            }
            let send = match &op.response {
                Response::Location => quote!(send_created),
                Response::Empty => quote!(send_empty),
                Response::Json {
                    optional: false, ..
                } => quote!(fetch),
                Response::Json { optional: true, .. } => quote!(fetch_optional),
            };
            methods.push(quote! {
                #text
                pub async fn #name(&self, #(#declared),*) -> crate::error::Result<#ret> {
                    let mut target = String::new();
                    #(#build)*
                    let call = #call;
                    self.client.#send(call).await
                }
            });
        }
        let accessor_args = bound.iter().map(|b| quote!(#b: impl Into<String>));
        let accessor_init = bound.iter().map(|b| quote!(#b: #b.into()));
        let fields = bound.iter().map(|b| quote!(#b: String));
        items.push(quote! {
            #struct_doc
            #[derive(Debug, Clone)]
            pub struct #type_ident {
                client: crate::client::NamespacedClient,
                #(#fields,)*
            }
            impl crate::client::NamespacedClient {
                #accessor_doc
                pub fn #accessor(&self, #(#accessor_args),*) -> #type_ident {
                    #type_ident { client: self.clone(), #(#accessor_init,)* }
                }
            }
            impl #type_ident {
                #(#methods)*
            }
        });
    }
    Ok(quote! {
        //! The async API, one struct per group of operations, generated from the allow-list.
        //!
        //! Open a group from a [`NamespacedClient`](crate::NamespacedClient):
        //! `client.namespace("team-a").clients("realm").create(&rep)`. Every call goes through
        //! the client's pacer stack with that namespace.
        #(#items)*
    })
}

pub(crate) fn blocking(
    groups: &[Group],
    operations: &[Operation<'_>],
) -> anyhow::Result<TokenStream> {
    let mut items = Vec::new();
    for group in groups {
        let type_ident = format_ident!("{}", group.type_name);
        let accessor = format_ident!("{}", group.name);
        let bound: Vec<Ident> = group.bound.iter().map(|b| ident(&snake_case(b))).collect();
        let struct_doc = doc_attrs(&format!(
            "{} The blocking twin of [`crate::api::{}`].",
            group_struct_doc(group),
            group.type_name
        ));
        let accessor_doc = doc_attrs(&format!(
            "The blocking [`{}`] API of this namespace.",
            group.type_name
        ));
        let methods = group_ops(group, operations).map(|op| {
            let name = ident(&op.entry.name);
            let (declared, passed) = arguments(op);
            let ret = return_type(op);
            let text = doc_attrs(&method_doc(op));
            quote! {
                #text
                pub fn #name(&self, #(#declared),*) -> crate::error::Result<#ret> {
                    self.runtime.block_on(self.inner.#name(#(#passed),*))?
                }
            }
        });
        let accessor_args = bound.iter().map(|b| quote!(#b: impl Into<String>));
        items.push(quote! {
            #struct_doc
            #[derive(Debug, Clone)]
            pub struct #type_ident {
                inner: crate::api::#type_ident,
                runtime: pacer::client::runtime::BlockingRuntime,
            }
            impl crate::blocking_namespaced::NamespacedClient {
                #accessor_doc
                pub fn #accessor(&self, #(#accessor_args),*) -> #type_ident {
                    #type_ident {
                        inner: self.inner.#accessor(#(#bound),*),
                        runtime: self.runtime.clone(),
                    }
                }
            }
            impl #type_ident {
                #(#methods)*
            }
        });
    }
    Ok(quote! {
        //! The blocking API: each method runs its async twin from [`crate::api`] on the
        //! client's own runtime, so the two cannot behave differently.
        #(#items)*
    })
}
