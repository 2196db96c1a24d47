//! Reconciles a few tenants' realms, clients and roles against the in-process fake Keycloak
//! through pacer-admin's idempotent helpers, twice: the first pass creates everything, the
//! second finds everything as desired and writes nothing.
//!
//! `cargo run -p examples --example admin_reconcile`

use std::error::Error;

use pacer::metrics::Metrics;
use pacer_admin::reconcile::Outcome;
use pacer_admin::types::{ClientRepresentation, RealmRepresentation, RoleRepresentation};
use pacer_admin::{AdminClient, Credentials};
use pacer_testbed::Testbed;
use prometheus_client::registry::Registry;

const TENANTS: [&str; 3] = ["team-a", "team-b", "team-c"];

/// What each tenant should have: a realm, a web client, a service client and a role.
async fn reconcile(client: &AdminClient) -> Result<Vec<(String, Outcome)>, pacer_admin::Error> {
    let mut outcomes = Vec::new();
    for tenant in TENANTS {
        // Calls for a tenant are rate limited under that tenant's namespace.
        let kc = client.namespace(tenant);
        let realm = RealmRepresentation {
            realm: Some(tenant.to_owned()),
            enabled: Some(true),
            display_name: Some(format!("Tenant {tenant}")),
            ..Default::default()
        };
        outcomes.push((format!("{tenant}: realm"), kc.ensure_realm(&realm).await?));
        let web = ClientRepresentation {
            client_id: Some("web".to_owned()),
            public_client: Some(true),
            redirect_uris: Some(vec![format!("https://{tenant}.example/*")]),
            ..Default::default()
        };
        outcomes.push((
            format!("{tenant}: client web"),
            kc.ensure_client(tenant, &web).await?,
        ));
        let worker = ClientRepresentation {
            client_id: Some("worker".to_owned()),
            public_client: Some(false),
            service_accounts_enabled: Some(true),
            ..Default::default()
        };
        outcomes.push((
            format!("{tenant}: client worker"),
            kc.ensure_client(tenant, &worker).await?,
        ));
        let role = RoleRepresentation {
            name: Some("operator".to_owned()),
            description: Some("may operate the tenant".to_owned()),
            ..Default::default()
        };
        outcomes.push((
            format!("{tenant}: role operator"),
            kc.ensure_role(tenant, &role).await?,
        ));
    }
    Ok(outcomes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let testbed = Testbed::start().await?;
    let creds = testbed.credentials();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let client = AdminClient::builder(
        testbed.keycloak_url(),
        Credentials::client_credentials(
            creds.keycloak_realm.clone(),
            creds.keycloak_client_id.clone(),
            creds.keycloak_client_secret.clone(),
        ),
    )
    .config(pacer::config::Config::default()) // 50/s global, 5/s (burst 10) per tenant
    .metrics(metrics)
    .build()?;

    for pass in 1..=2 {
        testbed.clear_keycloak_requests();
        let outcomes = reconcile(&client).await?;
        println!("pass {pass}:");
        for (what, outcome) in &outcomes {
            let verb = match outcome {
                Outcome::Created(_) => "created",
                Outcome::Updated(_) => "updated",
                Outcome::Unchanged(_) => "unchanged",
            };
            println!("  {what:<28} {verb:<9} {}", outcome.id());
        }
        let changed = outcomes.iter().filter(|(_, o)| o.changed()).count();
        // Writes as the server saw them (the token request aside).
        let writes = testbed
            .keycloak_requests()
            .iter()
            .filter(|r| r.method != "GET" && r.target.starts_with("/admin/"))
            .count();
        println!("  {changed} changed, {writes} writes sent");
        if pass == 2 && (changed != 0 || writes != 0) {
            return Err("the second pass should change nothing".into());
        }
    }
    let (_, text) = pacer::metrics::render(&registry, None)?;
    println!("\nrequests by namespace:");
    for line in text
        .lines()
        .filter(|l| l.starts_with("pacer_requests_total{"))
    {
        println!("  {line}");
    }
    Ok(())
}
