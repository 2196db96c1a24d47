//! Path segments: a value (a realm, an id, a role name) percent-encoded so that it stays one
//! segment of the path, whatever it holds. A leaf: it imports nothing of the crate.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded in a path segment, so a realm
/// named `a/b?c` stays one segment: `a%2Fb%3Fc`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `value` as one percent-encoded path segment. `.` and `..` are encoded too, so
/// they cannot walk up the path.
pub(crate) fn push_segment(target: &mut String, value: &str) {
    match value {
        "." => target.push_str("%2E"),
        ".." => target.push_str("%2E%2E"),
        _ => target.extend(utf8_percent_encode(value, SEGMENT)),
    }
}

/// Appends a value that may span segments (a group path `/top/child`): each segment is
/// encoded on its own, the slashes between them are kept, a leading slash is dropped.
pub(crate) fn push_segments(target: &mut String, value: &str) {
    let value = value.strip_prefix('/').unwrap_or(value);
    for (index, segment) in value.split('/').enumerate() {
        if index > 0 {
            target.push('/');
        }
        push_segment(target, segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape() {
        let mut path = String::from("/admin/realms/");
        push_segment(&mut path, "a/b?c#d e%");
        assert_eq!(path, "/admin/realms/a%2Fb%3Fc%23d%20e%25");
        let mut path = String::new();
        push_segment(&mut path, "..");
        assert_eq!(path, "%2E%2E");
        let mut path = String::new();
        push_segments(&mut path, "/top/child ?");
        assert_eq!(path, "top/child%20%3F");
    }
}
