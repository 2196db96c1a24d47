//! `GET /admin/serverinfo`.

use std::sync::Arc;

use axum::extract::State;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::reply::Reply;
use super::{Keycloak, VERSION};
use crate::util::clock::unix_now;
use crate::util::response::json;

/// `GET /admin/serverinfo`: the version (not in the admin API spec, but what clients read).
pub(super) async fn serverinfo(State(kc): State<Arc<Keycloak>>, headers: HeaderMap) -> Reply {
    kc.authorize(&headers)?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "systemInfo": {
                "version": VERSION,
                "serverTime": unix_now().to_string(),
                "uptime": "0 days, 0 hours, 0 minutes",
                "javaVersion": "21",
            },
            "builtinProtocolMappers": {},
            "enums": {},
        }),
    ))
}
