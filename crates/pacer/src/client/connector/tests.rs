//! Which proxy the settings and the environment choose, for which destination.
#![allow(clippy::unwrap_used)]

use http::Uri;

use super::proxy_matcher;
use crate::config::{Config, ProxyUrl};

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The proxy (`scheme://host:port/`) `config` and `env` choose for `dst`, or `None`.
fn route(config: &Config, env: &[(&str, &str)], dst: &str) -> Option<String> {
    let matcher = proxy_matcher(&config.validate().unwrap(), vars(env))?;
    matcher
        .intercept(&dst.parse::<Uri>().unwrap())
        .map(|i| i.uri().to_string())
}

#[test]
fn the_environment_is_read_as_curl_reads_it() {
    let config = Config::default();
    let env = [
        ("HTTPS_PROXY", "http://secure-proxy:3128"),
        ("HTTP_PROXY", "http://plain-proxy:3128"),
    ];
    assert_eq!(
        route(&config, &env, "https://keycloak.corp/realms").as_deref(),
        Some("http://secure-proxy:3128/")
    );
    assert_eq!(
        route(&config, &env, "http://infrahub.corp/graphql").as_deref(),
        Some("http://plain-proxy:3128/")
    );
    // ALL_PROXY covers the scheme without a variable of its own.
    let env = [("ALL_PROXY", "http://all:1"), ("https_proxy", "http://s:2")];
    assert_eq!(
        route(&config, &env, "http://a/").as_deref(),
        Some("http://all:1/")
    );
    assert_eq!(
        route(&config, &env, "https://a/").as_deref(),
        Some("http://s:2/")
    );
    // Nothing set: direct.
    assert!(proxy_matcher(&config.validate().unwrap(), vars(&[])).is_none());
}

#[test]
fn lower_case_forms_are_read_and_upper_case_wins() {
    let config = Config::default();
    let env = [("http_proxy", "http://lower:1")];
    assert_eq!(
        route(&config, &env, "http://a/").as_deref(),
        Some("http://lower:1/")
    );
    for env in [
        [
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
        ],
        [
            ("HTTP_PROXY", "http://upper:2"),
            ("http_proxy", "http://lower:1"),
        ],
    ] {
        assert_eq!(
            route(&config, &env, "http://a/").as_deref(),
            Some("http://upper:2/")
        );
    }
    let env = [("https_proxy", "http://p:1"), ("no_proxy", "a.corp")];
    assert_eq!(route(&config, &env, "https://a.corp/"), None);
}

#[test]
fn no_proxy_matches_domain_suffixes() {
    let config = Config::default();
    let env = [
        ("HTTPS_PROXY", "http://p:3128"),
        ("NO_PROXY", "corp.example, .internal,localhost"),
    ];
    for direct in [
        "https://corp.example/",
        "https://keycloak.corp.example/",
        "https://a.b.corp.example:8443/",
        "https://infrahub.internal/",
        "https://localhost:8443/",
        "https://KEYCLOAK.Corp.Example/",
    ] {
        assert_eq!(route(&config, &env, direct), None, "{direct}");
    }
    for proxied in [
        "https://notcorp.example/",
        "https://corp.example.com/",
        "https://internal.evil/",
    ] {
        assert!(route(&config, &env, proxied).is_some(), "{proxied}");
    }
}

#[test]
fn no_proxy_matches_addresses_and_cidr_networks() {
    let config = Config::default();
    let env = [
        ("ALL_PROXY", "http://p:3128"),
        ("NO_PROXY", "10.0.0.0/8, 192.168.1.7, ::1, fd00::/8"),
    ];
    for direct in [
        "http://10.1.2.3/",
        "https://10.255.255.255:8443/",
        "http://192.168.1.7/",
        "http://[::1]:8080/",
        "http://[fd00::42]/",
    ] {
        assert_eq!(route(&config, &env, direct), None, "{direct}");
    }
    for proxied in [
        "http://11.0.0.1/",
        "http://192.168.1.8/",
        "http://[fe80::1]/",
    ] {
        assert!(route(&config, &env, proxied).is_some(), "{proxied}");
    }
    let star = [("ALL_PROXY", "http://p:3128"), ("NO_PROXY", "*")];
    assert_eq!(route(&config, &star, "https://anything.example/"), None);
}

#[test]
fn an_explicit_proxy_wins_over_the_environment() {
    let config = Config {
        proxy: Some(ProxyUrl::parse("http://user:pw@explicit:8080").unwrap()),
        no_proxy: Some("direct.corp".to_owned()),
        ..Config::default()
    };
    let env = [
        ("HTTPS_PROXY", "http://env:3128"),
        ("HTTP_PROXY", "http://env:3128"),
        ("NO_PROXY", "keycloak.corp"),
    ];
    // The environment's NO_PROXY is not the explicit proxy's business: only `no_proxy` is.
    for dst in ["https://keycloak.corp/", "http://infrahub.corp/"] {
        assert_eq!(
            route(&config, &env, dst).as_deref(),
            Some("http://explicit:8080/"),
            "{dst}"
        );
    }
    assert_eq!(route(&config, &env, "https://api.direct.corp/"), None);
    // The credentials become the Basic header, never part of the proxy's URI.
    let matcher = proxy_matcher(&config.validate().unwrap(), vars(&env)).unwrap();
    let intercept = matcher.intercept(&Uri::from_static("https://x/")).unwrap();
    assert_eq!(intercept.uri(), "http://explicit:8080/");
    let auth = intercept.basic_auth().unwrap();
    assert_eq!(auth, "Basic dXNlcjpwdw==");
    assert!(auth.is_sensitive());
    assert!(!format!("{matcher:?}").contains("pw"));
}

#[test]
fn env_proxies_can_be_turned_off() {
    let config = Config {
        proxy_from_env: false,
        ..Config::default()
    };
    let env = [("ALL_PROXY", "http://env:3128")];
    assert!(proxy_matcher(&config.validate().unwrap(), vars(&env)).is_none());
    // A CGI process ignores HTTP_PROXY (it may come from a request's Proxy header).
    let env = [("HTTP_PROXY", "http://env:3128"), ("REQUEST_METHOD", "GET")];
    assert!(proxy_matcher(&Config::default().validate().unwrap(), vars(&env)).is_none());
}

#[test]
fn the_no_proxy_setting_adds_to_the_environment() {
    let config = Config {
        no_proxy: Some("extra.corp".to_owned()),
        ..Config::default()
    };
    let env = [("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "env.corp")];
    assert_eq!(route(&config, &env, "https://a.env.corp/"), None);
    assert_eq!(route(&config, &env, "https://a.extra.corp/"), None);
    assert!(route(&config, &env, "https://other.corp/").is_some());
}
