//! The Keycloak admin client (`crates/admin`) from the OpenAPI description and
//! `crates/admin/codegen.toml`.

use std::path::Path;

use crate::codegen::GeneratedFile;

pub(crate) fn generate(_root: &Path, _specs: &Path) -> anyhow::Result<Vec<GeneratedFile>> {
    Ok(Vec::new())
}
