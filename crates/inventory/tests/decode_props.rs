//! Every decoder of server and configuration input, fed arbitrary bytes and arbitrary JSON,
//! answers a value or an error and never panics: GraphQL answers (the envelope, error
//! bodies), pages of typed nodes, `DynamicNode`, token answers, and the environment parser.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Response, StatusCode};
use pacer_inventory::{
    BuiltinTag, Config, CoreAccount, DynamicNode, Selection, decode_envelope, decode_page,
    parse_token_answer,
};
use proptest::prelude::*;
use serde_json::Value;

/// Names the decoders look for, as string values, so that shapes near the expected ones
/// come up.
const STRINGS: &[&str] = &[
    "id",
    "count",
    "edges",
    "node",
    "data",
    "errors",
    "message",
    "value",
    "BuiltinTag",
    "access_token",
    "expires_in",
    "refresh_token",
];

/// Object keys: the fields the decoders read.
const KEYS: &[&str] = &[
    "id",
    "hfid",
    "display_label",
    "count",
    "edges",
    "node",
    "data",
    "errors",
    "message",
    "path",
    "extensions",
    "value",
    "name",
    "tags",
    "BuiltinTag",
    "CoreAccount",
    "access_token",
    "refresh_token",
    "expires_in",
    "refresh_expires_in",
    "detail",
    "other",
];

fn json() -> impl Strategy<Value = Value> {
    pacer_testbed::support::arbitrary_json(STRINGS, KEYS)
}

fn statuses() -> impl Strategy<Value = StatusCode> {
    (100u16..600).prop_map(|code| StatusCode::from_u16(code).unwrap())
}

fn every_decoder(body: &[u8], status: StatusCode) {
    let mut response = Response::new(Bytes::copy_from_slice(body));
    *response.status_mut() = status;
    let _ = decode_envelope(&response, "http://infrahub/graphql/main");
    let _ = parse_token_answer(body);
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        every_value_decoder(value);
    }
}

fn every_value_decoder(value: Value) {
    let selection = Selection {
        attributes: vec!["name".into(), "value".into()],
        one: vec!["node".into()],
        many: vec!["tags".into(), "edges".into()],
    };
    let _ = DynamicNode::from_json(value.clone(), &selection);
    let _ = decode_page::<BuiltinTag>(value.clone());
    let _ = decode_page::<CoreAccount>(value.clone());
    let _ = serde_json::from_value::<BuiltinTag>(value.clone());
    let _ = parse_token_answer(value.to_string().as_bytes());
    for wrap in ["data", "BuiltinTag"] {
        let wrapped = serde_json::json!({ wrap: value.clone() });
        let _ = decode_page::<BuiltinTag>(wrapped.clone());
        let _ = DynamicNode::from_json(wrapped, &selection);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), status in statuses()) {
        every_decoder(&body, status);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json(), status in statuses()) {
        every_decoder(value.to_string().as_bytes(), status);
        // As a GraphQL answer's `data` and `errors` too.
        let envelope = serde_json::json!({ "data": value.clone(), "errors": value.clone() });
        every_decoder(envelope.to_string().as_bytes(), status);
        every_value_decoder(value);
    }

    #[test]
    fn arbitrary_environment_values_never_panic(
        name in prop::sample::select(vec![
            "ADDRESS", "API_TOKEN", "USERNAME", "PASSWORD", "DEFAULT_BRANCH", "TIMEOUT",
            "RATE_LIMIT_RETRY_ENABLED", "RATE_LIMIT_MAX_RETRIES", "RATE_LIMIT_BACKOFF_BASE",
            "RATE_LIMIT_BACKOFF_MAX", "RETRY_ON_FAILURE", "RETRY_DELAY", "RETRY_MAX_DELAY",
            "MAX_RETRY_DURATION", "PAGINATION_SIZE", "MAX_CONCURRENT_EXECUTION", "PROXY",
            "TLS_INSECURE", "TLS_CA_FILE", "GLOBAL_RATE_LIMIT_TPS", "DEADLINE",
        ]),
        value in prop_oneof![
            ".{0,24}",
            any::<f64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("1e308".to_owned()),
            Just("-0".to_owned()),
            Just("http://u:p@h".to_owned()),
        ],
    ) {
        if let Ok(config) = Config::from_env_vars([(format!("INFRAHUB_{name}"), value)]) {
            // Whatever was accepted builds a stack without panicking.
            let _ = config.pacer_config().validate();
        }
    }
}
