//! The one rule for names that look secret: a field, a map key, a path. The generator
//! (`cargo xtask codegen`) applies it to every field of the Keycloak representations and the
//! client applies it at run time to the fields it does not know (`extra`), to `config` map
//! keys and to the paths of operations whose bodies carry secrets. A leaf, with no imports:
//! the generator compiles this very file.

/// Parts of a name that make it look secret wherever they appear (`clientSecret`,
/// `registrationAccessToken`, `bindCredential`, `reset-password`, `secretData`).
const SECRET_PARTS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "credential",
    "privatekey",
    "apikey",
    "salt",
];

/// Words that make a name look secret when they are a whole word of it (`key`,
/// `signingKey`, `keys`), so that `keycloak` or `monkey` do not.
const SECRET_WORDS: &[&str] = &["key", "keys", "pwd", "pin", "otp", "hash", "hmac"];

/// Whether `name` looks like it names a secret: it contains one of `secret`, `password`,
/// `passwd`, `passphrase`, `token`, `credential`, `privatekey`, `apikey`, `salt` (any
/// case), or has `key`, `keys`, `pwd`, `pin`, `otp`, `hash` or `hmac` as a word (words are
/// split at case changes and at anything not a letter or digit).
///
/// It errs on the side of hiding: `accessTokenLifespan` looks secret too; the generator
/// redacts a known field only when its type can hold text.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if SECRET_PARTS.iter().any(|part| lower.contains(part)) {
        return true;
    }
    words(name).any(|word| SECRET_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w)))
}

/// `signingKeyId` -> `signing`, `Key`, `Id`; `bind-credential` -> `bind`, `credential`.
fn words(name: &str) -> impl Iterator<Item = &str> {
    let bytes = name.as_bytes();
    let mut start = 0;
    let mut cuts = Vec::new();
    for (index, &byte) in bytes.iter().enumerate() {
        if !byte.is_ascii_alphanumeric() {
            cuts.push((start, index));
            start = index + 1;
        } else if byte.is_ascii_uppercase()
            && index > start
            && bytes
                .get(index - 1)
                .is_some_and(|previous| previous.is_ascii_lowercase() || previous.is_ascii_digit())
        {
            cuts.push((start, index));
            start = index;
        }
    }
    cuts.push((start, bytes.len()));
    cuts.into_iter()
        .filter(|(from, to)| from < to)
        .filter_map(move |(from, to)| name.get(from..to))
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn names_that_look_secret() {
        for name in [
            "secret",
            "codeSecret",
            "registrationAccessToken",
            "bindCredential",
            "password",
            "hashedSaltedValue",
            "secretData",
            "client-secret",
            "reset-password",
            "signingKey",
            "key",
            "X_API_KEY",
            "otp",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "id",
            "clientId",
            "keycloakVersion",
            "monkey",
            "username",
            "enabled",
            "realm",
            "config",
            "redirectUris",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
