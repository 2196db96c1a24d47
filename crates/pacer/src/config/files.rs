//! [`Config`] from TOML and JSON documents and files.

use std::path::Path;

use super::error::ConfigError;
use super::proxy::redact_urls_in;
use super::schema::Config;

impl Config {
    /// Parses and validates a TOML document; missing settings keep their defaults, unknown
    /// ones are errors, and so is a value out of range (see [`validate`](Self::validate)).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        // toml's message quotes the offending line: a proxy URL's password must not show.
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            source_name: "TOML".to_owned(),
            message: redact_urls_in(&e.to_string()),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates a JSON document, as [`from_toml_str`](Self::from_toml_str) does
    /// a TOML one.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            source_name: "JSON".to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a `.toml` or `.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let parsed = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml_str(&text),
            Some("json") => Self::from_json_str(&text),
            _ => {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: "unknown format: the file name must end in .toml or .json".to_owned(),
                });
            }
        };
        parsed.map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                source_name: path.display().to_string(),
                message,
            },
            other => other,
        })
    }
}
