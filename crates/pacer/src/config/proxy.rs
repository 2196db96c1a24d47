//! [`ProxyUrl`]: an outbound proxy's URL, whose credentials never show.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::parse::Reason;

/// The URL of an HTTP(S) proxy, e.g. `http://user:pass@proxy.example:3128`: the `proxy`
/// setting.
///
/// Only `http://` and `https://` proxies are accepted (a URL without a scheme means
/// `http://`); the URL needs a host. Credentials in the URL (percent-encoded, as curl reads
/// them) are sent as `Proxy-Authorization: Basic ...`, marked sensitive. The URL is kept in a
/// [`SecretString`] (wiped on drop) and its user-info never shows: `Debug` and
/// [`redacted`](Self::redacted) print `http://***@proxy.example:3128/`, and a bad value is
/// refused without echoing it. Serialising a [`Config`](super::Config) writes the URL as
/// given, credentials included, since that is what a configuration file holds.
///
/// ```
/// use pacer::config::ProxyUrl;
///
/// let proxy = ProxyUrl::parse("http://ops:s3cret@proxy.corp:3128").unwrap();
/// assert_eq!(proxy.redacted(), "http://***@proxy.corp:3128/");
/// assert!(!format!("{proxy:?}").contains("s3cret"));
/// assert!(ProxyUrl::parse("socks5://proxy.corp:1080").is_err());
/// ```
#[derive(Clone)]
pub struct ProxyUrl {
    url: SecretString,
    redacted: String,
}

impl ProxyUrl {
    /// Checks `text` as a proxy URL: `http` or `https` (or no scheme), with a host. The
    /// reason a text is refused never quotes it.
    pub fn parse(text: &str) -> Result<ProxyUrl, Reason> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let uri: http::Uri = with_scheme
            .parse()
            .map_err(|_| "must be a proxy URL such as http://proxy.example:3128")?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err("the proxy must be an http:// or https:// URL"),
        }
        let authority = uri.authority().ok_or("the proxy URL needs a host")?;
        let host_port = match authority.as_str().rsplit_once('@') {
            Some((_, host_port)) => host_port,
            None => authority.as_str(),
        };
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err("the proxy URL needs a host");
        }
        let names_a_port = !host_port.ends_with(']') && host_port.contains(':');
        if names_a_port && authority.port_u16().is_none() {
            return Err("the proxy URL's port must be a number from 0 to 65535");
        }
        let userinfo = if authority.as_str().contains('@') {
            "***@"
        } else {
            ""
        };
        let scheme = uri.scheme_str().unwrap_or("http");
        Ok(ProxyUrl {
            redacted: format!("{scheme}://{userinfo}{host_port}/"),
            url: SecretString::from(with_scheme),
        })
    }

    /// The URL with any user-info replaced by `***`, safe to print.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL as given, credentials included: for the connector, never for a log.
    pub fn expose_url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// `text` with everything between the scheme and the last `@` of its authority replaced by
/// `***`: how a proxy value is shown in an error, whether or not it parses.
pub(crate) fn redact_userinfo(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

/// `text` (e.g. a parser's message quoting a line) with the user-info of every URL in it
/// (`scheme://user:pass@`) replaced by `***`.
pub(crate) fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '?' | '#'))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(sign) => {
                out.push_str("***");
                rest = &tail[sign..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl").field(&self.redacted).finish()
    }
}

impl PartialEq for ProxyUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose_url() == other.expose_url()
    }
}

impl Serialize for ProxyUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose_url())
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProxyUrl, D::Error> {
        let text = SecretString::from(String::deserialize(d)?);
        ProxyUrl::parse(text.expose_secret())
            .map_err(|reason| D::Error::custom(format!("proxy: {reason}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let proxy = ProxyUrl::parse("https://us%40er:p%3Ass@proxy:3128/ignored").unwrap();
        assert_eq!(proxy.redacted(), "https://***@proxy:3128/");
        assert_eq!(
            format!("{proxy:?}"),
            "ProxyUrl(\"https://***@proxy:3128/\")"
        );
        assert_eq!(
            proxy.expose_url(),
            "https://us%40er:p%3Ass@proxy:3128/ignored"
        );
    }

    #[test]
    fn a_bare_host_means_http() {
        let proxy = ProxyUrl::parse("proxy.corp:8080").unwrap();
        assert_eq!(proxy.redacted(), "http://proxy.corp:8080/");
        assert_eq!(proxy.expose_url(), "http://proxy.corp:8080");
    }

    #[test]
    fn bad_urls_are_refused_without_echo() {
        for bad in [
            "socks5://u:hunter2@proxy:1080",
            "ftp://proxy",
            "http://",
            "http://hunter2@:80",
            "http://u:hunter2@proxy:notaport",
            "",
        ] {
            let reason = ProxyUrl::parse(bad).unwrap_err();
            assert!(!reason.contains("hunter2"), "{bad}: {reason}");
        }
    }

    #[test]
    fn redacting_raw_text() {
        assert_eq!(
            redact_userinfo("http://u:hunter2@proxy:1/x"),
            "http://***@proxy:1/x"
        );
        assert_eq!(redact_userinfo("u:hunter2@proxy"), "***@proxy");
        assert_eq!(redact_userinfo("http://proxy:1"), "http://proxy:1");
        assert_eq!(redact_userinfo("::@@::"), "***@::");
    }

    #[test]
    fn redacting_urls_in_a_message() {
        assert_eq!(
            redact_urls_in("1 | proxy = \"http://u:pw@p:1/x\" and https://a@b, ftp://c/d@e"),
            "1 | proxy = \"http://***@p:1/x\" and https://***@b, ftp://c/d@e"
        );
        assert_eq!(redact_urls_in("no url"), "no url");
        assert_eq!(redact_urls_in("x://"), "x://");
    }
}
