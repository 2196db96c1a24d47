//! Branches: list, get, create, delete, merge, rebase (GraphQL, on the default branch's
//! endpoint, as the SDK does).

use serde_json::{Value, json};

use crate::client::InventoryClient;
use crate::error::Error;

/// A branch as Infrahub reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct Branch {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// The branch it was created from.
    #[serde(default)]
    pub origin_branch: Option<String>,
    /// When it was branched.
    #[serde(default)]
    pub branched_from: Option<String>,
    /// `OPEN`, `NEED_REBASE`, ...
    pub status: String,
    /// Whether it is synchronised with Git repositories.
    #[serde(default)]
    pub sync_with_git: Option<bool>,
    /// Whether it is the default branch.
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Whether its schema differs from its origin's.
    #[serde(default)]
    pub has_schema_changes: Option<bool>,
}

/// Lists branches (`$name` narrows to one).
pub const BRANCH_QUERY: &str = "query Branch($name: String) {\n  Branch(name: $name) {\n      id\n      name\n      description\n      origin_branch\n      branched_from\n      status\n      sync_with_git\n      is_default\n      has_schema_changes\n  }\n}\n";
/// Creates a branch.
pub const BRANCH_CREATE_MUTATION: &str = "mutation BranchCreate($data: BranchCreateInput!) {\n  BranchCreate(data: $data, wait_until_completion: true) {\n    ok\n    object {\n      id\n      name\n      description\n      origin_branch\n      branched_from\n      status\n      sync_with_git\n      is_default\n      has_schema_changes\n    }\n  }\n}\n";
/// Deletes a branch.
pub const BRANCH_DELETE_MUTATION: &str = "mutation BranchDelete($data: BranchDeleteInput!) {\n  BranchDelete(data: $data, wait_until_completion: true) {\n    ok\n  }\n}\n";
/// Merges a branch into the default branch.
pub const BRANCH_MERGE_MUTATION: &str = "mutation BranchMerge($data: BranchNameInput!) {\n  BranchMerge(data: $data, wait_until_completion: true) {\n    ok\n    object {\n      id\n      name\n      description\n      origin_branch\n      branched_from\n      status\n      sync_with_git\n      is_default\n      has_schema_changes\n    }\n  }\n}\n";
/// Rebases a branch on the default branch.
pub const BRANCH_REBASE_MUTATION: &str = "mutation BranchRebase($data: BranchNameInput!) {\n  BranchRebase(data: $data, wait_until_completion: true) {\n    ok\n    object {\n      id\n      name\n      description\n      origin_branch\n      branched_from\n      status\n      sync_with_git\n      is_default\n      has_schema_changes\n    }\n  }\n}\n";

fn decode<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Decode(format!("{what}: {e}")))
}

impl InventoryClient {
    fn default_branch(&self) -> &str {
        &self.config().default_branch
    }

    /// Every branch.
    pub async fn branch_list(&self) -> Result<Vec<Branch>, Error> {
        let data = self
            .execute_graphql(BRANCH_QUERY, None, Some(self.default_branch()))
            .await?;
        decode(data["Branch"].clone(), "Branch")
    }

    /// The branch named `name`, if it exists.
    pub async fn branch_get(&self, name: &str) -> Result<Option<Branch>, Error> {
        let data = self
            .execute_graphql(
                BRANCH_QUERY,
                Some(json!({ "name": name })),
                Some(self.default_branch()),
            )
            .await?;
        let branches: Vec<Branch> = decode(data["Branch"].clone(), "Branch")?;
        Ok(branches.into_iter().find(|b| b.name == name))
    }

    /// Creates branch `name` from the default branch.
    pub async fn branch_create(
        &self,
        name: &str,
        description: Option<&str>,
        sync_with_git: bool,
    ) -> Result<Branch, Error> {
        let mut data = json!({ "name": name, "sync_with_git": sync_with_git });
        if let Some(description) = description {
            data["description"] = json!(description);
        }
        let result = self
            .execute_graphql(
                BRANCH_CREATE_MUTATION,
                Some(json!({ "data": data })),
                Some(self.default_branch()),
            )
            .await?;
        decode(result["BranchCreate"]["object"].clone(), "BranchCreate")
    }

    /// Deletes branch `name`.
    pub async fn branch_delete(&self, name: &str) -> Result<(), Error> {
        self.execute_graphql(
            BRANCH_DELETE_MUTATION,
            Some(json!({ "data": { "name": name } })),
            Some(self.default_branch()),
        )
        .await?;
        Ok(())
    }

    /// Merges branch `name` into the default branch.
    pub async fn branch_merge(&self, name: &str) -> Result<Branch, Error> {
        let result = self
            .execute_graphql(
                BRANCH_MERGE_MUTATION,
                Some(json!({ "data": { "name": name } })),
                Some(self.default_branch()),
            )
            .await?;
        decode(result["BranchMerge"]["object"].clone(), "BranchMerge")
    }

    /// Rebases branch `name` on the default branch.
    pub async fn branch_rebase(&self, name: &str) -> Result<Branch, Error> {
        let result = self
            .execute_graphql(
                BRANCH_REBASE_MUTATION,
                Some(json!({ "data": { "name": name } })),
                Some(self.default_branch()),
            )
            .await?;
        decode(result["BranchRebase"]["object"].clone(), "BranchRebase")
    }
}
