//! The `pacer-testbed` binary: starts on a free port, prints its URLs, serves both fakes.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use http::Method;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn binary_serves_both_fakes_with_its_flags() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacer-testbed"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--client-secret",
            "from-flag",
            "--infrahub-api-key",
            "key-from-flag",
            "--latency-ms",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the banner within the bounded wait")
        .unwrap()
        .expect("a banner line");
    let addr = first
        .strip_prefix("pacer-testbed listening on ")
        .unwrap_or_else(|| panic!("unexpected banner: {first}"))
        .to_owned();
    let base = format!("http://{addr}");
    let client = client();

    let token = send(
        &client,
        request(
            Method::POST,
            &format!("{base}/realms/master/protocol/openid-connect/token"),
            &[("content-type", "application/x-www-form-urlencoded")],
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "pacer"),
                ("client_secret", "from-flag"),
            ]),
        ),
    )
    .await;
    assert_eq!(token.status, 200);

    let info = send(
        &client,
        request(
            Method::POST,
            &format!("{base}/graphql"),
            &[("x-infrahub-key", "key-from-flag")],
            r#"{"query": "{ InfrahubInfo { version } }"}"#,
        ),
    )
    .await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["data"]["InfrahubInfo"]["version"], "1.10.6");

    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
