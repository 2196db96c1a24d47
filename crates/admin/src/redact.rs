//! What the generated representations' `Debug` uses to hide secrets, by the rule in
//! [`looks_secret`] (the generator decides which wrapper each field gets; see the
//! `Redaction` of `cargo xtask codegen`), and [`url_without_userinfo`] for the URLs the
//! hand-written `Debug`s print.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::secret_names::looks_secret;

/// What is printed in place of a secret.
const REDACTED: &str = "<redacted>";

/// A value hidden whole: `Some("<redacted>")` or `None`.
pub(crate) struct Whole<'a, T>(pub(crate) &'a Option<T>);

impl<T> fmt::Debug for Whole<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.as_ref().map(|_| Redact), f)
    }
}

/// A settings map (`config`): its keys, every value `<redacted>`.
pub(crate) struct Values<'a, T>(pub(crate) &'a Option<T>);

impl<T: Serialize> fmt::Debug for Values<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(value) => match serde_json::to_value(value) {
                Ok(Value::Object(map)) => {
                    f.write_str("Some(")?;
                    f.debug_map()
                        .entries(map.keys().map(|key| (key, Redact)))
                        .finish()?;
                    f.write_str(")")
                }
                _ => f.write_str("Some(<redacted>)"),
            },
        }
    }
}

/// A map or free-form JSON, with the value of each key that looks secret `<redacted>`, at
/// any depth.
pub(crate) struct ByKey<'a, T>(pub(crate) &'a T);

impl<T: Serialize> fmt::Debug for ByKey<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self.0) {
            Ok(value) => fmt::Debug::fmt(&Json(&value), f),
            Err(_) => f.write_str(REDACTED),
        }
    }
}

struct Json<'a>(&'a Value);

impl fmt::Debug for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Object(map) => f
                .debug_map()
                .entries(map.iter().map(|(key, value)| (key, Entry(key, value))))
                .finish(),
            Value::Array(items) => f.debug_list().entries(items.iter().map(Json)).finish(),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

/// A map entry's value: `<redacted>` when its key looks secret.
struct Entry<'a>(&'a str, &'a Value);

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if looks_secret(self.0) {
            f.write_str(REDACTED)
        } else {
            fmt::Debug::fmt(&Json(self.1), f)
        }
    }
}

/// `url` with the user-info of its authority (`user:password@`) shown as `***@`. A URL is
/// refused when it carries user-info only when the client is built, so the builder and a
/// [`KeycloakTokenSource`](crate::auth::KeycloakTokenSource) made directly may still hold
/// one, and `Debug` must not print its password.
pub(crate) fn url_without_userinfo(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |scheme| scheme + 3);
    let rest = url.get(start..).unwrap_or_default();
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}***{}",
            url.get(..start).unwrap_or_default(),
            rest.get(at..).unwrap_or_default()
        )),
        None => Cow::Borrowed(url),
    }
}

struct Redact;

impl fmt::Debug for Redact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_by_key_at_any_depth() {
        let value = serde_json::json!({
            "name": "ldap",
            "nested": [{"bindCredential": "canary-1"}],
            "clientSecret": {"deep": "canary-2"},
        });
        let shown = format!("{:?}", ByKey(&value));
        assert!(shown.contains("ldap"), "{shown}");
        assert!(!shown.contains("canary"), "{shown}");
        let config: Option<std::collections::BTreeMap<String, Vec<String>>> =
            Some([("bindDn".to_owned(), vec!["canary-3".to_owned()])].into());
        let shown = format!("{:?}", Values(&config));
        assert!(
            shown.contains("bindDn") && !shown.contains("canary"),
            "{shown}"
        );
        assert_eq!(format!("{:?}", Whole(&Some("canary"))), "Some(<redacted>)");
        assert_eq!(format!("{:?}", Whole::<String>(&None)), "None");
    }

    #[test]
    fn user_info_is_hidden_in_urls() {
        for (url, shown) in [
            (
                "https://u:canary-4@kc.example/auth",
                "https://***@kc.example/auth",
            ),
            ("http://u:p@ss:canary-5@kc:8080", "http://***@kc:8080"),
            ("u:canary-6@kc/realms", "***@kc/realms"),
            ("https://kc.example/a@b", "https://kc.example/a@b"),
            ("https://kc.example?q=a@b", "https://kc.example?q=a@b"),
            ("", ""),
        ] {
            assert_eq!(url_without_userinfo(url), shown, "{url}");
        }
    }
}
