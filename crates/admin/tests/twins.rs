//! The blocking twin sends exactly what the async client sends (recorded at the fake
//! Keycloak), and the reconcile helpers are idempotent.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use pacer_admin::reconcile::Outcome;
use pacer_admin::types::*;
use pacer_testbed::{RecordedRequest, Testbed};

/// Replaces every UUID (ids differ between two servers) with `<id>`.
fn normalise(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("<id>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn sequence(requests: Vec<RecordedRequest>) -> Vec<String> {
    requests
        .into_iter()
        .map(|r| normalise(&format!("{} {} {}", r.method, r.target, r.body)))
        .collect()
}

fn realm() -> RealmRepresentation {
    RealmRepresentation {
        realm: Some("tenant".into()),
        enabled: Some(true),
        ..Default::default()
    }
}

fn app() -> ClientRepresentation {
    ClientRepresentation {
        client_id: Some("app".into()),
        public_client: Some(true),
        ..Default::default()
    }
}

#[test]
fn async_and_blocking_send_identical_requests() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // The async client, driven from the test's runtime.
    let testbed = server_runtime.block_on(Testbed::start()).unwrap();
    let results_async = server_runtime.block_on(async {
        let client = common::client(&testbed);
        let kc = client.namespace("team-a");
        let mut log = Vec::new();
        log.push(format!("{:?}", kc.server_info().await.unwrap().version()));
        log.push(format!(
            "{:?}",
            kc.ensure_realm(&realm()).await.unwrap().changed()
        ));
        let clients = kc.clients("tenant");
        let id = clients.create(&app()).await.unwrap();
        let mut read = clients.get(&id).await.unwrap().unwrap();
        read.description = Some("the app".into());
        clients.update(&id, &read).await.unwrap();
        let query = ClientsListQuery {
            client_id: Some("app".into()),
            first: Some(0),
            max: Some(5),
            ..Default::default()
        };
        log.push(format!("{}", clients.list(&query).await.unwrap().len()));
        log.push(format!("{}", clients.create(&app()).await.unwrap_err()));
        let users = kc.users("tenant");
        let user = users
            .create(&UserRepresentation {
                username: Some("u1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        log.push(format!(
            "{}",
            users.count(&Default::default()).await.unwrap()
        ));
        let group = kc
            .groups("tenant")
            .create(&GroupRepresentation {
                name: Some("g".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        users.join_group(&user, &group).await.unwrap();
        clients.delete(&id).await.unwrap();
        log.push(format!("{:?}", clients.get(&id).await.unwrap().is_none()));
        log.push(format!(
            "{:?}",
            kc.ensure_client("tenant", &app()).await.unwrap().changed()
        ));
        log.push(format!(
            "{:?}",
            kc.ensure_client("tenant", &app()).await.unwrap().changed()
        ));
        log
    });
    let sent_async = sequence(testbed.keycloak_requests());

    // The blocking client, from a plain thread, against a fresh server.
    let testbed = server_runtime.block_on(Testbed::start()).unwrap();
    let client = pacer_admin::blocking::AdminClient::builder(
        testbed.keycloak_url(),
        common::service_account(&testbed),
    )
    .retry_policy(common::quick_retries())
    .config(common::roomy_config())
    .build()
    .unwrap();
    let kc = client.namespace("team-a");
    let mut results_blocking = Vec::new();
    results_blocking.push(format!("{:?}", kc.server_info().unwrap().version()));
    results_blocking.push(format!(
        "{:?}",
        kc.ensure_realm(&realm()).unwrap().changed()
    ));
    let clients = kc.clients("tenant");
    let id = clients.create(&app()).unwrap();
    let mut read = clients.get(&id).unwrap().unwrap();
    read.description = Some("the app".into());
    clients.update(&id, &read).unwrap();
    let query = ClientsListQuery {
        client_id: Some("app".into()),
        first: Some(0),
        max: Some(5),
        ..Default::default()
    };
    results_blocking.push(format!("{}", clients.list(&query).unwrap().len()));
    results_blocking.push(format!("{}", clients.create(&app()).unwrap_err()));
    let users = kc.users("tenant");
    let user = users
        .create(&UserRepresentation {
            username: Some("u1".into()),
            ..Default::default()
        })
        .unwrap();
    results_blocking.push(format!("{}", users.count(&Default::default()).unwrap()));
    let group = kc
        .groups("tenant")
        .create(&GroupRepresentation {
            name: Some("g".into()),
            ..Default::default()
        })
        .unwrap();
    users.join_group(&user, &group).unwrap();
    clients.delete(&id).unwrap();
    results_blocking.push(format!("{:?}", clients.get(&id).unwrap().is_none()));
    results_blocking.push(format!(
        "{:?}",
        kc.ensure_client("tenant", &app()).unwrap().changed()
    ));
    results_blocking.push(format!(
        "{:?}",
        kc.ensure_client("tenant", &app()).unwrap().changed()
    ));
    let sent_blocking = sequence(testbed.keycloak_requests());

    assert_eq!(results_async, results_blocking);
    assert!(sent_async.len() > 15, "{sent_async:#?}");
    assert_eq!(sent_async, sent_blocking);
    assert_eq!(
        results_async.last().map(String::as_str),
        Some("false"),
        "second ensure changes nothing"
    );
}

#[tokio::test]
async fn reconcile_creates_then_changes_nothing_then_updates() {
    let testbed = Testbed::start().await.unwrap();
    let kc = common::client(&testbed).namespace("team-a");
    let realm = realm();
    let scope = ClientScopeRepresentation {
        name: Some("tenant".into()),
        protocol: Some("openid-connect".into()),
        ..Default::default()
    };
    let group = GroupRepresentation {
        name: Some("admins".into()),
        ..Default::default()
    };
    let role = RoleRepresentation {
        name: Some("operator".into()),
        description: Some("operates".into()),
        ..Default::default()
    };
    let user = UserRepresentation {
        username: Some("dana".into()),
        enabled: Some(true),
        ..Default::default()
    };
    for pass in 0..2 {
        let outcomes = [
            kc.ensure_realm(&realm).await.unwrap(),
            kc.ensure_client("tenant", &app()).await.unwrap(),
            kc.ensure_client_scope("tenant", &scope).await.unwrap(),
            kc.ensure_group("tenant", &group).await.unwrap(),
            kc.ensure_role("tenant", &role).await.unwrap(),
            kc.ensure_user("tenant", &user).await.unwrap(),
        ];
        for outcome in &outcomes {
            match pass {
                0 => assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}"),
                _ => assert!(matches!(outcome, Outcome::Unchanged(_)), "{outcome:?}"),
            }
        }
    }
    let writes_before = testbed
        .keycloak_requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    let changed = ClientRepresentation {
        redirect_uris: Some(vec!["https://app.example/*".into()]),
        ..app()
    };
    let outcome = kc.ensure_client("tenant", &changed).await.unwrap();
    assert!(matches!(outcome, Outcome::Updated(_)), "{outcome:?}");
    let stored = kc
        .clients("tenant")
        .get(outcome.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.redirect_uris, changed.redirect_uris);
    assert_eq!(
        stored.public_client,
        Some(true),
        "fields not in desired are kept"
    );
    let writes = testbed
        .keycloak_requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, writes_before + 1, "one PUT");
    let clients = kc
        .clients("tenant")
        .list(&ClientsListQuery {
            client_id: Some("app".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(clients.len(), 1);

    // Without its natural key a reconcile cannot look anything up: nothing is sent.
    let sent = testbed.keycloak_requests().len();
    let error = kc
        .ensure_client("tenant", &ClientRepresentation::default())
        .await
        .unwrap_err();
    assert!(matches!(error, pacer_admin::Error::Invalid(_)), "{error:?}");
    assert_eq!(testbed.keycloak_requests().len(), sent);
}

#[tokio::test]
async fn a_conflict_on_create_reads_the_existing_object() {
    let testbed = Testbed::start().await.unwrap();
    let kc = common::client(&testbed).namespace("team-a");
    kc.ensure_realm(&realm()).await.unwrap();
    // Two reconcilers race: slow answers make both look the client up before either creates
    // it, so one create meets a 409 and must read the winner's object instead of failing.
    testbed.faults().set_latency(Duration::from_millis(100));
    let desired = app();
    let (first, second) = tokio::join!(
        kc.ensure_client("tenant", &desired),
        kc.ensure_client("tenant", &desired)
    );
    testbed.faults().clear();
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.id(), second.id());
    assert_eq!(
        [&first, &second]
            .iter()
            .filter(|o| matches!(o, Outcome::Created(_)))
            .count(),
        1
    );
    assert_eq!(
        testbed.stats().count("/admin/realms/tenant/clients", 409),
        1
    );

    // A 409 on a different key (the email belongs to someone else) is a real conflict.
    kc.ensure_user(
        "tenant",
        &UserRepresentation {
            username: Some("erin".into()),
            email: Some("erin@example.com".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let error = kc
        .ensure_user(
            "tenant",
            &UserRepresentation {
                username: Some("frank".into()),
                email: Some("erin@example.com".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(error.is_conflict(), "{error:?}");
}
