//! What comes down from the cloud to a satellite besides licenses (issue 12, S-3): the pools
//! the cloud's operator reassigns (one manager per pool, changeable), moving with the serving
//! satellite's next synchronisation so that no usage is lost or counted twice, and every
//! refusal around it.

use crate::common;

use common::satellite::{
    approve, approved, cloud, consistent, device, device_at, export, file_sync, import, in_use, refusal_text, refused,
    satellite, sync_now, try_register_at, DOMAIN, TAG,
};
use common::{usage, Answer, Harness};
use serde_json::{json, Value};
use smartlic_proto::wire::AuthorizationStatus;

async fn reassign(cloud: &Harness, pool: &str, to: Value) -> Answer {
    let body = json!({"smart_account": DOMAIN, "virtual_account": pool, "to_satellite": to});
    cloud.admin("POST", "/api/v1/satellites/reassign", Some(body)).await
}

async fn mirrored(cloud: &Harness, id: i64) -> usize {
    let listed = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    listed["instances"].as_array().map_or(0, Vec::len)
}

fn tokens_of(pool: &str) -> String {
    format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/{pool}/tokens")
}

#[tokio::test]
async fn a_pool_reassigned_to_the_cloud_leaves_the_satellite_at_its_next_sync_and_comes_back() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let id = approved(&cloud, &sat, "Lab").await;
    let (client, identity) = device(&sat, &cloud, "FCH0001", 3).await;
    let old_token = sat.token(DOMAIN, "Lab", json!({})).await;
    sync_now(&sat, &cloud, false).await;
    assert_eq!(in_use(&cloud, "Lab").await, 3);

    refused(&reassign(&cloud, "Lab", json!(id)).await, 409, "served by satellite smartlic-satellite already");
    refused(&reassign(&cloud, "Lab", json!(99)).await, 404, "satellite 99 does not exist");
    refused(&reassign(&cloud, "Nope", Value::Null).await, 404, "'Nope' does not exist");
    let moved = reassign(&cloud, "Lab", Value::Null).await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(
        moved.body,
        json!({"virtual_account": "Lab", "from": "satellite smartlic-satellite", "to": "the cloud", "pending": true})
    );
    refused(&reassign(&cloud, "Lab", Value::Null).await, 409, "waits for that satellite's next synchronisation");
    // The satellites' list shows the move waiting, until the sync that completes it.
    let listed = cloud.admin("GET", "/api/v1/satellites", None).await.body;
    let waiting = listed["satellites"][0]["pending_moves"].to_string();
    assert!(waiting.contains("'Lab' to the cloud (asked by"), "{listed}");

    // Until its next sync the satellite serves Lab alone: its device uses more there, and the
    // cloud still issues no token of Lab.
    let more = client.authorize(&identity, &usage(&[(TAG, 4)]), sat.now_ms()).await.unwrap();
    assert_eq!(more.status, AuthorizationStatus::Authorized);
    refused(
        &cloud.admin("POST", &tokens_of("Lab"), Some(json!({}))).await,
        409,
        "created and revoked at the satellite",
    );

    // The sync carries the last usage up, then Lab moves: the satellite's instances leave it in
    // both managers, and the satellite serves Lab no more.
    sync_now(&sat, &cloud, false).await;
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (0, 0));
    let listed = cloud.admin("GET", "/api/v1/satellites", None).await.body;
    assert_eq!(listed["satellites"][0]["virtual_accounts"], json!([]), "{listed}");
    assert_eq!(listed["satellites"][0]["pending_moves"], json!([]), "{listed}");
    let events = cloud.admin("GET", "/api/v1/events", None).await.body.to_string();
    assert!(events.contains("satellite.pool-released"), "{events}");
    assert_eq!(in_use(&sat, "Lab").await, 0);
    let left = sat.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/instances"), None).await.body;
    assert_eq!(left["instances"].as_array().map(Vec::len), Some(0), "{left}");
    assert!(client.authorize(&identity, &usage(&[(TAG, 1)]), sat.now_ms()).await.is_err());
    let e = try_register_at(&device_at(&sat, &cloud), "FCH0002", &old_token, sat.now_ms()).await.unwrap_err();
    assert!(refusal_text(&e).contains("no longer served by this satellite"), "{e}");
    refused(&sat.admin("POST", &tokens_of("Lab"), Some(json!({}))).await, 409, "no longer served by this satellite");

    // The cloud serves Lab now: the device registers there with a cloud token, counted once,
    // however many syncs follow.
    let token = cloud.token(DOMAIN, "Lab", json!({})).await;
    let at_cloud = cloud.register("FCH0001", &token).await;
    let auth = cloud.devices.authorize(&at_cloud, &usage(&[(TAG, 3)]), cloud.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);
    for full in [false, true] {
        sync_now(&sat, &cloud, full).await;
        assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (3, 0));
    }
    consistent(&cloud).await;
    consistent(&sat).await;

    // Back to the satellite: not while the cloud has instances in Lab; once removed, at once.
    refused(&reassign(&cloud, "Lab", json!(id)).await, 409, "1 product instance(s) registered with the cloud");
    let instances = cloud.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/instances"), None).await.body;
    let at = instances["instances"].as_array().unwrap().iter().find(|i| i.to_string().contains("FCH0001")).unwrap();
    let remove = format!("/api/v1/accounts/{DOMAIN}/instances/{}", at["id"].as_str().unwrap());
    assert_eq!(cloud.admin("DELETE", &remove, None).await.status, 200);
    let back = reassign(&cloud, "Lab", json!(id)).await;
    assert_eq!((back.status, back.body["pending"].as_bool()), (200, Some(false)), "{:?}", back.body);
    sync_now(&sat, &cloud, false).await;
    device(&sat, &cloud, "FCH0003", 1).await;
    sync_now(&sat, &cloud, false).await;
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (1, 1));
    consistent(&cloud).await;
}

#[tokio::test]
async fn a_pool_moves_between_satellites_and_a_served_pool_is_not_deleted() {
    let cloud = cloud().await;
    let (first, second) = (satellite().await, satellite().await);
    let a = approved(&cloud, &first, "Lab").await;
    approve(&cloud, &second, "Plant", DOMAIN, &["Default"]).await;
    let b = a + 1;
    device(&first, &cloud, "FCH0001", 2).await;
    sync_now(&first, &cloud, false).await;

    let lab = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab");
    refused(&cloud.admin("DELETE", &lab, None).await, 409, "reassign it to the cloud first");
    let moved = reassign(&cloud, "Lab", json!(b)).await;
    assert_eq!((moved.status, moved.body["pending"].as_bool()), (200, Some(true)), "{:?}", moved.body);

    // The second satellite gets Lab only once the first let it go.
    sync_now(&second, &cloud, false).await;
    assert_eq!(second.admin("POST", &tokens_of("Lab"), Some(json!({}))).await.status, 404);
    sync_now(&first, &cloud, false).await;
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, a).await), (0, 0));
    sync_now(&second, &cloud, false).await;
    let copy = second.licenses(DOMAIN, "Lab").await;
    assert!(copy.to_string().contains(TAG), "Lab's licenses came down: {copy}");
    device(&second, &cloud, "FCH0009", 4).await;
    for sat in [&second, &first, &second] {
        sync_now(sat, &cloud, false).await;
        assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, a).await, mirrored(&cloud, b).await), (4, 0, 1));
    }
    consistent(&cloud).await;
}

/// By files, a response carrying the release may be lost: the satellite's next requests still
/// report the pool and are not refused for it (nor counted), and every response carries the
/// release until one is applied.
#[tokio::test]
async fn a_release_comes_down_until_the_satellite_applied_it() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let id = approved(&cloud, &sat, "Lab").await;
    let (client, identity) = device(&sat, &cloud, "FCH0001", 2).await;
    assert_eq!(reassign(&cloud, "Lab", Value::Null).await.status, 200);

    let lost = file_sync(&cloud, &export(&sat, false).await).await;
    assert_eq!(lost.status, 200, "{:?}", lost.body);
    assert!(lost.body["response"].as_str().unwrap().contains("released"), "{:?}", lost.body);
    // The response is lost; the device uses more, the next request reports Lab again.
    client.authorize(&identity, &usage(&[(TAG, 3)]), sat.now_ms()).await.unwrap();
    let again = export(&sat, false).await;
    assert!(again.contains("FCH0001"), "{again}");
    let response = file_sync(&cloud, &again).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (0, 0), "a released pool is not mirrored");
    let response = response.body["response"].as_str().unwrap().to_string();
    assert!(response.contains("released"), "{response}");
    assert_eq!(import(&sat, &response).await.status, 200);
    assert_eq!(in_use(&sat, "Lab").await, 0);
    refused(&import(&sat, lost.body["response"].as_str().unwrap()).await, 409, "stale");

    // Acknowledged: the next response carries the release no more, and the request no Lab.
    let next = export(&sat, false).await;
    assert!(!next.contains("FCH0001"), "{next}");
    let done = file_sync(&cloud, &next).await;
    assert!(!done.body["response"].as_str().unwrap().contains("released"), "{:?}", done.body);
    assert_eq!(import(&sat, done.body["response"].as_str().unwrap()).await.status, 200);
    consistent(&cloud).await;
    consistent(&sat).await;
}
