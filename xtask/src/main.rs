//! `cargo xtask codegen [--check]`: generates the client crates' Rust from the API descriptions
//! in `../shared/specs/` and the allow-lists checked in beside each crate.
//!
//! Without `--check` the generated files are written (only when their text changed). With
//! `--check` nothing is written: the run fails with a diff when a checked-in file differs from
//! what the generator produces, or when a generated file is missing or stale.

mod codegen;
mod imports;
mod infrahub;
mod keycloak;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask codegen [--check] [--specs DIR] [--infrahub-sdl FILE] | cargo xtask imports";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("codegen") => {}
        Some("imports") => {
            return Ok(if imports::check(&workspace_root())? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => bail!("{USAGE}"),
    }
    let root = workspace_root();
    let mut check = false;
    let mut specs = root.join("..").join("shared").join("specs");
    // Another Infrahub instance's `GET /schema.graphql` (unpinned) instead of the allow-list's.
    let mut infrahub_sdl = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--specs" => specs = PathBuf::from(args.next().context("--specs needs a directory")?),
            "--infrahub-sdl" => {
                infrahub_sdl = Some(PathBuf::from(
                    args.next().context("--infrahub-sdl needs a file")?,
                ));
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }

    let mut files = Vec::new();
    files.extend(keycloak::generate(&root, &specs).context("Keycloak admin client")?);
    files.extend(
        infrahub::generate(&root, &specs, infrahub_sdl.as_deref())
            .context("Infrahub inventory client")?,
    );

    let drift = codegen::sync(&root, &files, check)?;
    if check && drift > 0 {
        eprintln!("{drift} generated file(s) out of date: run `cargo xtask codegen`");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The workspace root: this package sits in `xtask/` directly below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
