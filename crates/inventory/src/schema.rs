//! Schema: fetch (`GET /api/schema`), load (`POST /api/schema/load`) and check
//! (`POST /api/schema/check`), per branch.

use serde_json::{Value, json};

use crate::client::{Call, InventoryClient};
use crate::error::Error;

/// The answer to a schema load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct SchemaLoad {
    /// The schema's hash after the load.
    #[serde(default)]
    pub hash: Option<String>,
    /// The hash before it.
    #[serde(default)]
    pub previous_hash: Option<String>,
    /// Whether anything changed.
    #[serde(default)]
    pub schema_updated: bool,
}

impl InventoryClient {
    fn schema_path(&self, action: &str) -> String {
        let branch = crate::client::encode_branch(self.branch_name());
        format!("/api/schema{action}?branch={branch}")
    }

    /// The schema of this client's branch, as `GET /api/schema` returns it (`nodes`,
    /// `generics`, ...).
    pub async fn schema_fetch(&self) -> Result<Value, Error> {
        self.rest(Call::get(self.schema_path(""))).await
    }

    /// Loads schema files (each `{"version": "1.0", "nodes": [...], ...}`) into this client's
    /// branch.
    pub async fn schema_load(&self, schemas: &[Value]) -> Result<SchemaLoad, Error> {
        let body = json!({ "schemas": schemas });
        let value = self
            .rest(Call::post_json(self.schema_path("/load"), &body, false))
            .await?;
        serde_json::from_value(value).map_err(|e| Error::Decode(format!("schema load: {e}")))
    }

    /// Checks schema files against this client's branch without loading them; returns the
    /// server's diff.
    pub async fn schema_check(&self, schemas: &[Value]) -> Result<Value, Error> {
        let body = json!({ "schemas": schemas });
        // A check changes nothing: safe to send twice.
        self.rest(Call::post_json(self.schema_path("/check"), &body, true))
            .await
    }
}
