//! What the generator needs from the SDL, per kind: the node's fields (attributes, relationships,
//! plain scalars), the query field's filter arguments and the mutations' input types.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use graphql_parser::schema::{self, Definition, Type, TypeDefinition};

use super::{KindEntry, snake_case};

/// The SDL's type definitions by name.
pub(crate) struct Schema<'a> {
    types: BTreeMap<&'a str, TypeDefinition<'a, &'a str>>,
    query: &'a str,
    mutation: &'a str,
}

/// The Rust shape of a GraphQL scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    String,
    Int,
    Float,
    Bool,
    /// `GenericScalar`, JSON and anything else: kept as `serde_json::Value`.
    Json,
}

/// A GraphQL type reduced to what Rust needs: the scalar, list-ness and nullability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) scalar: Scalar,
    pub(crate) list: bool,
    pub(crate) required: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum FieldKind {
    /// A plain scalar field (`id`, `hfid`, `display_label`, `is_externally_managed`).
    Scalar(Shape),
    /// An attribute wrapper (`TextAttribute { value }`), unwrapped to its value.
    Attribute { wrapper: String, value: Shape },
    /// A relationship of cardinality one (`NestedEdged{Peer}`).
    One { peer: String },
    /// A relationship of cardinality many (`NestedPaginated{Peer}`).
    Many { peer: String },
}

#[derive(Debug, Clone)]
pub(crate) struct NodeField {
    pub(crate) name: String,
    pub(crate) kind: FieldKind,
    pub(crate) description: Option<String>,
}

/// A query argument used as a filter (`name__value: String`).
#[derive(Debug, Clone)]
pub(crate) struct FilterArg {
    pub(crate) name: String,
    /// The SDL type text, for the variable declaration (`[ID]`).
    pub(crate) sdl_type: String,
    pub(crate) shape: Shape,
}

#[derive(Debug, Clone)]
pub(crate) enum InputKind {
    Scalar(Shape),
    /// `{value: ...}` input (`TextAttributeCreate`).
    Attribute(Shape),
    /// `RelatedNodeInput`, one or a list.
    Related {
        list: bool,
    },
    /// Any other input object, kept as JSON.
    Json,
}

#[derive(Debug, Clone)]
pub(crate) struct InputField {
    pub(crate) name: String,
    pub(crate) kind: InputKind,
}

#[derive(Debug, Clone)]
pub(crate) struct InputModel {
    /// The SDL input type (`BuiltinTagCreateInput`).
    pub(crate) sdl_name: String,
    pub(crate) fields: Vec<InputField>,
}

#[derive(Debug, Clone)]
pub(crate) struct KindModel {
    pub(crate) kind: String,
    /// Attributes that are sent but never read back (secrets such as `password`).
    pub(crate) write_only: Vec<String>,
    pub(crate) module: String,
    pub(crate) method: String,
    pub(crate) description: Option<String>,
    pub(crate) fields: Vec<NodeField>,
    /// Peer kind -> whether it has `hfid` / `display_label`.
    pub(crate) peers: BTreeMap<String, (bool, bool)>,
    pub(crate) filters: Vec<FilterArg>,
    pub(crate) has_hfid_arg: bool,
    pub(crate) create: InputModel,
    pub(crate) update: InputModel,
    pub(crate) upsert: InputModel,
    pub(crate) delete_input: String,
}

impl<'a> Schema<'a> {
    pub(crate) fn parse(text: &'a str) -> anyhow::Result<Self> {
        let document = schema::parse_schema::<&str>(text)
            .map_err(|e| anyhow::anyhow!("parsing the SDL: {e}"))?;
        let mut types = BTreeMap::new();
        let mut query = "Query";
        let mut mutation = "Mutation";
        for definition in document.definitions {
            match definition {
                Definition::TypeDefinition(def) => {
                    types.insert(type_name(&def), def);
                }
                Definition::SchemaDefinition(def) => {
                    if let Some(q) = def.query {
                        query = q;
                    }
                    if let Some(m) = def.mutation {
                        mutation = m;
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            types,
            query,
            mutation,
        })
    }

    fn fields(&self, name: &str) -> Option<&[schema::Field<'a, &'a str>]> {
        match self.types.get(name)? {
            TypeDefinition::Object(o) => Some(&o.fields),
            TypeDefinition::Interface(i) => Some(&i.fields),
            _ => None,
        }
    }

    fn field(&self, on: &str, name: &str) -> Option<&schema::Field<'a, &'a str>> {
        self.fields(on)?.iter().find(|f| f.name == name)
    }

    fn input_fields(&self, name: &str) -> Option<&[schema::InputValue<'a, &'a str>]> {
        match self.types.get(name)? {
            TypeDefinition::InputObject(i) => Some(&i.fields),
            _ => None,
        }
    }

    fn shape(&self, ty: &Type<'a, &'a str>) -> Shape {
        let required = matches!(ty, Type::NonNullType(_));
        let inner = match ty {
            Type::NonNullType(inner) => inner,
            other => other,
        };
        let list = matches!(inner, Type::ListType(_));
        let scalar = match base(ty) {
            "String" | "ID" | "DateTime" => Scalar::String,
            "Int" | "BigInt" => Scalar::Int,
            "Float" => Scalar::Float,
            "Boolean" => Scalar::Bool,
            other if matches!(self.types.get(other), Some(TypeDefinition::Enum(_))) => {
                Scalar::String
            }
            _ => Scalar::Json,
        };
        Shape {
            scalar,
            list,
            required,
        }
    }

    fn is_scalar(&self, name: &str) -> bool {
        matches!(name, "String" | "ID" | "Int" | "Float" | "Boolean")
            || matches!(
                self.types.get(name),
                Some(TypeDefinition::Scalar(_) | TypeDefinition::Enum(_))
            )
    }

    pub(crate) fn kind(&self, kind: &str, entry: &KindEntry) -> anyhow::Result<KindModel> {
        let Some(TypeDefinition::Object(object)) = self.types.get(kind) else {
            bail!("no object type {kind} in the SDL (is the kind loaded in that instance?)");
        };
        let mut fields = Vec::new();
        let mut peers = BTreeMap::new();
        for field in &object.fields {
            let type_name = base(&field.field_type);
            let kind_of = if self.is_scalar(type_name) {
                Some(FieldKind::Scalar(self.shape(&field.field_type)))
            } else if type_name.starts_with("NestedEdged") {
                self.peer(type_name).map(|peer| FieldKind::One { peer })
            } else if type_name.starts_with("NestedPaginated") {
                self.field(type_name, "edges")
                    .map(|edges| base(&edges.field_type))
                    .and_then(|edge| self.peer(edge))
                    .map(|peer| FieldKind::Many { peer })
            } else {
                // An attribute wrapper has a `value`; other objects (permissions, metadata)
                // are not part of the node's data.
                self.field(type_name, "value")
                    .map(|value| FieldKind::Attribute {
                        wrapper: type_name.to_owned(),
                        value: Shape {
                            required: false,
                            ..self.shape(&value.field_type)
                        },
                    })
            };
            let Some(kind_of) = kind_of else { continue };
            if let FieldKind::One { peer } | FieldKind::Many { peer } = &kind_of {
                peers.insert(
                    peer.clone(),
                    (
                        self.field(peer, "hfid").is_some(),
                        self.field(peer, "display_label").is_some(),
                    ),
                );
            }
            fields.push(NodeField {
                name: field.name.to_owned(),
                kind: kind_of,
                description: field.description.clone(),
            });
        }
        if !fields.iter().any(|f| f.name == "id") {
            bail!("{kind} has no `id` field");
        }

        let query = self
            .field(self.query, kind)
            .with_context(|| format!("{} has no field {kind}", self.query))?;
        let attributes: Vec<&str> = fields
            .iter()
            .filter(|f| matches!(f.kind, FieldKind::Attribute { .. }))
            .filter(|f| !entry.write_only.contains(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        let mut filters = Vec::new();
        let mut has_hfid_arg = false;
        for argument in &query.arguments {
            let name = argument.name;
            let wanted = match name {
                "ids" | "partial_match" | "any__value" => true,
                "hfid" => {
                    has_hfid_arg = true;
                    true
                }
                other => other
                    .strip_suffix("__values")
                    .or_else(|| other.strip_suffix("__value"))
                    .is_some_and(|attr| attributes.contains(&attr)),
            };
            if wanted {
                filters.push(FilterArg {
                    name: name.to_owned(),
                    sdl_type: argument.value_type.to_string(),
                    shape: self.shape(&argument.value_type),
                });
            }
        }
        for needed in ["offset", "limit", "ids"] {
            if !query.arguments.iter().any(|a| a.name == needed) {
                bail!("{}.{kind} has no `{needed}` argument", self.query);
            }
        }

        let create = self.mutation_input(kind, "Create")?;
        let update = self.mutation_input(kind, "Update")?;
        let upsert = self.mutation_input(kind, "Upsert")?;
        let delete_input = self.mutation_input(kind, "Delete")?.sdl_name;

        let method = entry.method.clone().unwrap_or_else(|| snake_case(kind));
        Ok(KindModel {
            kind: kind.to_owned(),
            write_only: entry.write_only.clone(),
            module: snake_case(kind),
            method,
            description: object.description.clone(),
            fields,
            peers,
            filters,
            has_hfid_arg,
            create,
            update,
            upsert,
            delete_input,
        })
    }

    /// The peer type of a `NestedEdged*` / `Edged*` type: the type of its `node` field.
    fn peer(&self, edge_type: &str) -> Option<String> {
        self.field(edge_type, "node")
            .map(|node| base(&node.field_type).to_owned())
    }

    fn mutation_input(&self, kind: &str, suffix: &str) -> anyhow::Result<InputModel> {
        let name = format!("{kind}{suffix}");
        let field = self
            .field(self.mutation, &name)
            .with_context(|| format!("{} has no field {name}", self.mutation))?;
        let data = field
            .arguments
            .iter()
            .find(|a| a.name == "data")
            .with_context(|| format!("{}.{name} has no `data` argument", self.mutation))?;
        let sdl_name = base(&data.value_type).to_owned();
        let input = self
            .input_fields(&sdl_name)
            .with_context(|| format!("no input type {sdl_name}"))?;
        let mut fields = Vec::new();
        for value in input {
            let type_name = base(&value.value_type);
            let list = matches!(&value.value_type, Type::ListType(_))
                || matches!(&value.value_type, Type::NonNullType(inner) if matches!(**inner, Type::ListType(_)));
            let kind = if self.is_scalar(type_name) {
                InputKind::Scalar(Shape {
                    required: false,
                    ..self.shape(&value.value_type)
                })
            } else if type_name == "RelatedNodeInput"
                || self.input_fields(type_name).is_some_and(|fields| {
                    // `RelatedIPPrefixNodeInput` and friends: a peer by id or hfid.
                    fields.iter().any(|f| f.name == "id")
                        && fields.iter().any(|f| f.name == "hfid")
                        && !fields.iter().any(|f| f.name == "value")
                })
            {
                InputKind::Related { list }
            } else if let Some(inner) = self
                .input_fields(type_name)
                .and_then(|f| f.iter().find(|v| v.name == "value"))
            {
                InputKind::Attribute(Shape {
                    required: false,
                    ..self.shape(&inner.value_type)
                })
            } else {
                InputKind::Json
            };
            fields.push(InputField {
                name: value.name.to_owned(),
                kind,
            });
        }
        Ok(InputModel { sdl_name, fields })
    }
}

fn type_name<'a>(def: &TypeDefinition<'a, &'a str>) -> &'a str {
    match def {
        TypeDefinition::Scalar(t) => t.name,
        TypeDefinition::Object(t) => t.name,
        TypeDefinition::Interface(t) => t.name,
        TypeDefinition::Union(t) => t.name,
        TypeDefinition::Enum(t) => t.name,
        TypeDefinition::InputObject(t) => t.name,
    }
}

/// The named type under any list and non-null wrappers.
pub(crate) fn base<'a>(ty: &Type<'a, &'a str>) -> &'a str {
    match ty {
        Type::NamedType(name) => name,
        Type::ListType(inner) | Type::NonNullType(inner) => base(inner),
    }
}
