//! [`ConfigError`]: why a configuration could not be loaded or used.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a bad value.
    Env {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting holds a bad value.
    Invalid {
        /// The setting.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A document did not parse.
    Parse {
        /// The file, or the format.
        source_name: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A file could not be read.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env {
                variable,
                value,
                reason,
            } => write!(f, "environment variable {variable}={value:?}: {reason}"),
            Self::Invalid {
                field,
                value,
                reason,
            } => write!(f, "setting {field} = {value}: {reason}"),
            Self::Parse {
                source_name,
                message,
            } => write!(f, "{source_name}: {message}"),
            Self::File { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}
