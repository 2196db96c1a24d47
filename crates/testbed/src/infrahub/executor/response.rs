//! The JSON answers of the GraphQL endpoint.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::graphql::Field;
use crate::util::response::json;

/// A document refused as a whole: no data, one error.
pub(super) fn errors_only(message: String) -> Response {
    json(
        StatusCode::OK,
        &json!({"data": null, "errors": [{"message": message}]}),
    )
}

/// Writes `value` as JSON with each object's keys in the order `fields` selects them.
fn write_ordered(out: &mut String, value: &Value, fields: &[Field], depth: usize) {
    match value {
        Value::Object(map) if !fields.is_empty() && depth < 64 => {
            out.push('{');
            let mut written: Vec<&str> = Vec::with_capacity(fields.len());
            for field in fields {
                let key = field.key();
                let Some(item) = map.get(key) else { continue };
                if written.contains(&key) {
                    continue;
                }
                if !written.is_empty() {
                    out.push(',');
                }
                written.push(key);
                out.push_str(&Value::String(key.to_owned()).to_string());
                out.push(':');
                write_ordered(out, item, &field.selection, depth + 1);
            }
            // Anything the selection does not name (none today) still goes out.
            for (key, item) in map {
                if !written.contains(&key.as_str()) {
                    if !written.is_empty() {
                        out.push(',');
                    }
                    written.push(key);
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    out.push_str(&item.to_string());
                }
            }
            out.push('}');
        }
        Value::Array(items) if depth < 64 => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ordered(out, item, fields, depth + 1);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The answer to an executed operation: `data` with its keys in selection order (serde_json's
/// map is sorted), then the resolver errors if any.
pub(super) fn answer(data: Map<String, Value>, errors: Vec<Value>, fields: &[Field]) -> Response {
    let mut body = String::from("{\"data\":");
    write_ordered(&mut body, &Value::Object(data), fields, 0);
    if !errors.is_empty() {
        body.push_str(",\"errors\":");
        body.push_str(&Value::Array(errors).to_string());
    }
    body.push('}');
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
