//! `GET /admin/serverinfo`.

use http::StatusCode;
use serde_json::json;

use super::VERSION;
use super::extract::Authorized;
use super::reply::Reply;
use crate::util::clock::unix_now;
use crate::util::response::json;

/// `GET /admin/serverinfo`: the version (not in the admin API spec, but what clients read).
pub(super) async fn serverinfo(_: Authorized) -> Reply {
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
