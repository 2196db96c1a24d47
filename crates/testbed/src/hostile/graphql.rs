//! Just enough of a GraphQL request to answer it: the first top-level field (the kind a
//! list query asks for, or the mutation), whether it is a mutation, and `offset`/`limit`
//! (inline or as variables). Anything unreadable falls back to defaults.

use serde_json::Value;

/// The page size assumed when a query gives no `limit`.
const DEFAULT_LIMIT: u64 = 50;
/// The field answered when the document cannot be read.
const FALLBACK_FIELD: &str = "BuiltinTag";

/// What the server needs from a `POST /graphql` body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Operation {
    /// The response key of the first top-level field (`BuiltinTag`, `BuiltinTagCreate`).
    pub(super) field: String,
    pub(super) mutation: bool,
    pub(super) offset: u64,
    pub(super) limit: u64,
}

impl Operation {
    pub(super) fn read(body: &[u8]) -> Self {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let query = request.get("query").and_then(Value::as_str).unwrap_or("");
        let variables = request.get("variables").unwrap_or(&Value::Null);
        let field = first_field(query).unwrap_or(FALLBACK_FIELD).to_owned();
        Self {
            field,
            mutation: query.trim_start().starts_with("mutation"),
            offset: argument(query, variables, "offset").unwrap_or(0),
            limit: argument(query, variables, "limit").unwrap_or(DEFAULT_LIMIT),
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The first name after the document's first `{`.
fn first_field(query: &str) -> Option<&str> {
    let open = query.find('{')?;
    let rest = query[open + 1..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
    let end = rest
        .bytes()
        .position(|b| !is_name_byte(b))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The integer argument `name: 12` or `name: $var` (looked up in `variables`).
fn argument(query: &str, variables: &Value, name: &str) -> Option<u64> {
    let pattern = format!("{name}:");
    let mut search = query;
    while let Some(at) = search.find(&pattern) {
        // `xoffset:` is another argument, `$offset:` a variable definition.
        let other =
            at > 0 && matches!(search.as_bytes()[at - 1], b if is_name_byte(b) || b == b'$');
        let value = search[at + pattern.len()..].trim_start();
        search = &search[at + pattern.len()..];
        if other {
            continue;
        }
        let found = match value.strip_prefix('$') {
            Some(var) => {
                let end = var
                    .bytes()
                    .position(|b| !is_name_byte(b))
                    .unwrap_or(var.len());
                variables.get(&var[..end]).and_then(Value::as_u64)
            }
            None => {
                let end = value
                    .bytes()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(value.len());
                value[..end].parse().ok()
            }
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_kind_and_the_page_from_a_generated_list_query() {
        let body = json!({
            "query": "query BuiltinTagList($offset: Int, $limit: Int) {\n  BuiltinTag(offset: $offset, limit: $limit) {\n    count\n  }\n}\n",
            "variables": {"offset": 100, "limit": 25}
        });
        let op = Operation::read(body.to_string().as_bytes());
        assert_eq!(
            op,
            Operation {
                field: "BuiltinTag".into(),
                mutation: false,
                offset: 100,
                limit: 25
            }
        );
    }

    #[test]
    fn reads_inline_arguments_and_mutations() {
        let body = json!({"query": "query { CoreRepository(offset: 7, limit: 3) { count } }"});
        let op = Operation::read(body.to_string().as_bytes());
        assert_eq!(
            (op.field.as_str(), op.offset, op.limit),
            ("CoreRepository", 7, 3)
        );
        let body =
            json!({"query": "mutation M($data: X!) { BuiltinTagCreate(data: $data) { ok } }"});
        let op = Operation::read(body.to_string().as_bytes());
        assert!(op.mutation);
        assert_eq!(op.field, "BuiltinTagCreate");
    }

    #[test]
    fn falls_back_on_what_it_cannot_read() {
        for body in [
            &b"not json"[..],
            b"{\"query\": 3}",
            b"{\"query\": \"{ }\"}",
            b"\xff",
        ] {
            let op = Operation::read(body);
            assert_eq!(
                (op.field.as_str(), op.offset, op.limit),
                (FALLBACK_FIELD, 0, DEFAULT_LIMIT)
            );
        }
        let body =
            json!({"query": "{ X(offset: $gone, limit: 99999999999999999999999) { count } }"});
        let op = Operation::read(body.to_string().as_bytes());
        assert_eq!((op.offset, op.limit), (0, DEFAULT_LIMIT));
    }
}
