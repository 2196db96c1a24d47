//! OpenAPI schemas to Rust types: the subset of JSON Schema the Keycloak spec uses.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::{Map, Value};

use super::secret_names::looks_secret;

/// A Rust type for a schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    String,
    Bool,
    I32,
    I64,
    F64,
    /// Anything (`{}`): `serde_json::Value`.
    Any,
    /// An object without declared properties: `serde_json::Map<String, Value>`.
    Object,
    Vec(Box<Ty>),
    /// An object whose values all have one type: `BTreeMap<String, T>`.
    Map(Box<Ty>),
    /// A component schema.
    Named(String),
}

impl Ty {
    pub(crate) fn of(schema: &Value) -> anyhow::Result<Ty> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return ref_name(reference).map(|name| Ty::Named(name.to_owned()));
        }
        // `allOf` with a single reference is how the spec marks a deprecated or read-only ref.
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            return match all.as_slice() {
                [one] => Ty::of(one),
                _ => bail!("allOf with {} members", all.len()),
            };
        }
        let Some(kind) = schema.get("type").and_then(Value::as_str) else {
            return Ok(Ty::Any);
        };
        Ok(match kind {
            "string" => Ty::String,
            "boolean" => Ty::Bool,
            "integer" => match schema.get("format").and_then(Value::as_str) {
                Some("int32") => Ty::I32,
                _ => Ty::I64,
            },
            "number" => Ty::F64,
            "array" => Ty::Vec(Box::new(Ty::of(
                schema.get("items").context("an array without items")?,
            )?)),
            "object" => match schema.get("additionalProperties") {
                Some(inner @ Value::Object(_)) => Ty::Map(Box::new(Ty::of(inner)?)),
                _ => Ty::Object,
            },
            other => bail!("unsupported schema type {other:?}"),
        })
    }

    /// Adds the component schemas this type names.
    pub(crate) fn named(&self, out: &mut BTreeSet<String>) {
        match self {
            Ty::Named(name) => {
                out.insert(name.clone());
            }
            Ty::Vec(inner) | Ty::Map(inner) => inner.named(out),
            _ => {}
        }
    }

    /// The Rust type, with component types under `types` (e.g. `crate::types`).
    pub(crate) fn tokens(&self, types: &TokenStream) -> TokenStream {
        match self {
            Ty::String => quote!(String),
            Ty::Bool => quote!(bool),
            Ty::I32 => quote!(i32),
            Ty::I64 => quote!(i64),
            Ty::F64 => quote!(f64),
            Ty::Any => quote!(serde_json::Value),
            Ty::Object => quote!(serde_json::Map<String, serde_json::Value>),
            Ty::Vec(inner) => {
                let inner = inner.tokens(types);
                quote!(Vec<#inner>)
            }
            Ty::Map(inner) => {
                let inner = inner.tokens(types);
                quote!(std::collections::BTreeMap<String, #inner>)
            }
            Ty::Named(name) => {
                let ident = format_ident!("{name}");
                quote!(#types #ident)
            }
        }
    }

    /// The type as a borrowed method argument (`&str`, `&[T]`, `&T`).
    pub(crate) fn arg_tokens(&self, types: &TokenStream) -> TokenStream {
        match self {
            Ty::Vec(inner) => {
                let inner = inner.tokens(types);
                quote!(&[#inner])
            }
            other => {
                let ty = other.tokens(types);
                quote!(&#ty)
            }
        }
    }

    fn has_float(&self, types: &TypeSet) -> bool {
        match self {
            Ty::F64 => true,
            Ty::Vec(inner) | Ty::Map(inner) => inner.has_float(types),
            Ty::Named(name) => types.floats.contains(name),
            _ => false,
        }
    }
}

fn ref_name(reference: &str) -> anyhow::Result<&str> {
    reference
        .strip_prefix("#/components/schemas/")
        .with_context(|| format!("unsupported $ref {reference}"))
}

/// A component schema turned into Rust.
#[derive(Debug)]
pub(crate) enum Def {
    Struct { doc: String, fields: Vec<Field> },
    Enum { doc: String, variants: Vec<String> },
    Alias { doc: String, ty: Ty },
}

#[derive(Debug)]
pub(crate) struct Field {
    /// The JSON name.
    pub(crate) json: String,
    /// The Rust name.
    pub(crate) ident: String,
    pub(crate) doc: String,
    pub(crate) ty: Ty,
    /// Boxed: the field's type contains the struct itself without a `Vec` or map between.
    pub(crate) boxed: bool,
    /// What `Debug` hides of it; see [`TypeSet::mark_redactions`].
    pub(crate) redaction: Redaction,
}

/// How a field's `Debug` hides secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redaction {
    /// Shown as it is: it cannot hold text (a number, a flag), or its name and its type's
    /// name do not look secret (a nested representation redacts its own fields).
    None,
    /// `<redacted>` in place of the value.
    Whole,
    /// A settings map (`config`): its keys are shown, every value `<redacted>`.
    Values,
    /// Free-form JSON or a map: shown with the value of every key that looks secret
    /// `<redacted>`, at any depth.
    ByKey,
}

/// Every type reachable from the roots, by name.
#[derive(Debug)]
pub(crate) struct TypeSet {
    pub(crate) defs: BTreeMap<String, Def>,
    /// Types holding an `f64` somewhere (they cannot derive `Eq`).
    pub(crate) floats: BTreeSet<String>,
}

impl TypeSet {
    pub(crate) fn collect(
        schemas: &Map<String, Value>,
        roots: &BTreeSet<String>,
    ) -> anyhow::Result<TypeSet> {
        let mut defs = BTreeMap::new();
        let mut pending: Vec<String> = roots.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            if defs.contains_key(&name) {
                continue;
            }
            let schema = schemas
                .get(&name)
                .with_context(|| format!("the spec has no schema {name}"))?;
            let def = def_of(schema).with_context(|| format!("schema {name}"))?;
            let mut named = BTreeSet::new();
            match &def {
                Def::Struct { fields, .. } => fields.iter().for_each(|f| f.ty.named(&mut named)),
                Def::Alias { ty, .. } => ty.named(&mut named),
                Def::Enum { .. } => {}
            }
            pending.extend(named);
            defs.insert(name, def);
        }
        let mut set = TypeSet {
            defs,
            floats: BTreeSet::new(),
        };
        set.mark_floats();
        set.mark_boxes();
        set.mark_redactions();
        Ok(set)
    }

    /// The redaction rule, for every field of every struct (no list of fields):
    ///
    /// - a field that can hold text (a string, a list or map of them, free-form JSON) whose
    ///   name looks secret ([`looks_secret`]: `secret`, `codeSecret`,
    ///   `registrationAccessToken`, `bindCredential`, `password`...) is hidden whole;
    /// - so is a text field named `value` or ending in `Data` or `Value` of a type whose name
    ///   looks secret (`CredentialRepresentation.value`, `.secretData`, `.credentialData`);
    /// - a map named `config` or ending in `Config` (components, user federation, identity
    ///   providers, mappers: they hold `bindCredential`, `clientSecret`) shows its keys only;
    /// - any other map or free-form JSON (`attributes`, `smtpServer`) hides the value of each
    ///   key that looks secret, at any depth; so does `extra`, the fields this client does
    ///   not know, at run time.
    fn mark_redactions(&mut self) {
        let mut decisions = Vec::new();
        for (name, def) in &self.defs {
            if let Def::Struct { fields, .. } = def {
                for (index, field) in fields.iter().enumerate() {
                    decisions.push((name.clone(), index, self.redaction_of(name, field)));
                }
            }
        }
        for (name, index, redaction) in decisions {
            if let Some(Def::Struct { fields, .. }) = self.defs.get_mut(&name) {
                fields[index].redaction = redaction;
            }
        }
    }

    fn redaction_of(&self, type_name: &str, field: &Field) -> Redaction {
        let shape = self.shape(&field.ty);
        let json = field.json.as_str();
        let text = matches!(shape, Shape::Text | Shape::Map | Shape::Json);
        if text && looks_secret(json) {
            return Redaction::Whole;
        }
        let value_like = json == "value" || json.ends_with("Data") || json.ends_with("Value");
        if text && value_like && looks_secret(type_name) {
            return Redaction::Whole;
        }
        let config = json == "config" || json.ends_with("Config");
        match shape {
            Shape::Map if config => Redaction::Values,
            Shape::Json if config => Redaction::Values,
            Shape::Map | Shape::Json => Redaction::ByKey,
            _ => Redaction::None,
        }
    }

    /// What a type holds, for the redaction rule (aliases followed).
    fn shape(&self, ty: &Ty) -> Shape {
        match ty {
            Ty::String => Shape::Text,
            Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64 => Shape::Scalar,
            Ty::Any | Ty::Object => Shape::Json,
            // A map of representations: each redacts its own fields.
            Ty::Map(inner) => match self.shape(inner) {
                Shape::Struct => Shape::Struct,
                _ => Shape::Map,
            },
            Ty::Vec(inner) => match self.shape(inner) {
                Shape::Scalar => Shape::Scalar,
                Shape::Struct => Shape::Struct,
                _ => Shape::Text,
            },
            Ty::Named(name) => match self.defs.get(name) {
                Some(Def::Alias { ty, .. }) => self.shape(ty),
                Some(Def::Enum { .. }) => Shape::Scalar,
                _ => Shape::Struct,
            },
        }
    }

    fn mark_floats(&mut self) {
        loop {
            let mut changed = false;
            for (name, def) in &self.defs {
                if self.floats.contains(name) {
                    continue;
                }
                let float = match def {
                    Def::Struct { fields, .. } => fields.iter().any(|f| f.ty.has_float(self)),
                    Def::Alias { ty, .. } => ty.has_float(self),
                    Def::Enum { .. } => false,
                };
                if float {
                    self.floats.insert(name.clone());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Boxes direct (non-`Vec`, non-map) fields that lead back to their own struct.
    fn mark_boxes(&mut self) {
        let direct: BTreeMap<String, Vec<String>> = self
            .defs
            .iter()
            .map(|(name, def)| {
                let targets = match def {
                    Def::Struct { fields, .. } => fields
                        .iter()
                        .filter_map(|f| match &f.ty {
                            Ty::Named(target) => Some(target.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (name.clone(), targets)
            })
            .collect();
        let reaches = |from: &str, to: &str| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.to_owned()];
            while let Some(current) = stack.pop() {
                if current == to {
                    return true;
                }
                if seen.insert(current.clone()) {
                    stack.extend(direct.get(&current).cloned().unwrap_or_default());
                }
            }
            false
        };
        let mut boxes = Vec::new();
        for (name, def) in &self.defs {
            if let Def::Struct { fields, .. } = def {
                for (index, field) in fields.iter().enumerate() {
                    if let Ty::Named(target) = &field.ty {
                        if reaches(target, name) {
                            boxes.push((name.clone(), index));
                        }
                    }
                }
            }
        }
        for (name, index) in boxes {
            if let Some(Def::Struct { fields, .. }) = self.defs.get_mut(&name) {
                fields[index].boxed = true;
            }
        }
    }
}

/// What a field's type holds, for [`TypeSet::redaction_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Numbers, flags, enums (and lists of them): never a secret.
    Scalar,
    /// A string or a list of strings.
    Text,
    /// A map with typed values.
    Map,
    /// Free-form JSON.
    Json,
    /// A representation (which redacts its own fields).
    Struct,
}

fn def_of(schema: &Value) -> anyhow::Result<Def> {
    let doc = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let variants = values
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .context("a non-string enum value")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(Def::Enum { doc, variants });
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(Def::Alias {
            doc,
            ty: Ty::of(schema)?,
        });
    };
    let mut fields: Vec<Field> = Vec::new();
    for (json, property) in properties {
        let mut ident = snake_case(json);
        if ident == "extra" || fields.iter().any(|f| f.ident == ident) {
            ident.push('_');
        }
        fields.push(Field {
            json: json.clone(),
            ident,
            doc: property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            ty: Ty::of(property).with_context(|| format!("property {json}"))?,
            boxed: false,
            redaction: Redaction::None,
        });
    }
    Ok(Def::Struct { doc, fields })
}

/// `clientScopeId` -> `client_scope_id`, `client-uuid` -> `client_uuid`, `_id` -> `id`.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            previous_lower = false;
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("n{out}")
    } else {
        out
    }
}

/// What serde's `rename_all = "camelCase"` makes of a snake_case Rust name.
pub(crate) fn serde_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `ADMIN_VIEW` -> `AdminView`, `myProvider` -> `MyProvider`.
pub(crate) fn pascal_case(name: &str) -> String {
    let snake = if name.chars().any(|c| c.is_ascii_lowercase()) {
        snake_case(name)
    } else {
        name.to_ascii_lowercase()
    };
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake_case("clientScopeId"), "client_scope_id");
        assert_eq!(snake_case("client-uuid"), "client_uuid");
        assert_eq!(snake_case("_id"), "id");
        assert_eq!(snake_case("x5t#S256"), "x5t_s256");
        assert_eq!(
            snake_case("oauth2DeviceCodeLifespan"),
            "oauth2_device_code_lifespan"
        );
        assert_eq!(snake_case("icon_uri"), "icon_uri");
        assert_eq!(serde_camel("client_scope_id"), "clientScopeId");
        assert_eq!(pascal_case("ADMIN_VIEW"), "AdminView");
        assert_eq!(pascal_case("client_scopes"), "ClientScopes");
    }

    #[test]
    fn schema_types() {
        let ty = Ty::of(&serde_json::json!({
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}}
        }))
        .expect("maps");
        assert_eq!(ty, Ty::Map(Box::new(Ty::Vec(Box::new(Ty::String)))));
        let ty = Ty::of(&serde_json::json!({"allOf": [{"$ref": "#/components/schemas/X"}]}))
            .expect("allOf");
        assert_eq!(ty, Ty::Named("X".into()));
        assert_eq!(Ty::of(&serde_json::json!({})).expect("any"), Ty::Any);
    }
}
