//! The GraphQL documents the fake Infrahub accepts: parsed by `graphql-parser`, then the one
//! operation a request runs is turned into the tree the executor walks, with fragments
//! (named and inline) expanded, variables substituted and directives dropped.
//!
//! Only the executable-document side of GraphQL is used: the fake must accept *any* kind a
//! test invents, which a server library with a static schema cannot, and one that builds a
//! schema per kind at run time would cost far more build time than this module.
//!
//! Hostile documents are bounded twice: `graphql-parser` refuses more than 50 nested
//! brackets (so parsing cannot overflow the stack), and the expansion here refuses fragment
//! spreads nested past [`MAX_DEPTH`] (a cycle ends there) and operations that expand to more
//! than [`MAX_FIELDS`] fields (fragments spreading each other twice per level).

use std::collections::HashMap;

use graphql_parser::query::{
    self as ast, Definition, FragmentDefinition, OperationDefinition, VariableDefinition,
};
use serde_json::{Map, Value};

/// Depth of fields and fragment spreads past which an operation is refused.
const MAX_DEPTH: usize = 64;

/// Fields one operation may expand to through fragments.
const MAX_FIELDS: usize = 10_000;

type Text<'q> = &'q str;
type Selection<'q> = ast::Selection<'q, Text<'q>>;
type AstValue<'q> = ast::Value<'q, Text<'q>>;

/// Query, mutation or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// The operation a request runs, ready to execute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operation {
    pub(crate) kind: OperationKind,
    /// The root fields, in selection order.
    pub(crate) fields: Vec<Field>,
}

/// One field of a selection, its arguments resolved to JSON and its own selection expanded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) alias: Option<String>,
    pub(crate) name: String,
    /// In the order the document gives them.
    pub(crate) arguments: Vec<(String, Value)>,
    /// The sub-fields, in selection order; empty for a leaf.
    pub(crate) selection: Vec<Field>,
}

impl Field {
    /// The key this field's result has in the response.
    pub(crate) fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }

    /// The value of the argument `name`, if given.
    pub(crate) fn argument(&self, name: &str) -> Option<&Value> {
        self.arguments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    }
}

/// Parses `source` and prepares the operation named `name` (or the only one) with
/// `variables` (those not given take their declared defaults, else `null`).
pub(crate) fn operation(
    source: &str,
    name: Option<&str>,
    variables: &Map<String, Value>,
) -> Result<Operation, String> {
    let document = ast::parse_query::<Text<'_>>(source).map_err(syntax_error)?;
    let mut operations = Vec::new();
    let mut fragments = HashMap::new();
    for definition in &document.definitions {
        match definition {
            Definition::Operation(operation) => operations.push(operation),
            Definition::Fragment(fragment) => {
                fragments.insert(fragment.name, fragment);
            }
        }
    }
    let chosen = match name {
        Some(wanted) => operations
            .iter()
            .find(|op| operation_name(op) == Some(wanted))
            .ok_or_else(|| format!("Unknown operation named '{wanted}'."))?,
        None if operations.len() == 1 => &operations[0],
        None => {
            return Err(
                "Must provide operation name if query contains multiple operations.".into(),
            );
        }
    };
    let (kind, definitions, selection) = match chosen {
        OperationDefinition::SelectionSet(set) => (OperationKind::Query, &[][..], set),
        OperationDefinition::Query(q) => (
            OperationKind::Query,
            &q.variable_definitions[..],
            &q.selection_set,
        ),
        OperationDefinition::Mutation(m) => (
            OperationKind::Mutation,
            &m.variable_definitions[..],
            &m.selection_set,
        ),
        OperationDefinition::Subscription(s) => (
            OperationKind::Subscription,
            &s.variable_definitions[..],
            &s.selection_set,
        ),
    };
    let mut expansion = Expansion {
        fragments,
        variables: with_defaults(definitions, variables),
        budget: MAX_FIELDS,
    };
    let mut fields = Vec::new();
    expansion.expand(&selection.items, 0, &mut fields)?;
    Ok(Operation { kind, fields })
}

fn operation_name<'q>(operation: &OperationDefinition<'q, Text<'q>>) -> Option<&'q str> {
    match operation {
        OperationDefinition::SelectionSet(_) => None,
        OperationDefinition::Query(q) => q.name,
        OperationDefinition::Mutation(m) => m.name,
        OperationDefinition::Subscription(s) => s.name,
    }
}

/// The request's variables over the defaults the operation declares.
fn with_defaults<'q>(
    definitions: &[VariableDefinition<'q, Text<'q>>],
    given: &Map<String, Value>,
) -> Map<String, Value> {
    let none = Map::new();
    let mut variables = Map::new();
    for definition in definitions {
        if let Some(default) = &definition.default_value {
            variables.insert(definition.name.to_owned(), to_json(default, &none));
        }
    }
    variables.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    variables
}

/// `graphql-parser`'s message (`query parse error: Parse error at 1:21\nUnexpected ...`) in
/// the one-line shape graphql-core gives Infrahub's clients (`Syntax Error: ...`).
fn syntax_error(error: ast::ParseError) -> String {
    let text = error.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let position = lines
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("");
    let detail: Vec<&str> = lines.collect();
    format!("Syntax Error: {} (at {position}).", detail.join("; "))
}

struct Expansion<'d, 'q> {
    fragments: HashMap<&'q str, &'d FragmentDefinition<'q, Text<'q>>>,
    variables: Map<String, Value>,
    /// Fields still allowed.
    budget: usize,
}

impl<'q> Expansion<'_, 'q> {
    /// Appends the fields `items` select to `out`: fragment spreads and inline fragments
    /// give their fields in place (type conditions are ignored: every kind here is concrete).
    fn expand(
        &mut self,
        items: &[Selection<'q>],
        depth: usize,
        out: &mut Vec<Field>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("Fragment spreads nest too deeply (or form a cycle).".into());
        }
        for item in items {
            match item {
                Selection::Field(field) => {
                    self.budget = self
                        .budget
                        .checked_sub(1)
                        .ok_or("Selection set expands to too many fields.")?;
                    let mut selection = Vec::new();
                    self.expand(&field.selection_set.items, depth + 1, &mut selection)?;
                    out.push(Field {
                        alias: field.alias.map(str::to_owned),
                        name: field.name.to_owned(),
                        arguments: field
                            .arguments
                            .iter()
                            .map(|(name, value)| {
                                ((*name).to_owned(), to_json(value, &self.variables))
                            })
                            .collect(),
                        selection,
                    });
                }
                Selection::InlineFragment(inline) => {
                    self.expand(&inline.selection_set.items, depth + 1, out)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name;
                    let fragment = *self
                        .fragments
                        .get(name)
                        .ok_or_else(|| format!("Unknown fragment '{name}'."))?;
                    self.expand(&fragment.selection_set.items, depth + 1, out)?;
                }
            }
        }
        Ok(())
    }
}

/// A GraphQL value as JSON, variables substituted (an unset one is `null`) and enum values
/// as their names. Its nesting is bounded by the parser's.
fn to_json(value: &AstValue<'_>, variables: &Map<String, Value>) -> Value {
    match value {
        AstValue::Variable(name) => variables.get(*name).cloned().unwrap_or(Value::Null),
        AstValue::Int(number) => number.as_i64().map_or(Value::Null, Value::from),
        AstValue::Float(float) => {
            serde_json::Number::from_f64(*float).map_or(Value::Null, Value::Number)
        }
        AstValue::String(text) => Value::String(text.clone()),
        AstValue::Boolean(flag) => Value::Bool(*flag),
        AstValue::Null => Value::Null,
        AstValue::Enum(name) => Value::String((*name).to_owned()),
        AstValue::List(items) => {
            Value::Array(items.iter().map(|item| to_json(item, variables)).collect())
        }
        AstValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| ((*key).to_owned(), to_json(item, variables)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn prepare(source: &str, name: Option<&str>) -> Result<Operation, String> {
        operation(source, name, &Map::new())
    }

    const TAGS: &str = r#"query Tags($name: String = "x") {
             BuiltinTag(name__value: $name, offset: 0, limit: 50) {
               count
               edges { node { id ...F name { value } } }
             }
           }
           fragment F on BuiltinTag { display_label }
           query Other { InfrahubInfo { version } }"#;

    #[test]
    fn parses_the_infrahub_shapes() {
        let tags_op = prepare(TAGS, Some("Tags")).expect("parses");
        assert_eq!(tags_op.kind, OperationKind::Query);
        let tags = &tags_op.fields[0];
        assert_eq!(tags.name, "BuiltinTag");
        assert_eq!(tags.arguments.len(), 3);
        // The declared default stands in for the variable nobody gave.
        assert_eq!(tags.argument("name__value"), Some(&json!("x")));
        assert_eq!(tags.argument("limit"), Some(&json!(50)));
        // The fragment's field takes the spread's place, between `id` and `name`.
        let node = &tags.selection[1].selection[0];
        let names: Vec<&str> = node.selection.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "display_label", "name"]);

        let given = json!({"name": "red"});
        let Value::Object(given) = given else {
            unreachable!()
        };
        let with_name = operation(TAGS, Some("Tags"), &given).expect("parses");
        assert_eq!(
            with_name.fields[0].argument("name__value"),
            Some(&json!("red"))
        );

        // Operations are chosen by name, and a name is needed when there are several.
        let other = prepare(TAGS, Some("Other")).expect("parses");
        assert_eq!(other.fields[0].name, "InfrahubInfo");
        assert_eq!(
            prepare(TAGS, Some("Nope")),
            Err("Unknown operation named 'Nope'.".into())
        );
        assert_eq!(
            prepare(TAGS, None),
            Err("Must provide operation name if query contains multiple operations.".into())
        );
    }

    #[test]
    fn parses_mutations_with_objects() {
        let create = prepare(
            r#"mutation { a: BuiltinTagCreate(data: {name: {value: "x\"y"}, tags: [{id: "1"}]}) { ok object { id } } }"#,
            None,
        )
        .expect("parses");
        assert_eq!(create.kind, OperationKind::Mutation);
        let field = &create.fields[0];
        assert_eq!(field.key(), "a");
        let data = field.argument("data").expect("data");
        assert_eq!(data["name"]["value"], "x\"y");
        assert_eq!(data["tags"][0]["id"], "1");
    }

    #[test]
    fn inline_fragments_enums_and_directives() {
        let query = prepare(
            r#"{ BuiltinTag(order: {node_metadata: ASC}) @include(if: true) {
                 ... on PaginatedBuiltinTag @skip(if: false) { count }
                 ... { edges { node { id } } }
               } }"#,
            None,
        )
        .expect("parses");
        let tags = &query.fields[0];
        assert_eq!(
            tags.argument("order"),
            Some(&json!({"node_metadata": "ASC"}))
        );
        let names: Vec<&str> = tags.selection.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["count", "edges"]);
    }

    #[test]
    fn syntax_errors_are_one_line_in_graphql_core_wording() {
        let error = prepare("{ BuiltinTag { count ", None).expect_err("refused");
        assert!(error.starts_with("Syntax Error: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
        assert_eq!(
            prepare("{ ...Missing }", None),
            Err("Unknown fragment 'Missing'.".into())
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for source in [
            "",
            "{",
            "}",
            "query",
            "{ a(",
            "{ a(b: ",
            "\"",
            "{ a }}}",
            "...",
            "{ ... }",
            "{ a(b: \"\\u12\") }",
            "{ a(b: 1e) }",
            "{ a(b: 99999999999999999999999) }",
            "\u{0}",
        ] {
            let _ = prepare(source, None);
        }
        let deep = format!("{}{}", "{ a ".repeat(10_000), "}".repeat(10_000));
        assert!(prepare(&deep, None).is_err());
        let deep_value = format!("{{ a(b: {}) }}", "[".repeat(10_000));
        assert!(prepare(&deep_value, None).is_err());
        // As deep as the parser allows still parses, on a test thread's stack.
        let deepest = format!("{}{}", "{ a ".repeat(49), "}".repeat(49));
        assert!(prepare(&deepest, None).is_ok());
        // Fragments spreading each other twice per level: refused, not expanded 2^30 times.
        let mut bomb = String::from("{ ...F0 } ");
        for i in 0..30 {
            bomb.push_str(&format!(
                "fragment F{i} on Q {{ ...F{} ...F{} }} ",
                i + 1,
                i + 1
            ));
        }
        bomb.push_str("fragment F30 on Q { a }");
        assert_eq!(
            prepare(&bomb, None),
            Err("Selection set expands to too many fields.".into())
        );
        // A fragment that spreads itself ends at the depth bound.
        let cycle = "{ ...A } fragment A on Q { ...A }";
        assert_eq!(
            prepare(cycle, None),
            Err("Fragment spreads nest too deeply (or form a cycle).".into())
        );
    }
}
