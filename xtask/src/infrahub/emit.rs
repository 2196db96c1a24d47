//! Rust and GraphQL text for one kind: the node struct, filter and input structs, the seven
//! documents, the `Kind` impl and the typed async methods.

use std::collections::BTreeSet;

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};

use super::model::{FieldKind, InputKind, InputModel, KindModel, Scalar, Shape};

fn ident(name: &str) -> Ident {
    if syn::parse_str::<Ident>(name).is_ok() {
        Ident::new(name, Span::call_site())
    } else {
        Ident::new_raw(name, Span::call_site())
    }
}

/// The items of the crate (and of pacer) that generated code names, each with the module that
/// defines it. Generated files import them from there, never through the crate root's
/// re-exports: the root re-exports `generated`, so naming the root from it would be a circle
/// (`cargo xtask imports`).
const DEFINED_IN: &[(&str, &[&str])] = &[
    ("Cardinality", &["crate", "node"]),
    ("Error", &["crate", "error"]),
    ("InventoryClient", &["crate", "client"]),
    ("Kind", &["crate", "node"]),
    ("KindInfo", &["crate", "node"]),
    ("NodeRef", &["crate", "node"]),
    ("Page", &["crate", "node"]),
    ("Peer", &["crate", "node"]),
    ("RelatedNode", &["crate", "node"]),
    ("RelationshipInfo", &["crate", "node"]),
    ("SecretString", &["pacer", "auth"]),
];

/// A `use` line for each [`DEFINED_IN`] item `body` names, so a file imports exactly what it
/// uses (a kind without relationships needs no `Cardinality`).
fn imports(body: &TokenStream) -> TokenStream {
    fn names(tokens: TokenStream, found: &mut BTreeSet<String>) {
        for tree in tokens {
            match tree {
                TokenTree::Ident(ident) => {
                    found.insert(ident.to_string());
                }
                TokenTree::Group(group) => names(group.stream(), found),
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
    }
    let mut found = BTreeSet::new();
    names(body.clone(), &mut found);
    let lines = DEFINED_IN
        .iter()
        .filter(|(name, _)| found.contains(*name))
        .map(|(name, module)| {
            let module = module
                .iter()
                .map(|segment| Ident::new(segment, Span::call_site()));
            let name = Ident::new(name, Span::call_site());
            quote!(use #(#module)::*::#name;)
        });
    quote!(#(#lines)*)
}

fn scalar_type(scalar: Scalar) -> TokenStream {
    match scalar {
        Scalar::String => quote!(String),
        Scalar::Int => quote!(i64),
        Scalar::Float => quote!(f64),
        Scalar::Bool => quote!(bool),
        Scalar::Json => quote!(serde_json::Value),
    }
}

/// The Rust type of a value of this shape, always optional (inputs and filters).
fn optional_type(shape: &Shape) -> TokenStream {
    let scalar = scalar_type(shape.scalar);
    if shape.list {
        quote!(Option<Vec<#scalar>>)
    } else {
        quote!(Option<#scalar>)
    }
}

/// The Rust type of a node field of this shape (required fields are not optional).
fn field_type(shape: &Shape) -> TokenStream {
    let scalar = scalar_type(shape.scalar);
    match (shape.list, shape.required) {
        (true, true) => quote!(Vec<#scalar>),
        (true, false) => quote!(Option<Vec<#scalar>>),
        (false, true) => quote!(#scalar),
        (false, false) => quote!(Option<#scalar>),
    }
}

fn doc(text: Option<&str>, fallback: String) -> TokenStream {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "None")
        .map_or(fallback, |t| t.replace('[', "\\[").replace(']', "\\]"));
    let lines = text.lines().map(|l| format!(" {}", l.trim_end()));
    quote!(#(#[doc = #lines])*)
}

/// A selection tree rendered as an indented GraphQL selection set.
struct Sel {
    head: String,
    children: Vec<Sel>,
}

fn leaf(name: &str) -> Sel {
    Sel {
        head: name.to_owned(),
        children: Vec::new(),
    }
}

fn node(head: impl Into<String>, children: Vec<Sel>) -> Sel {
    Sel {
        head: head.into(),
        children,
    }
}

fn render(sel: &Sel, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    out.push_str(&pad);
    out.push_str(&sel.head);
    if !sel.children.is_empty() {
        out.push_str(" {\n");
        for child in &sel.children {
            render(child, depth + 1, out);
        }
        out.push_str(&pad);
        out.push('}');
    }
    out.push('\n');
}

fn document(head: String, root: Sel) -> String {
    let mut out = String::new();
    render(&node(head, vec![root]), 0, &mut out);
    out
}

impl KindModel {
    fn peer_selection(&self, peer: &str) -> Vec<Sel> {
        let (hfid, label) = self.peers.get(peer).copied().unwrap_or((false, false));
        let mut out = vec![leaf("id")];
        if hfid {
            out.push(leaf("hfid"));
        }
        if label {
            out.push(leaf("display_label"));
        }
        out.push(leaf("__typename"));
        out
    }

    fn readable(&self) -> impl Iterator<Item = &super::model::NodeField> {
        self.fields
            .iter()
            .filter(|f| !self.write_only.contains(&f.name))
    }

    fn node_selection(&self) -> Vec<Sel> {
        self.readable()
            .map(|f| match &f.kind {
                FieldKind::Scalar(_) => leaf(&f.name),
                FieldKind::Attribute { .. } => node(f.name.clone(), vec![leaf("value")]),
                FieldKind::One { peer } => node(
                    f.name.clone(),
                    vec![node("node", self.peer_selection(peer))],
                ),
                FieldKind::Many { peer } => node(
                    f.name.clone(),
                    vec![
                        leaf("count"),
                        node("edges", vec![node("node", self.peer_selection(peer))]),
                    ],
                ),
            })
            .collect()
    }

    fn paginated(&self, args: &[String], with_edges: bool) -> Sel {
        let head = if args.is_empty() {
            self.kind.clone()
        } else {
            format!("{}({})", self.kind, args.join(", "))
        };
        let mut children = vec![leaf("count")];
        if with_edges {
            children.push(node("edges", vec![node("node", self.node_selection())]));
        }
        node(head, children)
    }

    fn filter_vars(&self) -> (Vec<String>, Vec<String>) {
        let decls = self
            .filters
            .iter()
            .map(|f| format!("${}: {}", f.name, f.sdl_type))
            .collect();
        let args = self
            .filters
            .iter()
            .map(|f| format!("{}: ${}", f.name, f.name))
            .collect();
        (decls, args)
    }

    fn list_document(&self) -> String {
        let (mut decls, mut args) = self.filter_vars();
        decls.splice(0..0, ["$offset: Int".to_owned(), "$limit: Int".to_owned()]);
        args.splice(
            0..0,
            ["offset: $offset".to_owned(), "limit: $limit".to_owned()],
        );
        document(
            format!("query {}List({})", self.kind, decls.join(", ")),
            self.paginated(&args, true),
        )
    }

    fn get_document(&self) -> String {
        let mut decls = vec!["$ids: [ID]".to_owned()];
        let mut args = vec!["ids: $ids".to_owned()];
        if self.has_hfid_arg {
            decls.push("$hfid: [String]".to_owned());
            args.push("hfid: $hfid".to_owned());
        }
        document(
            format!("query {}Get({})", self.kind, decls.join(", ")),
            self.paginated(&args, true),
        )
    }

    fn count_document(&self) -> String {
        let (decls, args) = self.filter_vars();
        let head = if decls.is_empty() {
            format!("query {}Count", self.kind)
        } else {
            format!("query {}Count({})", self.kind, decls.join(", "))
        };
        document(head, self.paginated(&args, false))
    }

    fn mutation_document(&self, suffix: &str, input: &str, with_object: bool) -> String {
        let name = format!("{}{suffix}", self.kind);
        let mut children = vec![leaf("ok")];
        if with_object {
            children.push(node("object", self.node_selection()));
        }
        document(
            format!("mutation {name}($data: {input}!)"),
            node(format!("{name}(data: $data)"), children),
        )
    }

    fn documents(&self) -> [(&'static str, String); 7] {
        [
            ("LIST_QUERY", self.list_document()),
            ("GET_QUERY", self.get_document()),
            ("COUNT_QUERY", self.count_document()),
            (
                "CREATE_MUTATION",
                self.mutation_document("Create", &self.create.sdl_name, true),
            ),
            (
                "UPDATE_MUTATION",
                self.mutation_document("Update", &self.update.sdl_name, true),
            ),
            (
                "UPSERT_MUTATION",
                self.mutation_document("Upsert", &self.upsert.sdl_name, true),
            ),
            (
                "DELETE_MUTATION",
                self.mutation_document("Delete", &self.delete_input, false),
            ),
        ]
    }
}

fn node_struct(kind: &KindModel) -> TokenStream {
    let name = ident(&kind.kind);
    let fields = kind.readable().map(|f| {
        let field = ident(&f.name);
        let docs = doc(f.description.as_deref(), format!("`{}`.", f.name));
        match &f.kind {
            FieldKind::Scalar(shape) => {
                let ty = field_type(shape);
                if shape.required {
                    quote!(#docs pub #field: #ty,)
                } else {
                    quote!(#docs #[serde(default)] pub #field: #ty,)
                }
            }
            FieldKind::Attribute { wrapper, value } => {
                let ty = optional_type(value);
                let note = format!(" The value of the `{wrapper}`.");
                quote!(#docs #[doc = ""] #[doc = #note]
                    #[serde(default, deserialize_with = "crate::node::wire::attribute")]
                    pub #field: #ty,)
            }
            FieldKind::One { peer } => {
                let note = format!(" Peer: `{peer}` (cardinality one).");
                quote!(#docs #[doc = ""] #[doc = #note]
                    #[serde(default, deserialize_with = "crate::node::wire::one")]
                    pub #field: Option<Peer>,)
            }
            FieldKind::Many { peer } => {
                let note = format!(" Peers: `{peer}` (cardinality many).");
                quote!(#docs #[doc = ""] #[doc = #note]
                    #[serde(default, deserialize_with = "crate::node::wire::many")]
                    pub #field: Vec<Peer>,)
            }
        }
    });
    let docs = doc(
        kind.description.as_deref(),
        format!("A `{}` node.", kind.kind),
    );
    let summary = " Attributes are unwrapped to their values; relationships are peer references.";
    quote! {
        #docs
        #[doc = ""]
        #[doc = #summary]
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[non_exhaustive]
        pub struct #name { #(#fields)* }
    }
}

fn filter_struct(kind: &KindModel) -> TokenStream {
    let name = format_ident!("{}Filter", kind.kind);
    let fields = kind.filters.iter().map(|f| {
        let rust = f.name.replace("__", "_");
        let field = ident(&rust);
        let ty = optional_type(&f.shape);
        let wire = &f.name;
        let docs = format!(" `{}: {}`", f.name, f.sdl_type);
        quote!(#[doc = #docs] #[serde(rename = #wire, skip_serializing_if = "Option::is_none")] pub #field: #ty,)
    });
    let docs = format!(
        " Filters for listing and counting `{}` nodes; unset fields do not filter.",
        kind.kind
    );
    quote! {
        #[doc = #docs]
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
        #[non_exhaustive]
        pub struct #name { #(#fields)* }
    }
}

fn input_struct(kind: &KindModel, suffix: &str, input: &InputModel) -> TokenStream {
    let name = format_ident!("{}{suffix}", kind.kind);
    let fields = input.fields.iter().map(|f| {
        let field = ident(&f.name);
        let secret = kind.write_only.contains(&f.name);
        match &f.kind {
            InputKind::Scalar(shape) => {
                let ty = optional_type(shape);
                let docs = format!(" `{}`.", f.name);
                quote!(#[doc = #docs] #[serde(skip_serializing_if = "Option::is_none")] pub #field: #ty,)
            }
            InputKind::Attribute(_) if secret => {
                let docs = format!(" `{}` (a secret: redacted in `Debug`, never read back).", f.name);
                quote!(#[doc = #docs]
                    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::node::wire::secret_attribute_input")]
                    pub #field: Option<SecretString>,)
            }
            InputKind::Attribute(shape) => {
                let ty = optional_type(shape);
                let docs = format!(" `{}`, sent as `{{value: ...}}`.", f.name);
                quote!(#[doc = #docs]
                    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::node::wire::attribute_input")]
                    pub #field: #ty,)
            }
            InputKind::Related { list: true } => {
                let docs = format!(" `{}`: the peers (by id or hfid).", f.name);
                quote!(#[doc = #docs] #[serde(skip_serializing_if = "Option::is_none")] pub #field: Option<Vec<RelatedNode>>,)
            }
            InputKind::Related { list: false } => {
                let docs = format!(" `{}`: the peer (by id or hfid).", f.name);
                quote!(#[doc = #docs] #[serde(skip_serializing_if = "Option::is_none")] pub #field: Option<RelatedNode>,)
            }
            InputKind::Json => {
                let docs = format!(" `{}` (sent as given).", f.name);
                quote!(#[doc = #docs] #[serde(skip_serializing_if = "Option::is_none")] pub #field: Option<serde_json::Value>,)
            }
        }
    });
    let docs = format!(
        " The `data` of `{}{suffix}` (`{}`); unset fields are not sent.",
        kind.kind, input.sdl_name
    );
    // A secret (`SecretString`) cannot be compared: inputs holding one are not `PartialEq`.
    let has_secret = input
        .fields
        .iter()
        .any(|f| kind.write_only.contains(&f.name) && matches!(f.kind, InputKind::Attribute(_)));
    let derives = if has_secret {
        quote!(#[derive(Debug, Clone, Default, serde::Serialize)])
    } else {
        quote!(#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)])
    };
    quote! {
        #[doc = #docs]
        #derives
        #[non_exhaustive]
        pub struct #name { #(#fields)* }
    }
}

fn kind_impl(kind: &KindModel) -> TokenStream {
    let name = ident(&kind.kind);
    let kind_name = &kind.kind;
    let filter = format_ident!("{}Filter", kind.kind);
    let create = format_ident!("{}Create", kind.kind);
    let update = format_ident!("{}Update", kind.kind);
    let upsert = format_ident!("{}Upsert", kind.kind);
    let documents = kind.documents().into_iter().map(|(constant, text)| {
        let constant = Ident::new(constant, Span::call_site());
        quote!(const #constant: &'static str = #text;)
    });
    let attributes = kind
        .fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Attribute { .. }))
        .map(|f| f.name.as_str());
    let relationships = kind.fields.iter().filter_map(|f| {
        let (peer, cardinality) = match &f.kind {
            FieldKind::One { peer } => (peer, quote!(Cardinality::One)),
            FieldKind::Many { peer } => (peer, quote!(Cardinality::Many)),
            _ => return None,
        };
        let field = &f.name;
        Some(quote!(RelationshipInfo { name: #field, peer: #peer, cardinality: #cardinality }))
    });
    quote! {
        impl Kind for #name {
            const INFO: KindInfo = KindInfo {
                kind: #kind_name,
                attributes: &[#(#attributes),*],
                relationships: &[#(#relationships),*],
            };
            type Filter = #filter;
            type Create = #create;
            type Update = #update;
            type Upsert = #upsert;
            #(#documents)*
            fn id(&self) -> &str {
                &self.id
            }
        }
    }
}

fn methods(kind: &KindModel) -> TokenStream {
    let name = ident(&kind.kind);
    let filter = format_ident!("{}Filter", kind.kind);
    let create = format_ident!("{}Create", kind.kind);
    let update = format_ident!("{}Update", kind.kind);
    let upsert = format_ident!("{}Upsert", kind.kind);
    let m = |suffix: &str| format_ident!("{}_{suffix}", kind.method);
    let (list, all, stream, get, count, create_m, update_m, upsert_m, delete) = (
        m("list"),
        m("all"),
        m("stream"),
        m("get"),
        m("count"),
        m("create"),
        m("update"),
        m("upsert"),
        m("delete"),
    );
    let k = &kind.kind;
    let d_list = format!(
        " One page of `{k}` nodes matching `filter` (`offset`, at most `limit`), with the total count."
    );
    let d_all = format!(
        " Every `{k}` node matching `filter`, fetched page by page (`pagination_size` per request)."
    );
    let d_stream = format!(
        " Every `{k}` node matching `filter` as a stream, fetching the next page when the previous one is consumed."
    );
    let d_get = format!(" The `{k}` node with this id or hfid, or `None`.");
    let d_count = format!(" How many `{k}` nodes match `filter`.");
    let d_create = format!(
        " Creates a `{k}` node (`{k}Create`) and returns it as stored. Never retried on a transient failure."
    );
    let d_update = format!(
        " Updates the `{k}` node named by `data`'s id or hfid (`{k}Update`) and returns it."
    );
    let d_upsert = format!(" Creates or updates a `{k}` node (`{k}Upsert`) and returns it.");
    let d_delete = format!(" Deletes the `{k}` node with this id or hfid (`{k}Delete`).");
    quote! {
        impl InventoryClient {
            #[doc = #d_list]
            pub async fn #list(&self, filter: &#filter, offset: u64, limit: u64) -> Result<Page<#name>, Error> {
                self.list::<#name>(filter, offset, limit).await
            }
            #[doc = #d_all]
            pub async fn #all(&self, filter: &#filter) -> Result<Vec<#name>, Error> {
                self.all::<#name>(filter).await
            }
            #[doc = #d_stream]
            pub fn #stream(&self, filter: #filter) -> impl futures::Stream<Item = Result<#name, Error>> + Send + 'static {
                self.stream::<#name>(filter)
            }
            #[doc = #d_get]
            pub async fn #get(&self, node: impl Into<NodeRef>) -> Result<Option<#name>, Error> {
                self.get::<#name>(node.into()).await
            }
            #[doc = #d_count]
            pub async fn #count(&self, filter: &#filter) -> Result<u64, Error> {
                self.count::<#name>(filter).await
            }
            #[doc = #d_create]
            pub async fn #create_m(&self, data: &#create) -> Result<#name, Error> {
                self.create::<#name>(data).await
            }
            #[doc = #d_update]
            pub async fn #update_m(&self, data: &#update) -> Result<#name, Error> {
                self.update::<#name>(data).await
            }
            #[doc = #d_upsert]
            pub async fn #upsert_m(&self, data: &#upsert) -> Result<#name, Error> {
                self.upsert::<#name>(data).await
            }
            #[doc = #d_delete]
            pub async fn #delete(&self, node: impl Into<NodeRef>) -> Result<(), Error> {
                self.delete::<#name>(node.into()).await
            }
        }
    }
}

pub(crate) fn kind_module(kind: &KindModel) -> TokenStream {
    let module_doc = format!(
        " The `{}` kind: node, filter, inputs, documents and typed methods.",
        kind.kind
    );
    let node = node_struct(kind);
    let filter = filter_struct(kind);
    let create = input_struct(kind, "Create", &kind.create);
    let update = input_struct(kind, "Update", &kind.update);
    let upsert = input_struct(kind, "Upsert", &kind.upsert);
    let imp = kind_impl(kind);
    let methods = methods(kind);
    let body = quote! {
        #node
        #filter
        #create
        #update
        #upsert
        #imp
        #methods
    };
    let imports = imports(&body);
    quote! {
        #![doc = #module_doc]
        #imports
        #body
    }
}

pub(crate) fn mod_file(kinds: &[KindModel]) -> TokenStream {
    let modules = kinds.iter().map(|k| {
        let module = ident(&k.module);
        let node = ident(&k.kind);
        let filter = format_ident!("{}Filter", k.kind);
        let create = format_ident!("{}Create", k.kind);
        let update = format_ident!("{}Update", k.kind);
        let upsert = format_ident!("{}Upsert", k.kind);
        quote! {
            pub mod #module;
            pub use #module::{#node, #filter, #create, #update, #upsert};
        }
    });
    let infos = kinds.iter().map(|k| {
        let node = ident(&k.kind);
        quote!(<#node as Kind>::INFO)
    });
    let documents = kinds.iter().flat_map(|k| {
        let node = ident(&k.kind);
        [
            "LIST_QUERY",
            "GET_QUERY",
            "COUNT_QUERY",
            "CREATE_MUTATION",
            "UPDATE_MUTATION",
            "UPSERT_MUTATION",
            "DELETE_MUTATION",
        ]
        .into_iter()
        .map(move |c| {
            let constant = Ident::new(c, Span::call_site());
            quote!(<#node as Kind>::#constant)
        })
    });
    let constants = quote! {
        /// The schema facts of every generated kind (attributes, relationships).
        pub const KINDS: &[KindInfo] = &[#(#infos),*];

        /// Every generated GraphQL document (queries and mutations of every kind).
        pub const DOCUMENTS: &[&str] = &[#(#documents),*];
    };
    let imports = imports(&constants);
    quote! {
        //! Typed code for the allow-listed kinds (`crates/inventory/codegen.toml`).
        #imports
        #(#modules)*
        mod blocking;

        #constants
    }
}
