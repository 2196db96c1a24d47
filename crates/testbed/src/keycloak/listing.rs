//! Lists: `first`/`max` pages and case-insensitive search.

use std::collections::HashMap;

/// `first`/`max` pagination over `items`.
pub(super) fn page<T: Clone>(
    items: Vec<T>,
    query: &HashMap<String, String>,
    default_max: usize,
) -> Vec<T> {
    let first = query
        .get("first")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let max = query
        .get("max")
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(default_max, |m| if m < 0 { usize::MAX } else { m as usize });
    items.into_iter().skip(first).take(max).collect()
}

/// Whether `haystack` contains `needle`, ignoring case (Keycloak's searches).
pub(super) fn contains_ci(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}
