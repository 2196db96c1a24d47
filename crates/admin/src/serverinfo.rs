//! `GET /admin/serverinfo`, which the OpenAPI description lacks: hand-written, only what a
//! client needs (the version), everything else kept in `extra`.

use http::Method;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::client::NamespacedClient;
use crate::error::Result;

/// The server information Keycloak reports (a small typed part of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// The server's system information, with its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_info: Option<SystemInfo>,
    /// Everything else (providers, themes, enums ...), as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `systemInfo` of [`ServerInfo`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    /// The Keycloak version, e.g. `26.6.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Other fields, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ServerInfo {
    /// The Keycloak version, if reported.
    pub fn version(&self) -> Option<&str> {
        self.system_info.as_ref()?.version.as_deref()
    }
}

impl NamespacedClient {
    /// `GET /admin/serverinfo`: the server's version and capabilities.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        self.fetch(Call::new(Method::GET, "/admin/serverinfo".to_owned()))
            .await
    }
}
