//! The cloud reads a synchronisation's body, which may be hundreds of megabytes, only from an
//! authenticated sender: over the network, the satellite's signed `x-smartlic-satellite-auth`
//! header (its key, a timestamp near the cloud's clock, a new nonce); in File Sync, the operator's
//! bearer token. Anyone else is refused before the body is read, naming why, with nothing changed.

use crate::common;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use common::satellite::{approved, cloud, export, key_of, refused, satellite, DOMAIN};
use common::{Answer, Harness};
use serde_json::{json, Value};
use smartlic_proto::sync::{SignedBy, SyncAuth, SyncFile, SYNC_AUTH_HEADER};
use smartlic_proto::CertificateAuthority;

/// A body past axum's 2 MB default, which only an authenticated sender may send.
fn large_body() -> Value {
    json!({ "request": "x".repeat(3 * 1024 * 1024) })
}

/// A header of satellite `id`'s local account `Plant`, at `at_ms`, signed by `ca`.
fn header(ca: &CertificateAuthority, id: i64, at_ms: i64, nonce: &str) -> String {
    let key = ca.signer();
    let auth = SyncAuth {
        satellite_id: id,
        local_account: "Plant".into(),
        timestamp: at_ms,
        nonce: nonce.into(),
        signed_by: SignedBy::of(key),
    };
    auth.to_header(key).unwrap()
}

/// POSTs `body` to the cloud's network synchronisation with `header`; `None` when the cloud
/// closed the connection before the body was all sent (it refused without reading it).
async fn post(cloud: &Harness, path: &str, auth: Option<(&str, String)>, body: &Value) -> Option<Answer> {
    let mut request = cloud.http.post(format!("{}{path}", cloud.base)).json(body);
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    let answer = request.send().await.ok()?;
    let status = answer.status().as_u16();
    Some(Answer { status, body: answer.json().await.unwrap_or(Value::Null) })
}

/// The cloud's view of what satellite `id` reported: unchanged by any refused request.
async fn reported(cloud: &Harness, id: i64) -> Value {
    cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body
}

#[tokio::test]
async fn a_large_body_of_an_unauthenticated_sender_is_refused_unread() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let id = approved(&cloud, &sat, "Lab").await;
    let before = reported(&cloud, id).await;

    // Network: no header, or a header of no satellite, is refused before the body is read.
    let nobody = Some((SYNC_AUTH_HEADER, "bm9wZQ==".to_string()));
    for auth in [None, nobody] {
        if let Some(a) = post(&cloud, "/api/v1/satellites/sync", auth, &large_body()).await {
            refused(&a, 401, SYNC_AUTH_HEADER);
        }
    }
    // File Sync: only the operator's body is read; another caller's is refused first.
    let (_, _, user) = cloud.client(DOMAIN, json!({"name": "ci-bot", "role": "smart-account-admin"})).await;
    let bearer = Some(("authorization", format!("Bearer {user}")));
    if let Some(a) = post(&cloud, "/api/v1/satellites/file-sync", bearer, &large_body()).await {
        refused(&a, 403, "only the operator");
    }
    if let Some(a) = post(&cloud, "/api/v1/satellites/file-sync", None, &large_body()).await {
        refused(&a, 401, "Bearer");
    }
    // The operator's large body is read (and refused as no synchronisation file).
    let operator = Some(("authorization", format!("Bearer {}", cloud.bearer())));
    let read = post(&cloud, "/api/v1/satellites/file-sync", operator, &large_body()).await.expect("an answer");
    refused(&read, 400, "truncated or not a synchronisation file");
    assert_eq!(reported(&cloud, id).await, before);
}

#[tokio::test]
async fn each_bad_header_is_refused_naming_why_and_a_good_one_goes_through_once() {
    let cloud = cloud().await;
    let (sat, other_sat) = (satellite().await, satellite().await);
    let id = approved(&cloud, &sat, "Lab").await;
    let (key, other_key) = (key_of(&sat), key_of(&other_sat));
    let body = json!({ "request": export(&sat, false).await });
    let now = cloud.now_ms();
    let before = reported(&cloud, id).await;

    let mut altered = SyncFile::from_header(&header(&key, id, now, "nonce-of-the-altered-one")).unwrap();
    altered.signature = SyncFile::from_header(&header(&key, id, now, "another-nonce-entirely")).unwrap().signature;
    let altered = B64.encode(altered.to_yaml());
    for (value, why) in [
        (altered, "tampered"),
        (header(&key, id, now - 11 * 60_000, "nonce-of-a-stale-header"), "stale"),
        (header(&other_key, id, now, "nonce-of-another-satellite"), "foreign"),
        (header(&key, id + 1, now, "nonce-of-an-unknown-satellite"), "not approved"),
        (header(&key, id, now, "short"), "16 to 128"),
        ("not a header".to_string(), "not a signed satellite authentication"),
    ] {
        let a = post(&cloud, "/api/v1/satellites/sync", Some((SYNC_AUTH_HEADER, value)), &body).await.unwrap();
        refused(&a, 401, why);
        assert_eq!(reported(&cloud, id).await, before, "{why}");
    }

    let good = header(&key, id, now, "nonce-of-the-good-header");
    let a = post(&cloud, "/api/v1/satellites/sync", Some((SYNC_AUTH_HEADER, good.clone())), &body).await.unwrap();
    assert_eq!(a.status, 200, "{:?}", a.body);
    let after = reported(&cloud, id).await;
    assert!(after["last_sync_at"].is_string(), "{after}");
    let replayed = post(&cloud, "/api/v1/satellites/sync", Some((SYNC_AUTH_HEADER, good)), &body).await.unwrap();
    refused(&replayed, 401, "seen before");
    assert_eq!(reported(&cloud, id).await, after);
}
