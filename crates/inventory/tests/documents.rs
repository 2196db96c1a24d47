//! Every GraphQL document the client sends (generated and hand-written) is valid against the
//! SDL it was generated from: each field exists on its parent type, each argument exists on
//! its field, required arguments are given, variables are declared, used, and have types
//! compatible with the arguments they feed, and leaf/object selections are well formed.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use graphql_parser::query::{self, Definition, OperationDefinition, Selection, SelectionSet};
use graphql_parser::schema::{self, Type, TypeDefinition};

const SDL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/specs/infrahub-1.10.6.graphql"
);

struct Schema<'a> {
    types: BTreeMap<&'a str, TypeDefinition<'a, &'a str>>,
}

type Fields<'s, 'a> = &'s [schema::Field<'a, &'a str>];

impl<'a> Schema<'a> {
    fn parse(text: &'a str) -> Self {
        let document = schema::parse_schema::<&str>(text).unwrap();
        let mut types = BTreeMap::new();
        for definition in document.definitions {
            if let schema::Definition::TypeDefinition(def) = definition {
                let name = match &def {
                    TypeDefinition::Scalar(t) => t.name,
                    TypeDefinition::Object(t) => t.name,
                    TypeDefinition::Interface(t) => t.name,
                    TypeDefinition::Union(t) => t.name,
                    TypeDefinition::Enum(t) => t.name,
                    TypeDefinition::InputObject(t) => t.name,
                };
                types.insert(name, def);
            }
        }
        Self { types }
    }

    fn fields(&self, name: &str) -> Option<Fields<'_, 'a>> {
        match self.types.get(name)? {
            TypeDefinition::Object(o) => Some(&o.fields),
            TypeDefinition::Interface(i) => Some(&i.fields),
            _ => None,
        }
    }

    fn is_leaf(&self, name: &str) -> bool {
        matches!(name, "String" | "Int" | "Float" | "Boolean" | "ID")
            || matches!(
                self.types.get(name),
                Some(TypeDefinition::Scalar(_) | TypeDefinition::Enum(_))
            )
    }
}

fn base<'a>(ty: &Type<'a, &'a str>) -> &'a str {
    match ty {
        Type::NamedType(name) => name,
        Type::ListType(inner) | Type::NonNullType(inner) => base(inner),
    }
}

/// GraphQL's "are types compatible" for a variable feeding an argument.
fn compatible<'a, 'b>(variable: &Type<'a, &'a str>, argument: &Type<'b, &'b str>) -> bool {
    match (variable, argument) {
        (Type::NonNullType(v), Type::NonNullType(a)) => compatible(v, a),
        (_, Type::NonNullType(_)) => false,
        (Type::NonNullType(v), a) => compatible(v, a),
        (Type::ListType(v), Type::ListType(a)) => compatible(v, a),
        (Type::NamedType(v), Type::NamedType(a)) => v == a,
        _ => false,
    }
}

struct Checker<'s, 'a> {
    schema: &'s Schema<'a>,
    variables: BTreeMap<String, Type<'a, &'a str>>,
    used: BTreeSet<String>,
    errors: Vec<String>,
}

impl<'a> Checker<'_, 'a> {
    fn selection(&mut self, on: &str, set: &SelectionSet<'a, &'a str>, path: &str) {
        let Some(fields) = self.schema.fields(on) else {
            self.errors.push(format!("{path}: {on} has no fields"));
            return;
        };
        for item in &set.items {
            let Selection::Field(field) = item else {
                self.errors
                    .push(format!("{path}: fragments are not expected"));
                continue;
            };
            let here = format!("{path}.{}", field.name);
            if field.name == "__typename" {
                if !field.selection_set.items.is_empty() {
                    self.errors
                        .push(format!("{here}: __typename has no subfields"));
                }
                continue;
            }
            let Some(definition) = fields.iter().find(|f| f.name == field.name) else {
                self.errors
                    .push(format!("{here}: no field {} on {on}", field.name));
                continue;
            };
            for (name, value) in &field.arguments {
                let Some(argument) = definition.arguments.iter().find(|a| a.name == *name) else {
                    self.errors.push(format!("{here}: no argument {name}"));
                    continue;
                };
                self.value(&here, name, value, &argument.value_type);
            }
            for argument in &definition.arguments {
                if matches!(argument.value_type, Type::NonNullType(_))
                    && argument.default_value.is_none()
                    && !field.arguments.iter().any(|(n, _)| *n == argument.name)
                {
                    self.errors.push(format!(
                        "{here}: required argument {} missing",
                        argument.name
                    ));
                }
            }
            let target = base(&definition.field_type);
            match (
                self.schema.is_leaf(target),
                field.selection_set.items.is_empty(),
            ) {
                (true, true) => {}
                (true, false) => self
                    .errors
                    .push(format!("{here}: {target} is a leaf, but has a selection")),
                (false, true) => self
                    .errors
                    .push(format!("{here}: {target} needs a selection")),
                (false, false) => self.selection(target, &field.selection_set, &here),
            }
        }
    }

    fn value(
        &mut self,
        here: &str,
        name: &str,
        value: &query::Value<'a, &'a str>,
        argument: &Type<'a, &'a str>,
    ) {
        match value {
            query::Value::Variable(variable) => {
                self.used.insert(variable.to_string());
                match self.variables.get(*variable) {
                    None => self
                        .errors
                        .push(format!("{here}: ${variable} is not declared")),
                    Some(declared) if !compatible(declared, argument) => self.errors.push(format!(
                        "{here}({name}): ${variable}: {declared} cannot feed {argument}"
                    )),
                    Some(_) => {}
                }
            }
            query::Value::Boolean(_) if base(argument) != "Boolean" => {
                self.errors
                    .push(format!("{here}({name}): a Boolean for {argument}"));
            }
            query::Value::Int(_) if !matches!(base(argument), "Int" | "BigInt" | "Float") => {
                self.errors
                    .push(format!("{here}({name}): an Int for {argument}"));
            }
            query::Value::String(_) if !matches!(base(argument), "String" | "ID") => {
                self.errors
                    .push(format!("{here}({name}): a String for {argument}"));
            }
            _ => {}
        }
    }
}

fn validate<'a>(schema: &Schema<'a>, text: &'a str) -> Vec<String> {
    let document = match query::parse_query::<&str>(text) {
        Ok(document) => document,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let mut errors = Vec::new();
    for definition in &document.definitions {
        let Definition::Operation(operation) = definition else {
            errors.push("unexpected fragment".to_owned());
            continue;
        };
        let (root, variables, set, name) = match operation {
            OperationDefinition::Query(q) => {
                ("Query", &q.variable_definitions, &q.selection_set, q.name)
            }
            OperationDefinition::Mutation(m) => (
                "Mutation",
                &m.variable_definitions,
                &m.selection_set,
                m.name,
            ),
            OperationDefinition::SelectionSet(s) => ("Query", &Vec::new(), s, None),
            OperationDefinition::Subscription(_) => {
                errors.push("unexpected subscription".to_owned());
                continue;
            }
        };
        let mut checker = Checker {
            schema,
            variables: variables
                .iter()
                .map(|v| (v.name.to_string(), v.var_type.clone()))
                .collect(),
            used: BTreeSet::new(),
            errors: Vec::new(),
        };
        for variable in variables {
            if !schema.types.contains_key(base(&variable.var_type))
                && !schema.is_leaf(base(&variable.var_type))
            {
                checker.errors.push(format!(
                    "${}: unknown type {}",
                    variable.name, variable.var_type
                ));
            }
        }
        checker.selection(root, set, name.unwrap_or(root));
        for variable in checker.variables.keys() {
            if !checker.used.contains(variable) {
                checker
                    .errors
                    .push(format!("${variable} is declared but unused"));
            }
        }
        errors.extend(checker.errors);
    }
    errors
}

#[test]
fn every_generated_and_hand_written_document_is_valid_against_the_sdl() {
    let text = std::fs::read_to_string(SDL).unwrap();
    let schema = Schema::parse(&text);
    let documents: Vec<&str> = pacer_inventory::DOCUMENTS
        .iter()
        .chain(pacer_inventory::HAND_WRITTEN_DOCUMENTS)
        .copied()
        .collect();
    // 9 kinds x 7 documents, plus the hand-written ones.
    assert_eq!(pacer_inventory::DOCUMENTS.len(), 9 * 7);
    let mut failures = Vec::new();
    for document in &documents {
        for error in validate(&schema, document) {
            failures.push(format!("{error}\n  in:\n{document}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_validator_catches_wrong_fields_arguments_and_types() {
    let text = std::fs::read_to_string(SDL).unwrap();
    let schema = Schema::parse(&text);
    let cases = [
        (
            "query { BuiltinTag { count edges { node { colour { value } } } } }",
            "no field colour",
        ),
        (
            "query { BuiltinTag(colour__value: \"x\") { count } }",
            "no argument colour__value",
        ),
        (
            "query Q($o: String) { BuiltinTag(offset: $o) { count } }",
            "cannot feed",
        ),
        (
            "query Q($o: Int) { BuiltinTag { count } }",
            "declared but unused",
        ),
        (
            "query { BuiltinTag { count edges { node { name } } } }",
            "needs a selection",
        ),
        ("query { BuiltinTag { count { value } } }", "is a leaf"),
        (
            "mutation { BuiltinTagCreate { ok } }",
            "required argument data missing",
        ),
        (
            "mutation M($data: BuiltinTagCreateInput) { BuiltinTagCreate(data: $data) { ok } }",
            "cannot feed",
        ),
        (
            "query { BuiltinTag(offset: \"1\") { count } }",
            "a String for Int",
        ),
    ];
    for (document, expected) in cases {
        let errors = validate(&schema, document);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{document}: expected {expected:?}, got {errors:?}"
        );
    }
}

#[test]
fn generated_node_selections_cover_the_kind_and_skip_write_only_attributes() {
    use pacer_inventory::Kind;
    let list = pacer_inventory::BuiltinTag::LIST_QUERY;
    for needle in [
        "name {",
        "description {",
        "member_of_groups {",
        "$offset: Int",
        "$name__value: String",
    ] {
        assert!(list.contains(needle), "{needle} missing from\n{list}");
    }
    let account = pacer_inventory::CoreAccount::LIST_QUERY;
    assert!(!account.contains("password"), "{account}");
    assert!(
        pacer_inventory::CoreAccount::INFO
            .attributes
            .contains(&"password")
    );
}
