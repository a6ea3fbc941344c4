//! Operating the manager: `/metrics` after real requests, request ids in headers and error
//! bodies, refused registrations and authorizations recorded as events, `/ready` and `/health`.

use crate::common;

use common::{usage, Harness};
use serde_json::Value;
use smartlic_proto::wire::{AuthorizationStatus, Udi};
use smartlic_proto::KeyAlgorithm;
use std::collections::BTreeMap;

/// One sample of the text exposition: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus / OpenMetrics text format (what a scraper reads); panics on a line
/// that is neither a comment nor a sample.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a value: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        samples.push((name, labels, value));
    }
    samples
}

/// The value of the sample `name` whose labels include `labels`; 0 when absent.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape(h: &Harness) -> Vec<Sample> {
    let r = h.http.get(format!("{}/metrics", h.base)).bearer_auth(h.bearer()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    parse(&r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_what_really_happened() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    let before = scrape(&h).await;
    assert_eq!(value(&before, "smartlic_product_instances", &[]), 0.0);

    let device = h.register("FOC0001", &token).await;
    let answer = h.devices.authorize(&device, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();
    assert_eq!(answer.status, AuthorizationStatus::Authorized);
    // Refused: an unknown token, and a device clock an hour off.
    let udi = Udi { pid: "C9500-32C".into(), sn: "FOC0002".into() };
    let wrong = h.devices.register(&udi, None, "no-such-token-xyz", false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    assert!(wrong.is_err());
    let skewed = h.devices.authorize(&device, &usage(&[("ACI Essentials", 10)]), h.now_ms() - 3_600_000).await;
    assert!(skewed.is_err());

    let after = scrape(&h).await;
    let registrations = "smartlic_registrations_total";
    assert_eq!(value(&after, registrations, &[("result", "registered")]), 1.0);
    assert_eq!(value(&after, registrations, &[("result", "refused")]), 1.0);
    let authorizations = "smartlic_authorizations_total";
    assert_eq!(value(&after, authorizations, &[("result", "authorized")]), 1.0);
    assert_eq!(value(&after, authorizations, &[("result", "refused")]), 1.0);
    // Requests by route template and status, with their latency.
    let register = [("route", "/device/v1/register"), ("method", "POST")];
    assert_eq!(value(&after, "smartlic_http_requests_total", &[register[0], register[1], ("status", "200")]), 1.0);
    assert_eq!(value(&after, "smartlic_http_requests_total", &[register[0], ("status", "400")]), 1.0);
    assert_eq!(value(&after, "smartlic_http_request_duration_seconds_count", &[register[0]]), 2.0);
    let account_route = "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses";
    assert!(value(&after, "smartlic_http_requests_total", &[("route", account_route), ("status", "201")]) >= 1.0);
    // The gauges read at the scrape.
    assert_eq!(value(&after, "smartlic_product_instances", &[]), 1.0);
    assert!(value(&after, "smartlic_open_connections", &[]) >= 1.0);
    assert!(value(&after, "smartlic_db_write_busy_seconds_total", &[]) > 0.0);
    let pool = [("account", "example.com"), ("virtual_account", "Default")];
    assert_eq!(value(&after, "smartlic_license_balance", &[pool[0], pool[1], ("tag", "ACI Advantage")]), 2.0);

    // Unknown paths share one label, whatever the URI.
    let _ = h.admin("GET", "/no/such/path/1?secret=x", None).await;
    let _ = h.admin("GET", "/no/such/path/2", None).await;
    let text = {
        let r = h.http.get(format!("{}/metrics", h.base)).bearer_auth(h.bearer()).send().await.unwrap();
        r.text().await.unwrap()
    };
    assert!(!text.contains("/no/such") && !text.contains("secret=x"), "{text}");
    assert_eq!(value(&parse(&text), "smartlic_http_requests_total", &[("route", "unmatched"), ("status", "404")]), 2.0);
    // So do invented methods.
    let invented = reqwest::Method::from_bytes(b"BREW").unwrap();
    let r = h.http.request(invented, format!("{}/health", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let after = scrape(&h).await;
    assert_eq!(value(&after, "smartlic_http_requests_total", &[("method", "other"), ("route", "/health")]), 1.0);
    assert!(after.iter().all(|(_, labels, _)| labels.get("method").is_none_or(|m| m != "BREW")));
}

#[tokio::test]
async fn metrics_are_for_the_operator_only() {
    let h = Harness::new().await;
    let none = h.http.get(format!("{}/metrics", h.base)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let _ = h.account_with("example.com", &[]).await;
    let body = serde_json::json!({"name": "ci", "role": "smart-account-user"});
    let (_, _, tenant) = h.client("example.com", body).await;
    let refused = h.call(&tenant, "GET", "/metrics", None).await;
    assert_eq!((refused.status, refused.code()), (403, "FORBIDDEN"), "{:?}", refused.body);
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_and_named_in_error_bodies() {
    let h = Harness::new().await;
    // A sane incoming id is kept, in the header and in the error body.
    let r = h.http.get(format!("{}/api/v1/accounts/nope.example", h.base)).bearer_auth(h.bearer());
    let r = r.header("X-Request-Id", "trace-42.a:b").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "trace-42.a:b");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-42.a:b", "{body}");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    // An unsafe or overlong one is replaced by a new one.
    for bad in ["has space", &"x".repeat(65)] {
        let r = h.http.get(format!("{}/health", h.base)).header("X-Request-Id", bad).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16);
    }
    // Each request gets its own; a device error (signed) names it too.
    let r = h.http.post(format!("{}/device/v1/register", h.base)).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    let other = h.http.get(format!("{}/health", h.base)).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
}

#[tokio::test]
async fn refused_registrations_and_authorizations_are_events_without_the_token() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[]).await;
    let device = h.register("FOC0001", &token).await;
    let udi = Udi { pid: "C9500-32C".into(), sn: "FOC0009".into() };
    let secret_token = "NotAValidToken-0123456789";
    assert!(h.devices.register(&udi, None, secret_token, false, KeyAlgorithm::Ed25519, h.now_ms()).await.is_err());
    let skewed = h.devices.authorize(&device, &usage(&[]), h.now_ms() + 3_600_000).await;
    assert!(skewed.is_err());
    let events = h.admin("GET", "/api/v1/events", None).await;
    assert_eq!(events.status, 200);
    let list = events.body["events"].as_array().unwrap();
    let of = |kind: &str| list.iter().find(|e| e["kind"] == kind).unwrap_or_else(|| panic!("no {kind}: {list:?}"));
    let registration = of("registration.refused");
    assert_eq!(registration["object"], "PID:C9500-32C,SN:FOC0009");
    assert!(registration["detail"].as_str().unwrap().contains("INVALID_TOKEN"), "{registration}");
    let authorization = of("authorization.refused");
    assert_eq!(authorization["object"], format!("instance {}", device.instance_id));
    assert!(authorization["detail"].as_str().unwrap().contains("CLOCK_SKEW"), "{authorization}");
    assert!(!events.body.to_string().contains(secret_token));
}

#[tokio::test]
async fn ready_checks_the_database_the_ca_and_the_jobs() {
    let h = Harness::new().await;
    let health = h.http.get(format!("{}/health", h.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The jobs loop runs once at start; the harness's interval is an hour.
    let ready = h.call("", "GET", "/ready", None).await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["checks"], serde_json::json!({"database": "ok", "ca": "ok", "jobs": "ok"}));
    // A closed database takes no write: not ready, and the check says why.
    h.server.state.store.close().await.unwrap();
    let ready = h.call("", "GET", "/ready", None).await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    assert_eq!(ready.body["ready"], false);
    assert!(ready.body["checks"]["database"].as_str().unwrap().contains("closed"), "{:?}", ready.body);
    assert_eq!(ready.body["checks"]["ca"], "ok");
}

#[tokio::test]
async fn the_openapi_document_has_the_probes_and_the_metrics() {
    let h = Harness::new().await;
    let doc = h.call("", "GET", "/api/v1/openapi.json", None).await.body;
    for path in ["/health", "/ready", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert_eq!(doc["paths"]["/ready"]["get"]["security"], serde_json::json!([]));
    assert!(doc["paths"]["/ready"]["get"]["responses"]["503"].is_object());
    assert!(doc["paths"]["/metrics"]["get"]["responses"]["403"].is_object());
    assert!(doc["components"]["schemas"]["Error"]["properties"]["request_id"].is_object());
}
