//! A real cloud and a real satellite on loopback synchronising (issue 12, S-3): usage and
//! instances go up, licenses come down, online and by YAML files; every bad file is refused
//! naming why with nothing changed; a standard sync carries only the changes; the scheduled
//! sync runs by itself when due and retries one that failed; foreign files are refused as such.

use crate::common;

use common::satellite::{
    approved, cloud, consistent, device, export, file_sync, import, in_use, line, refused, satellite, sync_now, DOMAIN,
    TAG,
};
use common::usage;
use serde_json::json;
use smartlic_core::Timestamp;
use smartlic_proto::wire::AuthorizationStatus;

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

    // The cloud's clock too: it accepts a network request within its clock tolerance only.
    let later = Timestamp(sat.now_ms()).plus_days(31).to_rfc3339();
    cloud.set_clock(&later).await;
    sat.set_clock(&later).await;
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

/// A request carried to another cloud, or a response to another satellite, is a genuine file
/// of another sender: refused as foreign (not as altered), with nothing changed on either side.
#[tokio::test]
async fn files_of_another_cloud_or_satellite_are_refused_as_foreign_both_ways() {
    let (cloud, other_cloud) = (cloud().await, cloud().await);
    let (sat, other_sat) = (satellite().await, satellite().await);
    let id = approved(&cloud, &sat, "Lab").await;
    assert_eq!(approved(&other_cloud, &other_sat, "Lab").await, id, "each cloud knows its satellite by the same id");
    device(&sat, &cloud, "FCH0001", 3).await;

    let request = export(&sat, true).await;
    refused(&file_sync(&other_cloud, &request).await, 400, "foreign");
    assert_eq!(in_use(&other_cloud, "Lab").await, 0);
    let mirrored = other_cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    assert_eq!(mirrored["instances"].as_array().map(Vec::len), Some(0), "{mirrored}");

    let other_response = file_sync(&other_cloud, &export(&other_sat, false).await).await;
    assert_eq!(other_response.status, 200, "{:?}", other_response.body);
    let other_response = other_response.body["response"].as_str().unwrap().to_string();
    let before = sat.admin("GET", "/api/v1/sync/status", None).await.body;
    refused(&import(&sat, &other_response).await, 400, "foreign");
    // A response brought to the cloud as a request is another kind of file: foreign too.
    refused(&file_sync(&cloud, &other_response).await, 400, "foreign");
    assert_eq!(sat.admin("GET", "/api/v1/sync/status", None).await.body, before);

    // The right files still go through.
    let response = file_sync(&cloud, &request).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(import(&sat, response.body["response"].as_str().unwrap()).await.status, 200);
    assert_eq!(in_use(&cloud, "Lab").await, 3);
}

/// The satellite synchronises by itself when due, from its jobs on its clock; one that fails
/// (the cloud unreachable) is recorded, raises the alert, and is retried until it succeeds.
#[tokio::test]
async fn the_scheduled_sync_runs_by_itself_and_a_failed_one_is_retried() {
    let cloud = cloud().await;
    let sat = satellite().await;
    approved(&cloud, &sat, "Lab").await;
    device(&sat, &cloud, "FCH0001", 2).await;
    let schedule = |body| sat.admin("POST", "/api/v1/sync/schedule", Some(body));
    refused(&schedule(json!({"interval_days": 0})).await, 400, "between 1 and 365");
    refused(&schedule(json!({"cloud": "http://cloud"})).await, 400, "not an https:// URL");
    // Registered by files, the local account has no cloud URL: the operator gives one, of a
    // cloud that is down.
    let down = format!("https://127.0.0.1:{}", common::free_port());
    let set = schedule(json!({"interval_days": 7, "cloud": down})).await;
    assert_eq!((set.status, set.body["interval_days"].as_i64()), (200, Some(7)), "{:?}", set.body);
    let status = || async { sat.admin("GET", "/api/v1/sync/status", None).await.body["local_accounts"][0].clone() };

    // Six days on nothing is due.
    let start = Timestamp(sat.now_ms());
    sat.set_clock(&start.plus_days(6).to_rfc3339()).await;
    assert_eq!(status().await["requests_made"], 0);

    // Eight days on the scheduled sync ran, failed, and says so: status, event and alert.
    let failed_at = start.plus_days(8);
    sat.set_clock(&failed_at.to_rfc3339()).await;
    let s = status().await;
    assert_eq!((s["requests_made"].as_i64(), s["responses_applied"].as_i64()), (Some(1), Some(0)), "{s}");
    assert!(s["last_error"].as_str().unwrap_or_default().contains("cannot reach the cloud"), "{s}");
    assert_eq!((s["overdue"].as_bool(), s["last_failed_attempt"].is_string()), (Some(true), true), "{s}");
    let events = sat.admin("GET", "/api/v1/events", None).await.body.to_string();
    assert!(events.contains("local-account.sync-failed"), "{events}");
    let alerts = sat.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/alerts"), None).await.body.to_string();
    assert!(alerts.contains("Synchronization Due") && alerts.contains("the last attempt failed"), "{alerts}");
    assert_eq!(in_use(&cloud, "Lab").await, 0);

    // The cloud is back; within the retry pause nothing is tried, after it the sync succeeds.
    assert_eq!(schedule(json!({"cloud": cloud.base})).await.status, 200);
    sat.set_clock(&Timestamp(failed_at.0 + 30 * 60_000).to_rfc3339()).await;
    assert_eq!(status().await["requests_made"], 1);
    // The cloud's clock agrees with the satellite's (it accepts network requests within its
    // clock tolerance only).
    let retried_at = Timestamp(failed_at.0 + 61 * 60_000).to_rfc3339();
    cloud.set_clock(&retried_at).await;
    sat.set_clock(&retried_at).await;
    let s = status().await;
    assert_eq!((s["requests_made"].as_i64(), s["responses_applied"].as_i64()), (Some(2), Some(2)), "{s}");
    assert_eq!((s["last_error"].is_null(), s["overdue"].as_bool()), (true, Some(false)), "{s}");
    assert_eq!(in_use(&cloud, "Lab").await, 2, "the usage went up with the scheduled sync");
    let alerts = sat.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/alerts"), None).await.body.to_string();
    assert!(!alerts.contains("Synchronization Due"), "{alerts}");
    // The next one is due a week after this one.
    let due = s["synchronization_due"].as_str().unwrap_or_default().to_string();
    let retried = Timestamp::parse(&retried_at).unwrap();
    assert_eq!(&due[..10], &retried.plus_days(7).to_rfc3339()[..10], "{s}");
    // The cloud knows the interval from the request: it expects the next sync a week on too.
    let listed = cloud.admin("GET", "/api/v1/satellites", None).await.body;
    let expected = listed["satellites"][0]["synchronization_due"].as_str().unwrap_or_default().to_string();
    let synced = listed["satellites"][0]["last_synchronization"].as_str().unwrap_or_default().to_string();
    assert_eq!(expected, Timestamp::parse(&synced).unwrap().plus_days(7).to_rfc3339(), "{listed}");
}

/// A license removed in the cloud while devices use it at the satellite puts the pool out of
/// compliance at the satellite after the next sync, and both managers count the same usage
/// from their records, sync after sync (nothing lost or counted twice).
#[tokio::test]
async fn a_license_removed_in_the_cloud_puts_the_pool_out_of_compliance_with_equal_counts() {
    let cloud = cloud().await;
    let sat = satellite().await;
    approved(&cloud, &sat, "Lab").await;
    let (client, identity) = device(&sat, &cloud, "FCH0001", 3).await;
    device(&sat, &cloud, "FCH0002", 2).await;
    let transfer = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/licenses/transfer");
    let moved = cloud.admin("POST", &transfer, Some(json!({"tag": TAG, "count": 3, "to": "Default"}))).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);

    let both = || async {
        let (c, s) = (line(&cloud.licenses(DOMAIN, "Lab").await, TAG), line(&sat.licenses(DOMAIN, "Lab").await, TAG));
        consistent(&cloud).await;
        consistent(&sat).await;
        (c, s)
    };
    for full in [false, false, true] {
        sync_now(&sat, &cloud, full).await;
        let (c, s) = both().await;
        for (pool, manager) in [(&c, "cloud"), (&s, "satellite")] {
            assert_eq!(
                (pool["purchased"].as_i64(), pool["in_use"].as_i64(), pool["status"].as_str()),
                (Some(2), Some(5), Some("Out Of Compliance")),
                "{manager}: {pool}"
            );
        }
    }
    let heard = client.authorize(&identity, &usage(&[(TAG, 3)]), sat.now_ms()).await.unwrap();
    assert_eq!(heard.status, AuthorizationStatus::OutOfCompliance);

    // Given back in the cloud, the pool is in compliance in both after the next sync.
    let back = json!({"tag": TAG, "count": 3, "to": "Lab"});
    let default = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Default/licenses/transfer");
    assert_eq!(cloud.admin("POST", &default, Some(back)).await.status, 200);
    sync_now(&sat, &cloud, false).await;
    let (c, s) = both().await;
    assert_eq!((c["in_use"].as_i64(), s["in_use"].as_i64()), (Some(5), Some(5)));
    assert_eq!((c["status"].as_str(), s["status"].as_str()), (Some("In Compliance"), Some("In Compliance")));
}
