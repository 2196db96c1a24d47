//! The namespace-label policy on paused time: a flood takes the label slots only while it
//! lasts, pinned namespaces always have their own series, a slot in use is never released.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use prometheus_client::registry::Registry;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use super::{Metrics, MetricsBuilder, MetricsLayer};
use crate::events::event::Event;
use crate::events::observer::Observer;
use crate::namespace::Namespace;
use crate::rate_limit::level::Level;

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

/// The `namespace` label values of `svc_requests_total`, in the order encoded.
fn labelled(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("svc_requests_total{"))
        .filter_map(|line| {
            let start = line.find("namespace=\"")? + "namespace=\"".len();
            let end = start + line[start..].find('"')?;
            Some(line[start..end].to_owned())
        })
        .collect()
}

fn count(text: &str, namespace: &str) -> Option<f64> {
    let series =
        format!(r#"svc_requests_total{{method="GET",status_class="2xx",namespace="{namespace}"}}"#);
    text.lines().find_map(|line| {
        line.strip_prefix(series.as_str())?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

fn metrics(builder: MetricsBuilder, registry: &mut Registry) -> Metrics {
    builder.prefix("svc").register(registry)
}

/// Metrics with `cap` label slots released after `idle_secs`, and their registry.
fn capped(cap: usize, idle_secs: u64) -> (Metrics, Registry) {
    let mut registry = Registry::default();
    let builder = Metrics::builder()
        .max_namespace_labels(cap)
        .namespace_label_idle(Duration::from_secs(idle_secs));
    (metrics(builder, &mut registry), registry)
}

async fn send(metrics: &Metrics, namespace: Option<&str>) {
    let service = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let mut request = Request::builder()
        .method(Method::GET)
        .body(String::new())
        .unwrap();
    if let Some(namespace) = namespace {
        request.extensions_mut().insert(Namespace::new(namespace));
    }
    service.oneshot(request).await.unwrap();
}

async fn flood(metrics: &Metrics, names: usize) {
    flood_named(metrics, "junk", names).await;
}

async fn flood_named(metrics: &Metrics, prefix: &str, names: usize) {
    for i in 0..names {
        send(metrics, Some(&format!("{prefix}-{i}"))).await;
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_flood_ends_real_tenants_get_labels_again() {
    let (metrics, registry) = capped(10, 60);
    flood(&metrics, 1_000).await;
    send(&metrics, Some("tenant-a")).await;
    let text = encode(&registry);
    assert_eq!(
        count(&text, "tenant-a"),
        None,
        "no slot is free during the flood"
    );
    assert_eq!(count(&text, "other"), Some(991.0));
    assert_eq!(labelled(&text).len(), 11, "ten slots and other");

    // The flood ends; a minute later its slots are idle and the next tenant takes one.
    tokio::time::advance(Duration::from_secs(61)).await;
    send(&metrics, Some("tenant-a")).await;
    send(&metrics, Some("tenant-b")).await;
    let text = encode(&registry);
    assert_eq!(count(&text, "tenant-a"), Some(1.0));
    assert_eq!(count(&text, "tenant-b"), Some(1.0));
    assert_eq!(
        count(&text, "junk-0"),
        None,
        "a released slot's series leave"
    );
    assert_eq!(count(&text, "other"), Some(991.0), "other keeps its count");
    let mut names = labelled(&text);
    names.sort();
    assert_eq!(names, ["other", "tenant-a", "tenant-b"]);
}

#[tokio::test(start_paused = true)]
async fn pinned_namespaces_and_the_default_one_are_labelled_after_a_flood() {
    let mut registry = Registry::default();
    let metrics = metrics(
        Metrics::builder()
            .max_namespace_labels(10)
            .pin_namespaces(["vip"]),
        &mut registry,
    );
    flood(&metrics, 1_000).await;
    send(&metrics, Some("vip")).await;
    send(&metrics, None).await;
    let text = encode(&registry);
    assert_eq!(count(&text, "vip"), Some(1.0));
    assert_eq!(count(&text, "default"), Some(1.0));
    assert_eq!(count(&text, "other"), Some(990.0));
    // Pinned ones do not count against the cap: ten junk namespaces still have their own.
    assert_eq!(count(&text, "junk-9"), Some(1.0));
}

#[tokio::test(start_paused = true)]
async fn overrides_in_the_config_are_pinned() {
    let mut config = crate::config::Config::default();
    config.metrics.max_namespace_labels = 5;
    config.rate_limit.overrides.insert(
        "team-gold".to_owned(),
        crate::config::QuotaConfig {
            rate: 1.0,
            burst: 1,
        },
    );
    let mut registry = Registry::default();
    let metrics = metrics(config.metrics_builder(), &mut registry);
    flood(&metrics, 100).await;
    send(&metrics, Some("team-gold")).await;
    assert_eq!(count(&encode(&registry), "team-gold"), Some(1.0));
}

#[tokio::test(start_paused = true)]
async fn below_the_cap_nothing_is_released() {
    let (metrics, registry) = capped(3, 1);
    send(&metrics, Some("a")).await;
    send(&metrics, Some("b")).await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    send(&metrics, Some("c")).await;
    let text = encode(&registry);
    for namespace in ["a", "b", "c"] {
        assert_eq!(count(&text, namespace), Some(1.0), "{namespace}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_busy_tenant_keeps_its_slot_through_a_flood() {
    let (metrics, registry) = capped(2, 60);
    send(&metrics, Some("busy")).await;
    // Ten minutes of flood, with a request of `busy` every 30 s.
    for round in 0..20 {
        flood_named(&metrics, &format!("junk-{round}"), 50).await;
        send(&metrics, Some("busy")).await;
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            labelled(&encode(&registry)).contains(&"busy".to_owned()),
            "round {round}"
        );
    }
    assert_eq!(count(&encode(&registry), "busy"), Some(21.0));
}

#[tokio::test(start_paused = true)]
async fn a_slot_with_a_request_in_flight_is_not_released() {
    let (metrics, registry) = capped(1, 60);
    let streaming = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .service(service_fn(|_req: Request<String>| async {
            let body = StreamBody::new(futures_util::stream::pending::<
                Result<Frame<Bytes>, Infallible>,
            >());
            Ok::<_, Infallible>(Response::new(body))
        }));
    let mut request = Request::new(String::new());
    request.extensions_mut().insert(Namespace::new("long-poll"));
    let response = streaming.oneshot(request).await.unwrap();

    tokio::time::advance(Duration::from_secs(600)).await;
    send(&metrics, Some("newcomer")).await;
    assert_eq!(count(&encode(&registry), "newcomer"), None);
    assert_eq!(count(&encode(&registry), "other"), Some(1.0));

    // The body ends (dropped): the request is recorded under its own label, and once idle the
    // slot goes to the next newcomer.
    drop(response);
    let text = encode(&registry);
    assert!(labelled(&text).contains(&"long-poll".to_owned()));
    tokio::time::advance(Duration::from_secs(61)).await;
    send(&metrics, Some("newcomer")).await;
    let text = encode(&registry);
    assert_eq!(count(&text, "newcomer"), Some(1.0));
    assert!(!labelled(&text).contains(&"long-poll".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn a_released_slot_takes_its_rate_limit_series_along() {
    let (metrics, registry) = capped(1, 60);
    let old = Namespace::new("old");
    metrics.observe(&Event::RateLimitRefused {
        namespace: &old,
        level: Level::Namespace,
        retry_after: Duration::from_secs(1),
    });
    metrics.observe(&Event::RateLimitWait {
        namespace: &old,
        level: Level::Global,
        waited: Duration::from_millis(5),
    });
    let text = encode(&registry);
    assert!(text.contains(r#"svc_rate_limit_refusals_total{namespace="old",level="namespace"} 1"#));
    assert!(text.contains(r#"namespace="old",level="global""#));

    tokio::time::advance(Duration::from_secs(61)).await;
    let new = Namespace::new("new");
    metrics.observe(&Event::RateLimitRefused {
        namespace: &new,
        level: Level::Namespace,
        retry_after: Duration::from_secs(1),
    });
    let text = encode(&registry);
    assert!(!text.contains(r#"namespace="old""#), "{text}");
    assert!(text.contains(r#"svc_rate_limit_refusals_total{namespace="new",level="namespace"} 1"#));
}

#[tokio::test(start_paused = true)]
async fn a_full_table_is_swept_at_most_once_a_second() {
    let (metrics, registry) = capped(1, 1);
    send(&metrics, Some("first")).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    // The first newcomer after the idle time sweeps and takes the slot; the next ones within
    // the same second find the table full and not yet due for a sweep, although `second`
    // was idle for no time at all.
    send(&metrics, Some("second")).await;
    send(&metrics, Some("third")).await;
    let text = encode(&registry);
    assert_eq!(count(&text, "second"), Some(1.0));
    assert_eq!(count(&text, "third"), None);
    assert_eq!(count(&text, "first"), None);

    // A second later the next sweep is due, and `second` has been idle long enough.
    tokio::time::advance(Duration::from_secs(1)).await;
    send(&metrics, Some("third")).await;
    let text = encode(&registry);
    assert_eq!(count(&text, "third"), Some(1.0));
    assert_eq!(count(&text, "second"), None);
}
