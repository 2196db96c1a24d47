//! Path segments: ids and names percent-encoded in `Location`s, decoded from raw paths.

/// One path segment, percent-encoded as Keycloak's URI builder does.
pub(super) fn encode_segment(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// One path segment, percent-decoded (a `+` stays a `+`).
pub(super) fn decode_segment(value: &str) -> String {
    let plus_kept = value.replace('+', "%2B");
    form_urlencoded::parse(format!("x={plus_kept}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
