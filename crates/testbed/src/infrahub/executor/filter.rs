//! The arguments that select nodes: `ids`, `hfid`, `<attr>__value`, `<attr>__values`,
//! `any__value`, `partial_match`.

use serde_json::Value;

use super::Exec;
use crate::graphql::Field;
use crate::infrahub::kinds::KindSchema;
use crate::infrahub::nodes::value_text;
use crate::infrahub::state::Node;

impl Exec {
    pub(super) fn matches(&self, kind: &KindSchema, field: &Field, node: &Node) -> bool {
        let partial = self.arg(field, "partial_match") == Some(Value::Bool(true));
        let equal = |stored: Option<&Value>, wanted: &Value| -> bool {
            let stored = stored.unwrap_or(&Value::Null);
            if partial {
                if let (Some(s), Some(w)) = (stored.as_str(), wanted.as_str()) {
                    return s.to_lowercase().contains(&w.to_lowercase());
                }
            }
            stored == wanted || (!stored.is_null() && value_text(stored) == value_text(wanted))
        };
        for (name, input) in &field.arguments {
            let wanted = input;
            let ok = match name.as_str() {
                "offset" | "limit" | "order" | "partial_match" => true,
                "ids" => match &wanted {
                    Value::Array(ids) => ids.iter().any(|id| id.as_str() == Some(node.id.as_str())),
                    Value::Null => true,
                    one => one.as_str() == Some(node.id.as_str()),
                },
                "hfid" => match (&wanted, kind.hfid_attr()) {
                    (Value::Array(parts), Some(attr)) => parts
                        .first()
                        .is_some_and(|p| equal(node.attrs.get(attr), p)),
                    (Value::Null, _) => true,
                    _ => false,
                },
                "any__value" => {
                    wanted.is_null() || node.attrs.values().any(|v| equal(Some(v), wanted))
                }
                other => {
                    if let Some(attr) = other.strip_suffix("__values") {
                        match &wanted {
                            Value::Array(options) => {
                                options.iter().any(|o| equal(node.attrs.get(attr), o))
                            }
                            _ => true,
                        }
                    } else if let Some(attr) = other.strip_suffix("__value") {
                        wanted.is_null() || equal(node.attrs.get(attr), wanted)
                    } else {
                        true
                    }
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }
}
