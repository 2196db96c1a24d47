//! A small GraphQL executable-document parser: enough of the language for the query shapes
//! Infrahub clients send (operations with variables, fields with aliases and arguments,
//! nested selections, named and inline fragments; directives are parsed and ignored).
//!
//! Hand-rolled rather than taken from a GraphQL server library: the fake must accept *any*
//! kind name a test invents, which a static schema cannot, and a dynamic schema built per
//! kind would cost far more compile time than this module on a 2-core builder.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Nesting depth past which a document is refused, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// Fields one selection set may expand to through fragments, so fragments that spread each
/// other several times cannot blow up exponentially.
const MAX_FIELDS: usize = 10_000;

/// A GraphQL input value, before variables are substituted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    Variable(String),
    Literal(Value),
    Enum(String),
    List(Vec<Input>),
    Object(Vec<(String, Input)>),
}

impl Input {
    /// The JSON value with variables substituted (an unset variable is `null`).
    pub(crate) fn resolve(&self, variables: &Map<String, Value>) -> Value {
        match self {
            Input::Variable(name) => variables.get(name).cloned().unwrap_or(Value::Null),
            Input::Literal(value) => value.clone(),
            Input::Enum(name) => Value::String(name.clone()),
            Input::List(items) => {
                Value::Array(items.iter().map(|i| i.resolve(variables)).collect())
            }
            Input::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.resolve(variables)))
                    .collect(),
            ),
        }
    }
}

/// One field of a selection set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) alias: Option<String>,
    pub(crate) name: String,
    pub(crate) arguments: Vec<(String, Input)>,
    pub(crate) selection: Vec<Selection>,
}

impl Field {
    /// The key this field's result has in the response.
    pub(crate) fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// An item of a selection set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    Field(Field),
    Spread(String),
    Inline(Vec<Selection>),
}

/// Query, mutation or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// One operation of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operation {
    pub(crate) kind: OperationKind,
    pub(crate) name: Option<String>,
    /// Variable name -> default value.
    pub(crate) defaults: Vec<(String, Input)>,
    pub(crate) selection: Vec<Selection>,
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Document {
    pub(crate) operations: Vec<Operation>,
    pub(crate) fragments: HashMap<String, Vec<Selection>>,
}

impl Document {
    /// Replaces fragment spreads and inline fragments by their fields (type conditions are
    /// ignored: every kind here is concrete).
    pub(crate) fn flatten(&self, selection: &[Selection]) -> Result<Vec<Field>, String> {
        let mut out = Vec::new();
        self.flatten_into(selection, &mut out, 0)?;
        Ok(out)
    }

    fn flatten_into(
        &self,
        selection: &[Selection],
        out: &mut Vec<Field>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("Fragment spreads nest too deeply (or form a cycle).".into());
        }
        for item in selection {
            match item {
                Selection::Field(field) => {
                    if out.len() >= MAX_FIELDS {
                        return Err("Selection set expands to too many fields.".into());
                    }
                    out.push(field.clone());
                }
                Selection::Inline(inner) => self.flatten_into(inner, out, depth + 1)?,
                Selection::Spread(name) => {
                    let fragment = self
                        .fragments
                        .get(name)
                        .ok_or_else(|| format!("Unknown fragment '{name}'."))?;
                    self.flatten_into(fragment, out, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
}

fn lex(source: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ':' | '=' | '@' | '$' | '!' | '|' | '&' => {
                tokens.push(Token::Punct(c));
                i += 1;
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                    tokens.push(Token::Spread);
                    i += 3;
                } else {
                    return Err("Syntax Error: Unexpected '.'.".into());
                }
            }
            '"' => {
                if chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') {
                    // Block string: raw up to the closing triple quote.
                    let start = i + 3;
                    let mut j = start;
                    loop {
                        if j >= chars.len() {
                            return Err("Syntax Error: Unterminated string.".into());
                        }
                        if chars[j] == '"'
                            && chars.get(j + 1) == Some(&'"')
                            && chars.get(j + 2) == Some(&'"')
                        {
                            break;
                        }
                        j += 1;
                    }
                    tokens.push(Token::Str(chars[start..j].iter().collect()));
                    i = j + 3;
                } else {
                    let mut value = String::new();
                    i += 1;
                    loop {
                        let Some(&ch) = chars.get(i) else {
                            return Err("Syntax Error: Unterminated string.".into());
                        };
                        i += 1;
                        match ch {
                            '"' => break,
                            '\n' => return Err("Syntax Error: Unterminated string.".into()),
                            '\\' => {
                                let Some(&esc) = chars.get(i) else {
                                    return Err("Syntax Error: Unterminated string.".into());
                                };
                                i += 1;
                                match esc {
                                    '"' => value.push('"'),
                                    '\\' => value.push('\\'),
                                    '/' => value.push('/'),
                                    'b' => value.push('\u{8}'),
                                    'f' => value.push('\u{c}'),
                                    'n' => value.push('\n'),
                                    'r' => value.push('\r'),
                                    't' => value.push('\t'),
                                    'u' => {
                                        let hex: String = chars.iter().skip(i).take(4).collect();
                                        let code = u32::from_str_radix(&hex, 16).map_err(|_| {
                                            "Syntax Error: Invalid Unicode escape.".to_owned()
                                        })?;
                                        value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                        i += 4;
                                    }
                                    other => {
                                        return Err(format!(
                                            "Syntax Error: Invalid character escape sequence: '\\{other}'."
                                        ));
                                    }
                                }
                            }
                            other => value.push(other),
                        }
                    }
                    tokens.push(Token::Str(value));
                }
            }
            '-' | '0'..='9' => {
                let start = i;
                i += 1;
                let mut float = false;
                while let Some(&ch) = chars.get(i) {
                    if ch.is_ascii_digit() {
                        i += 1;
                    } else if matches!(ch, '.' | 'e' | 'E' | '+' | '-') && i > start {
                        float = true;
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                let bad = || format!("Syntax Error: Invalid number '{text}'.");
                if float {
                    tokens.push(Token::Float(text.parse().map_err(|_| bad())?));
                } else {
                    tokens.push(Token::Int(text.parse().map_err(|_| bad())?));
                }
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|ch| *ch == '_' || ch.is_ascii_alphanumeric())
                {
                    i += 1;
                }
                tokens.push(Token::Name(chars[start..i].iter().collect()));
            }
            other => return Err(format!("Syntax Error: Unexpected character '{other}'.")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Parses a GraphQL executable document.
pub(crate) fn parse(source: &str) -> Result<Document, String> {
    let mut parser = Parser {
        tokens: lex(source)?,
        pos: 0,
        depth: 0,
    };
    let mut document = Document::default();
    while parser.peek().is_some() {
        match parser.peek() {
            Some(Token::Punct('{')) => {
                let selection = parser.selection_set()?;
                document.operations.push(Operation {
                    kind: OperationKind::Query,
                    name: None,
                    defaults: Vec::new(),
                    selection,
                });
            }
            Some(Token::Name(word)) if word == "fragment" => {
                parser.pos += 1;
                let name = parser.name()?;
                parser.expect_name("on")?;
                parser.name()?;
                parser.directives()?;
                let selection = parser.selection_set()?;
                document.fragments.insert(name, selection);
            }
            Some(Token::Name(word)) => {
                let kind = match word.as_str() {
                    "query" => OperationKind::Query,
                    "mutation" => OperationKind::Mutation,
                    "subscription" => OperationKind::Subscription,
                    other => return Err(format!("Syntax Error: Unexpected Name '{other}'.")),
                };
                parser.pos += 1;
                let name = match parser.peek() {
                    Some(Token::Name(_)) => Some(parser.name()?),
                    _ => None,
                };
                let defaults = parser.variable_definitions()?;
                parser.directives()?;
                let selection = parser.selection_set()?;
                document.operations.push(Operation {
                    kind,
                    name,
                    defaults,
                    selection,
                });
            }
            Some(other) => return Err(format!("Syntax Error: Unexpected {other:?}.")),
            None => break,
        }
    }
    if document.operations.is_empty() {
        return Err("Syntax Error: Unexpected <EOF>.".into());
    }
    Ok(document)
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| "Syntax Error: Unexpected <EOF>.".to_owned())?;
        self.pos += 1;
        Ok(token)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "Syntax Error: Expected '{c}', found {}.",
                self.describe()
            ))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "<EOF>".into(),
            Some(Token::Name(n)) => format!("Name '{n}'"),
            Some(Token::Punct(p)) => format!("'{p}'"),
            Some(other) => format!("{other:?}"),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next()? {
            Token::Name(name) => Ok(name),
            _ => {
                self.pos -= 1;
                Err(format!(
                    "Syntax Error: Expected Name, found {}.",
                    self.describe()
                ))
            }
        }
    }

    fn expect_name(&mut self, word: &str) -> Result<(), String> {
        let name = self.name()?;
        if name == word {
            Ok(())
        } else {
            Err(format!(
                "Syntax Error: Expected '{word}', found Name '{name}'."
            ))
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err("Syntax Error: Document nests too deeply.".into())
        } else {
            Ok(())
        }
    }

    fn variable_definitions(&mut self) -> Result<Vec<(String, Input)>, String> {
        let mut defaults = Vec::new();
        if !self.eat('(') {
            return Ok(defaults);
        }
        while !self.eat(')') {
            self.expect('$')?;
            let name = self.name()?;
            self.expect(':')?;
            self.skip_type()?;
            if self.eat('=') {
                defaults.push((name, self.value(true)?));
            }
            self.directives()?;
        }
        Ok(defaults)
    }

    fn skip_type(&mut self) -> Result<(), String> {
        self.enter()?;
        if self.eat('[') {
            self.skip_type()?;
            self.expect(']')?;
        } else {
            self.name()?;
        }
        self.eat('!');
        self.depth -= 1;
        Ok(())
    }

    fn directives(&mut self) -> Result<(), String> {
        while self.eat('@') {
            self.name()?;
            self.arguments()?;
        }
        Ok(())
    }

    fn arguments(&mut self) -> Result<Vec<(String, Input)>, String> {
        let mut arguments = Vec::new();
        if !self.eat('(') {
            return Ok(arguments);
        }
        while !self.eat(')') {
            let name = self.name()?;
            self.expect(':')?;
            arguments.push((name, self.value(false)?));
        }
        Ok(arguments)
    }

    fn value(&mut self, constant: bool) -> Result<Input, String> {
        self.enter()?;
        let value = match self.next()? {
            Token::Punct('$') if !constant => Input::Variable(self.name()?),
            Token::Int(n) => Input::Literal(Value::from(n)),
            Token::Float(f) => {
                Input::Literal(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
            }
            Token::Str(s) => Input::Literal(Value::String(s)),
            Token::Name(n) => match n.as_str() {
                "true" => Input::Literal(Value::Bool(true)),
                "false" => Input::Literal(Value::Bool(false)),
                "null" => Input::Literal(Value::Null),
                _ => Input::Enum(n),
            },
            Token::Punct('[') => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value(constant)?);
                }
                Input::List(items)
            }
            Token::Punct('{') => {
                let mut fields = Vec::new();
                while !self.eat('}') {
                    let name = self.name()?;
                    self.expect(':')?;
                    fields.push((name, self.value(constant)?));
                }
                Input::Object(fields)
            }
            other => return Err(format!("Syntax Error: Unexpected {other:?}.")),
        };
        self.depth -= 1;
        Ok(value)
    }

    fn selection_set(&mut self) -> Result<Vec<Selection>, String> {
        self.enter()?;
        self.expect('{')?;
        let mut items = Vec::new();
        while !self.eat('}') {
            if self.peek() == Some(&Token::Spread) {
                self.pos += 1;
                match self.peek() {
                    Some(Token::Name(word)) if word == "on" => {
                        self.pos += 1;
                        self.name()?;
                        self.directives()?;
                        items.push(Selection::Inline(self.selection_set()?));
                    }
                    Some(Token::Name(_)) => {
                        let name = self.name()?;
                        self.directives()?;
                        items.push(Selection::Spread(name));
                    }
                    _ => {
                        self.directives()?;
                        items.push(Selection::Inline(self.selection_set()?));
                    }
                }
                continue;
            }
            let first = self.name()?;
            let (alias, name) = if self.eat(':') {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let arguments = self.arguments()?;
            self.directives()?;
            let selection = if self.peek() == Some(&Token::Punct('{')) {
                self.selection_set()?
            } else {
                Vec::new()
            };
            items.push(Selection::Field(Field {
                alias,
                name,
                arguments,
                selection,
            }));
        }
        if items.is_empty() {
            return Err("Syntax Error: Expected Name, found '}'.".into());
        }
        self.depth -= 1;
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_infrahub_shapes() {
        let document = parse(
            r#"query Tags($name: String = "x") {
                 BuiltinTag(name__value: $name, offset: 0, limit: 50) {
                   count
                   edges { node { id ...F name { value } } }
                 }
               }
               fragment F on BuiltinTag { display_label }"#,
        )
        .expect("parses");
        let operation = &document.operations[0];
        assert_eq!(operation.kind, OperationKind::Query);
        assert_eq!(operation.name.as_deref(), Some("Tags"));
        let fields = document.flatten(&operation.selection).expect("flattens");
        assert_eq!(fields[0].name, "BuiltinTag");
        assert_eq!(fields[0].arguments.len(), 3);
        assert!(document.fragments.contains_key("F"));
    }

    #[test]
    fn parses_mutations_with_objects() {
        let document = parse(
            r#"mutation { a: BuiltinTagCreate(data: {name: {value: "x\"y"}, tags: [{id: "1"}]}) { ok object { id } } }"#,
        )
        .expect("parses");
        let Selection::Field(field) = &document.operations[0].selection[0] else {
            panic!("a field");
        };
        assert_eq!(field.key(), "a");
        let data = field.arguments[0].1.resolve(&Map::new());
        assert_eq!(data["name"]["value"], "x\"y");
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
            "\u{0}",
        ] {
            let _ = parse(source);
        }
        let deep = format!("{}{}", "{ a ".repeat(10_000), "}".repeat(10_000));
        assert!(parse(&deep).is_err());
        let deep_value = format!("{{ a(b: {}) }}", "[".repeat(10_000));
        assert!(parse(&deep_value).is_err());
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
        let document = parse(&bomb).expect("parses");
        assert!(document.flatten(&document.operations[0].selection).is_err());
    }
}
