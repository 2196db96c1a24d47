//! The serde adapters of the enumerated settings that are not serde types themselves: the
//! jitter and the `Retry-After` mode, by the names their parsers read.

/// `Jitter` by its lower-case name in files and variables.
pub(crate) mod jitter_names {
    use crate::retry::Jitter;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::config::parse::parse_jitter as parse;

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

    use crate::config::parse::parse_retry_after_mode as parse;

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
