//! A real cloud and a real satellite on loopback synchronising (issue 12, S-3): usage and
//! instances go up, licenses come down, online and by YAML files; every bad file is refused
//! naming why with nothing changed; a standard sync carries only the changes; the scheduled
//! sync falls due after 30 days.

mod common;

use common::satellite::{approve, device_at, register_at, satellite};
use common::{usage, Answer, Harness};
use serde_json::{json, Value};
use smartlic_agent::client::ManagerClient;
use smartlic_agent::identity::DeviceIdentity;
use smartlic_core::Timestamp;
use smartlic_proto::wire::AuthorizationStatus;

const DOMAIN: &str = "example.com";
const TAG: &str = "ACI Advantage";

/// A cloud with `example.com`: 12 ACI Advantage in Default, 5 in `Lab`.
async fn cloud() -> Harness {
    let cloud = Harness::new().await;
    cloud.account_with(DOMAIN, &[(TAG, 12)]).await;
    let va =
        cloud.admin("POST", &format!("/api/v1/accounts/{DOMAIN}/virtual-accounts"), Some(json!({"name": "Lab"}))).await;
    assert_eq!(va.status, 201, "{:?}", va.body);
    let path = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/licenses");
    assert_eq!(cloud.admin("POST", &path, Some(json!({"tag": TAG, "count": 5}))).await.status, 201);
    cloud
}

/// A satellite whose local account `Plant` the cloud approved by files, serving `pool`;
/// answers the satellite's id in the cloud.
async fn approved(cloud: &Harness, sat: &Harness, pool: &str) -> i64 {
    approve(cloud, sat, "Plant", DOMAIN, &[pool]).await;
    let listed = sat.admin("GET", "/api/v1/local-accounts", None).await.body;
    listed["local_accounts"][0]["cloud_satellite_id"].as_i64().unwrap()
}

fn refused(a: &Answer, status: u16, words: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message}");
}

/// A device at the satellite, registered in `Lab`, using `count` ACI Advantage.
async fn device(sat: &Harness, cloud: &Harness, sn: &str, count: i64) -> (ManagerClient, DeviceIdentity) {
    let token = sat.token(DOMAIN, "Lab", json!({})).await;
    let client = device_at(sat, cloud);
    let identity = register_at(&client, sn, &token, sat.now_ms()).await;
    let auth = client.authorize(&identity, &usage(&[(TAG, count)]), sat.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);
    (client, identity)
}

/// The pool's `tag` line in a license listing.
fn line(licenses: &Value, tag: &str) -> Value {
    licenses["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == tag).cloned().unwrap_or(Value::Null)
}

/// ACI Advantage in use in a pool (a tag with nothing purchased or used is not listed).
async fn in_use(h: &Harness, pool: &str) -> i64 {
    line(&h.licenses(DOMAIN, pool).await, TAG)["in_use"].as_i64().unwrap_or(0)
}

async fn export(sat: &Harness, full: bool) -> String {
    let a = sat.admin("POST", "/api/v1/sync/export", Some(json!({"full": full}))).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["request"].as_str().unwrap().to_string()
}

async fn file_sync(cloud: &Harness, request: &str) -> Answer {
    cloud.admin("POST", "/api/v1/satellites/file-sync", Some(json!({"request": request}))).await
}

async fn import(sat: &Harness, response: &str) -> Answer {
    sat.admin("POST", "/api/v1/sync/import", Some(json!({"response": response}))).await
}

async fn consistent(h: &Harness) {
    let check = h.admin("GET", "/api/v1/check", None).await.body;
    assert_eq!(check["consistent"], true, "{check}");
}

#[tokio::test]
async fn network_sync_brings_usage_up_and_a_license_removed_in_the_cloud_down() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let id = approved(&cloud, &sat, "Lab").await;
    let (client, identity) = device(&sat, &cloud, "FCH0001", 5).await;

    // Meanwhile the cloud takes Lab's 5 licenses away: between syncs the satellite decides with
    // its copy, so the device stays authorized there.
    let transfer = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/licenses/transfer");
    let moved = cloud.admin("POST", &transfer, Some(json!({"tag": TAG, "count": 5, "to": "Default"}))).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let before = client.authorize(&identity, &usage(&[(TAG, 5)]), sat.now_ms()).await.unwrap();
    assert_eq!(before.status, AuthorizationStatus::Authorized);

    // A satellite registered by files names the cloud's URL.
    refused(&sat.admin("POST", "/api/v1/sync/now", Some(json!({}))).await, 400, "--cloud");
    let synced = sat.admin("POST", "/api/v1/sync/now", Some(json!({"cloud": cloud.base}))).await;
    assert_eq!(synced.status, 200, "{:?}", synced.body);
    assert_eq!((synced.body["requests_made"].as_i64(), synced.body["responses_applied"].as_i64()), (Some(1), Some(1)));

    // The cloud shows the satellite's instance and counts its usage in Lab.
    let mirrored = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    assert_eq!(mirrored["instances"][0]["sn"], "FCH0001", "{mirrored}");
    assert_eq!(mirrored["instances"][0]["usage"][TAG], 5, "{mirrored}");
    let lab = line(&cloud.licenses(DOMAIN, "Lab").await, TAG);
    assert_eq!((lab["in_use"].as_i64(), lab["status"].as_str()), (Some(5), Some("Out Of Compliance")), "{lab}");
    let listed = cloud.admin("GET", "/api/v1/satellites", None).await.body;
    assert!(listed["satellites"][0]["last_synchronization"].is_string(), "{listed}");
    consistent(&cloud).await;

    // The removal came down: the satellite's pool is out of compliance, and the device hears it.
    let at_sat = line(&sat.licenses(DOMAIN, "Lab").await, TAG);
    assert_eq!((at_sat["purchased"].as_i64(), at_sat["status"].as_str()), (Some(0), Some("Out Of Compliance")));
    let after = client.authorize(&identity, &usage(&[(TAG, 5)]), sat.now_ms()).await.unwrap();
    assert_eq!(after.status, AuthorizationStatus::OutOfCompliance);

    // The cloud's operator removes the satellite's device: its usage leaves Lab now, and the
    // satellite removes it with the next sync, which reports it gone.
    let remove = format!("/api/v1/satellites/{id}/instances/remove");
    let body = json!({"virtual_account": "Lab", "pid": "APIC-SERVER-M3", "sn": "FCH0001"});
    assert_eq!(cloud.admin("POST", &remove, Some(body.clone())).await.status, 200);
    refused(&cloud.admin("POST", &remove, Some(body)).await, 404, "reported no instance");
    assert_eq!(in_use(&cloud, "Lab").await, 0);
    let full = sat.admin("POST", "/api/v1/sync/now", Some(json!({"cloud": cloud.base, "full": true}))).await;
    assert_eq!(full.status, 200, "{:?}", full.body);
    assert_eq!(in_use(&cloud, "Lab").await, 0, "not mirrored again");
    let left = sat.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/instances"), None).await.body;
    assert_eq!(left["instances"].as_array().map(Vec::len), Some(0), "{left}");
    assert_eq!(in_use(&sat, "Lab").await, 0);
    consistent(&sat).await;

    // Licenses added in the cloud come down; another device uses them; syncing again counts
    // nothing twice, in a standard or a full sync.
    let add = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/licenses");
    assert_eq!(cloud.admin("POST", &add, Some(json!({"tag": TAG, "count": 10}))).await.status, 201);
    assert_eq!(sat.admin("POST", "/api/v1/sync/now", Some(json!({"cloud": cloud.base}))).await.status, 200);
    assert_eq!(line(&sat.licenses(DOMAIN, "Lab").await, TAG)["purchased"].as_i64(), Some(10));
    device(&sat, &cloud, "FCH0003", 5).await;
    for full in [false, false, true] {
        let again = sat.admin("POST", "/api/v1/sync/now", Some(json!({"cloud": cloud.base, "full": full}))).await;
        assert_eq!(again.status, 200, "{:?}", again.body);
        assert_eq!(in_use(&cloud, "Lab").await, 5);
        let mirrored = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
        assert_eq!(mirrored["instances"].as_array().map(Vec::len), Some(1), "{mirrored}");
    }
    consistent(&cloud).await;
}

#[tokio::test]
async fn file_sync_and_every_bad_file_refused_with_nothing_changed() {
    let cloud = cloud().await;
    let sat = satellite().await;
    approved(&cloud, &sat, "Lab").await;
    device(&sat, &cloud, "FCH0001", 3).await;

    let request = export(&sat, false).await;
    assert!(request.contains("kind: smartlic-sync-request"), "{request}");
    // The cloud refuses an altered and a cut-short request.
    refused(&file_sync(&cloud, &request.replace("FCH0001", "FCH0009")).await, 400, "altered after it was signed");
    refused(&file_sync(&cloud, &request[..request.len() * 2 / 3]).await, 400, "truncated");
    let untouched = line(&cloud.licenses(DOMAIN, "Lab").await, TAG);
    assert_eq!(untouched["in_use"].as_i64(), Some(0), "{untouched}");

    let response = file_sync(&cloud, &request).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let response = response.body["response"].as_str().unwrap().to_string();
    assert_eq!(in_use(&cloud, "Lab").await, 3);
    refused(&file_sync(&cloud, &request).await, 409, "replayed");

    // Another satellite's response (same local account name, another satellite) is foreign here.
    let other = satellite().await;
    approved(&cloud, &other, "Default").await;
    let foreign = file_sync(&cloud, &export(&other, true).await).await;
    assert_eq!(foreign.status, 200, "{:?}", foreign.body);
    refused(&import(&sat, foreign.body["response"].as_str().unwrap()).await, 400, "foreign");
    // An altered and a cut-short response.
    refused(&import(&sat, &response.replace("quantity: 5", "quantity: 500")).await, 400, "altered after it was signed");
    refused(&import(&sat, &response[..response.len() / 2]).await, 400, "truncated");
    let status = sat.admin("GET", "/api/v1/sync/status", None).await.body;
    assert_eq!(status["local_accounts"][0]["responses_applied"], 0, "{status}");

    let applied = import(&sat, &response).await;
    assert_eq!((applied.status, applied.body["responses_applied"].as_i64()), (200, Some(1)), "{:?}", applied.body);
    refused(&import(&sat, &response).await, 409, "replayed");

    // Stale: the response to request 2, applied after that to request 3, is refused; so is
    // request 2 at the cloud once 3 was applied.
    let (second, third) = (export(&sat, false).await, export(&sat, false).await);
    let third_response = file_sync(&cloud, &third).await;
    assert_eq!(third_response.status, 200, "{:?}", third_response.body);
    refused(&file_sync(&cloud, &second).await, 409, "stale");
    assert_eq!(import(&sat, third_response.body["response"].as_str().unwrap()).await.status, 200);
    let before = sat.admin("GET", "/api/v1/sync/status", None).await.body;
    // A response the cloud signed for request 2 cannot exist now; the one for request 1 is stale.
    refused(&import(&sat, &response).await, 409, "stale");
    assert_eq!(sat.admin("GET", "/api/v1/sync/status", None).await.body, before);
    assert_eq!(in_use(&cloud, "Lab").await, 3);
    consistent(&cloud).await;
}

#[tokio::test]
async fn a_standard_sync_after_a_full_one_carries_only_the_changes() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let id = approved(&cloud, &sat, "Lab").await;
    device(&sat, &cloud, "FCH0001", 2).await;
    let full = export(&sat, true).await;
    let response = file_sync(&cloud, &full).await.body["response"].as_str().unwrap().to_string();
    assert_eq!(import(&sat, &response).await.status, 200);

    device(&sat, &cloud, "FCH0002", 1).await;
    let standard = export(&sat, false).await;
    assert!(standard.contains("FCH0002") && !standard.contains("FCH0001"), "{standard}");
    assert!(standard.len() < full.len() + 200, "{standard}");
    let response = file_sync(&cloud, &standard).await.body["response"].as_str().unwrap().to_string();
    assert_eq!(import(&sat, &response).await.status, 200);
    let mirrored = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    assert_eq!(mirrored["instances"].as_array().map(Vec::len), Some(2), "{mirrored}");
    assert_eq!(in_use(&cloud, "Lab").await, 3);

    // An instance removed at the satellite goes in the next standard request, and its usage
    // leaves the cloud's pool; nothing else is carried.
    let instances = sat.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/instances"), None).await.body;
    let first = instances["instances"].as_array().unwrap().iter().find(|i| i.to_string().contains("FCH0001")).unwrap();
    let path = format!("/api/v1/accounts/{DOMAIN}/instances/{}", first["id"].as_str().unwrap());
    assert_eq!(sat.admin("DELETE", &path, None).await.status, 200);
    let standard = export(&sat, false).await;
    assert!(
        standard.contains("removed") && standard.contains("FCH0001") && !standard.contains("FCH0002"),
        "{standard}"
    );
    let response = file_sync(&cloud, &standard).await.body["response"].as_str().unwrap().to_string();
    assert_eq!(import(&sat, &response).await.status, 200);
    let mirrored = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    assert_eq!(mirrored["instances"].as_array().map(Vec::len), Some(1), "{mirrored}");
    assert_eq!(in_use(&cloud, "Lab").await, 1);
    // Nothing changed since: the next standard request carries no instance.
    assert!(!export(&sat, false).await.contains("FCH"));
    consistent(&cloud).await;
}

#[tokio::test]
async fn the_scheduled_sync_falls_due_after_30_days() {
    let cloud = cloud().await;
    let sat = satellite().await;
    approved(&cloud, &sat, "Lab").await;
    let status = sat.admin("GET", "/api/v1/sync/status", None).await.body;
    let account = &status["local_accounts"][0];
    // The clock runs on: compare the day.
    let due = Timestamp(sat.now_ms()).plus_days(30).to_rfc3339();
    let shown = account["synchronization_due"].as_str().unwrap_or_default();
    assert_eq!((&shown[..10], account["overdue"].as_bool()), (&due[..10], Some(false)), "{status}");

    sat.set_clock(&Timestamp(sat.now_ms()).plus_days(31).to_rfc3339()).await;
    let status = sat.admin("GET", "/api/v1/sync/status", None).await.body;
    assert_eq!(status["local_accounts"][0]["overdue"], true, "{status}");
    let alerts = sat.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/alerts"), None).await.body;
    assert!(alerts.to_string().contains("Synchronization"), "{alerts}");

    let openapi = cloud.call("", "GET", "/api/v1/openapi.json", None).await.body;
    for (method, path) in [
        ("post", "/api/v1/satellites/sync"),
        ("post", "/api/v1/satellites/file-sync"),
        ("get", "/api/v1/satellites/{id}/instances"),
        ("post", "/api/v1/sync/now"),
        ("post", "/api/v1/sync/export"),
        ("post", "/api/v1/sync/import"),
        ("get", "/api/v1/sync/status"),
    ] {
        assert!(openapi["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }

    // A sync makes the next one due 30 days from it.
    let synced = sat.admin("POST", "/api/v1/sync/now", Some(json!({"cloud": cloud.base}))).await;
    assert_eq!((synced.status, synced.body["overdue"].as_bool()), (200, Some(false)), "{:?}", synced.body);
}
