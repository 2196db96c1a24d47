//! Enumerated settings by name, in files (serde) and variables: the jitter and the
//! `Retry-After` mode.

/// `Jitter` by its lower-case name in files and variables.
pub(crate) mod jitter_names {
    use crate::retry::Jitter;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn parse(value: &str) -> Result<Jitter, &'static str> {
        match value.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Jitter::Full),
            "equal" => Ok(Jitter::Equal),
            "decorrelated" => Ok(Jitter::Decorrelated),
            "none" => Ok(Jitter::None),
            _ => Err("must be full, equal, decorrelated or none"),
        }
    }

    pub(crate) fn name(jitter: Jitter) -> &'static str {
        match jitter {
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
            Jitter::None => "none",
            Jitter::Full => "full",
        }
    }

    pub(crate) fn serialize<S: Serializer>(jitter: &Jitter, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*jitter))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Jitter, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|reason| D::Error::custom(format!("jitter {text:?}: {reason}")))
    }
}

/// `RetryAfterMode` as `clamp` or `fail` in files and variables.
pub(crate) mod mode_names {
    use crate::retry_after::RetryAfterMode;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn parse(value: &str) -> Result<RetryAfterMode, &'static str> {
        match value.trim().to_ascii_lowercase().as_str() {
            "clamp" => Ok(RetryAfterMode::Clamp),
            "fail" | "fail_fast" | "failfast" => Ok(RetryAfterMode::FailFast),
            _ => Err("must be clamp or fail"),
        }
    }

    pub(crate) fn serialize<S: Serializer>(mode: &RetryAfterMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match mode {
            RetryAfterMode::Clamp => "clamp",
            RetryAfterMode::FailFast => "fail",
        })
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RetryAfterMode, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|reason| D::Error::custom(format!("mode {text:?}: {reason}")))
    }
}
