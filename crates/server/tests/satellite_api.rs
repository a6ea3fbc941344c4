//! The satellite's variant of the original REST API (issue 12, S-5; public facts §1.5) over real
//! HTTPS on loopback: `POST /backend/oauth/token` with a JSON body, the v1 resources under
//! `/backend/api/v1` and `/api/v1` with accounts named by local account name, `POST
//! /upstream_satellites/accounts`; every refusal, and each manager refusing the other's paths.

use crate::common;

use common::satellite::{approve, cloud, device_at, register_at, satellite, DOMAIN};
use common::{usage, Answer, Harness};
use serde_json::{json, Value};
use smartlic_proto::wire::AuthorizationStatus;

const OTHER: &str = "other.com";
const PREFIX: &str = "/services/api/smart-accounts-and-licensing";
const PLANT: &str = "/accounts/Plant%20Floor";

/// A cloud with example.com (its pool Lab: 5 ACI Advantage) and other.com; a satellite serving
/// Lab as local account "Plant Floor", other.com's Default as "Other Plant", and a local
/// account "Waiting" the cloud has not approved.
async fn managers() -> (Harness, Harness) {
    let cloud = cloud().await;
    cloud.account_with(OTHER, &[("ACI Advantage", 1)]).await;
    let sat = satellite().await;
    approve(&cloud, &sat, "Plant Floor", DOMAIN, &["Lab"]).await;
    approve(&cloud, &sat, "Other Plant", OTHER, &["Default"]).await;
    let waiting = json!({"name": "Waiting", "smart_account": "third.com"});
    assert_eq!(sat.admin("POST", "/api/v1/local-accounts", Some(waiting)).await.status, 201);
    (cloud, sat)
}

/// An answer in the original envelope: `status` ERROR and a `statusMessage` with `words`.
fn refused(a: &Answer, status: u16, words: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.body["status"], "ERROR", "{:?}", a.body);
    let message = a.body["statusMessage"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message}");
}

async fn json_token(h: &Harness, body: Value) -> Answer {
    let r = h.http.post(format!("{}/backend/oauth/token", h.base)).json(&body).send().await.unwrap();
    Answer { status: r.status().as_u16(), body: r.json().await.unwrap() }
}

fn credentials(id: &str, secret: &str) -> Value {
    json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret})
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_json_token_endpoint_serves_the_satellites_own_clients() {
    let (cloud, sat) = managers().await;
    let (id, secret, _) = sat.client(DOMAIN, json!({"name": "script", "role": "smart-account-admin"})).await;

    let granted = json_token(&sat, credentials(&id, &secret)).await;
    assert_eq!((granted.status, granted.body["token_type"].as_str()), (200, Some("Bearer")), "{:?}", granted.body);
    let token = granted.body["access_token"].as_str().unwrap();
    let pools = sat.call(token, "GET", &format!("/backend/api/v1{PLANT}/virtual-accounts"), None).await;
    assert_eq!(pools.status, 200, "{:?}", pools.body);
    assert!(names(&pools.body, "virtualAccounts").contains(&"Lab".to_string()), "{:?}", pools.body);

    // A wrong secret, a missing one, a form body: refused in OAuth2's shape, no token.
    let wrong = json_token(&sat, credentials(&id, "not-the-secret")).await;
    assert_eq!((wrong.status, wrong.body["error"].as_str()), (401, Some("invalid_client")), "{:?}", wrong.body);
    assert!(wrong.body.get("access_token").is_none());
    let missing = json_token(&sat, json!({"grant_type": "client_credentials", "client_id": id})).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error_description"], "client_id and client_secret are required");
    let form = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)];
    let r = sat.http.post(format!("{}/backend/oauth/token", sat.base)).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().starts_with("send a JSON body"), "{body}");

    // The cloud's clients and tokens are not the satellite's.
    let (cloud_id, cloud_secret, cloud_token) =
        cloud.client(DOMAIN, json!({"name": "cloud-script", "role": "smart-account-admin"})).await;
    assert_eq!(json_token(&sat, credentials(&cloud_id, &cloud_secret)).await.status, 401);
    let foreign = sat.call(&cloud_token, "GET", &format!("/backend/api/v1{PLANT}/virtual-accounts"), None).await;
    refused(&foreign, 401, "the access token is unknown");

    // The cloud has no /backend: it says where its own token endpoint is.
    refused(&json_token(&cloud, credentials(&cloud_id, &cloud_secret)).await, 404, "this manager is the cloud");
}

#[tokio::test]
async fn upstream_satellites_accounts_lists_what_each_caller_may_see() {
    let (cloud, sat) = managers().await;
    for base in ["/backend/api/v1", "/api/v1"] {
        let all = sat.admin("POST", &format!("{base}/upstream_satellites/accounts"), None).await;
        assert_eq!((all.status, all.body["status"].as_str()), (200, Some("SUCCESS")), "{:?}", all.body);
        assert_eq!(names(&all.body, "accounts"), ["Other Plant", "Plant Floor", "Waiting"]);
        let plant = &all.body["accounts"][1];
        assert_eq!((plant["accountDomain"].as_str(), plant["status"].as_str()), (Some(DOMAIN), Some("approved")));
        assert_eq!(all.body["accounts"][2]["status"], "not registered");
    }
    let (_, _, token) = sat.client(DOMAIN, json!({"name": "script", "role": "smart-account-user"})).await;
    let own = sat.call(&token, "POST", "/api/v1/upstream_satellites/accounts", Some(json!({}))).await;
    assert_eq!(names(&own.body, "accounts"), ["Plant Floor"], "another tenant's local accounts stay hidden");
    refused(&sat.call("", "POST", "/backend/api/v1/upstream_satellites/accounts", None).await, 401, "Bearer");

    for path in ["/backend/api/v1/upstream_satellites/accounts", "/api/v1/upstream_satellites/accounts"] {
        refused(&cloud.admin("POST", path, None).await, 404, "this manager is the cloud");
    }

    let openapi = sat.call("", "GET", "/api/v1/openapi.json", None).await.body;
    for (method, path) in [
        ("post", "/backend/oauth/token"),
        ("post", "/backend/api/v1/upstream_satellites/accounts"),
        ("get", "/backend/api/v1/accounts/{name}/virtual-accounts"),
        ("post", "/backend/api/v1/accounts/{name}/virtual-accounts"),
        ("post", "/backend/api/v1/accounts/{name}/licenses"),
        ("get", "/backend/api/v1/accounts/{name}/virtual-accounts/{va}/tokens"),
    ] {
        let op = &openapi["paths"][path][method];
        assert_eq!(op["tags"][0], "satellite-original-api", "{method} {path} missing from the OpenAPI document");
    }
    let listing = &openapi["paths"]["/backend/api/v1/accounts/{name}/virtual-accounts"]["get"]["parameters"];
    assert_eq!(listing.as_array().map(Vec::len), Some(1), "{listing}");
    // Each manager's document lists the original API it serves, not the other's.
    let cloud_doc = cloud.call("", "GET", "/api/v1/openapi.json", None).await.body;
    let listed = |doc: &Value, prefix: &str| doc["paths"].as_object().unwrap().keys().any(|p| p.starts_with(prefix));
    assert!(listed(&cloud_doc, PREFIX) && !listed(&cloud_doc, "/backend/"));
    assert!(!listed(&openapi, PREFIX) && listed(&openapi, "/backend/"));
}

#[tokio::test]
async fn resources_answer_by_local_account_name_at_both_bases() {
    let (cloud, sat) = managers().await;
    let (_, _, token) = sat.client(DOMAIN, json!({"name": "script", "role": "smart-account-admin"})).await;
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let token = token.clone();
        let sat = &sat;
        async move { sat.call(&token, method, &path, body).await }
    };
    // smartlic's own /api/v1, which names accounts by domain, is untouched; the original API
    // lists the same pools by the local account's name, at both bases.
    let own = call("GET", format!("/api/v1/accounts/{DOMAIN}/virtual-accounts"), None).await;
    assert_eq!((own.status, own.body.get("status")), (200, None), "{:?}", own.body);
    let own = names(&own.body, "virtual_accounts");
    assert!(own.contains(&"Lab".to_string()), "{own:?}");
    for base in ["/backend/api/v1", "/api/v1"] {
        let pools = call("GET", format!("{base}{PLANT}/virtual-accounts"), None).await;
        assert_eq!((pools.status, pools.body["status"].as_str()), (200, Some("SUCCESS")), "{:?}", pools.body);
        assert_eq!(names(&pools.body, "virtualAccounts"), own);
    }

    // A token made through the original API registers a device at the satellite.
    let body = json!({"description": "from a script", "expiresAfterDays": "365", "exportControlled": "Allowed"});
    let made = call("POST", format!("/api/v1{PLANT}/virtual-accounts/Lab/tokens"), Some(body)).await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let device_token = made.body["tokenInfo"]["token"].as_str().unwrap();
    let device = device_at(&sat, &cloud);
    let identity = register_at(&device, "FCH0000AP01", device_token, sat.now_ms()).await;
    let auth = device.authorize(&identity, &usage(&[("ACI Advantage", 3)]), sat.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);

    let pools = json!({"virtualAccounts": ["Lab"]});
    let licenses = call("POST", format!("/backend/api/v1{PLANT}/licenses"), Some(pools)).await;
    let row = &licenses.body["licenses"][0];
    assert_eq!(
        (row["license"].as_str(), row["quantity"].as_i64(), row["inUse"].as_i64()),
        (Some("ACI Advantage"), Some(5), Some(3))
    );
    let devices = call("GET", format!("/api/v1{PLANT}/virtual-accounts/Lab/devices"), None).await;
    assert_eq!(devices.body["devices"][0]["sudi"]["udiSerialNumber"], "FCH0000AP01", "{:?}", devices.body);
    let tokens_path = format!("/backend/api/v1{PLANT}/virtual-accounts/Lab/tokens");
    assert_eq!(call("GET", tokens_path.clone(), None).await.body["tokens"].as_array().map(Vec::len), Some(1));

    // Bad input is refused naming it, and creates nothing.
    let bad = call("POST", tokens_path.clone(), Some(json!({"expiresAfterDays": "forever"}))).await;
    refused(&bad, 400, "must be a number of days from 1 to 365");
    assert_eq!(call("GET", tokens_path, None).await.body["tokens"].as_array().map(Vec::len), Some(1));

    // Unknown, foreign, unapproved and domain-named accounts read alike: not found.
    for (name, caller) in [
        ("Nope", token.as_str()),
        ("Other%20Plant", token.as_str()),
        ("Waiting", &sat.bearer()),
        ("example.com", &sat.bearer()),
    ] {
        let a = sat.call(caller, "GET", &format!("/backend/api/v1/accounts/{name}/virtual-accounts"), None).await;
        refused(&a, 404, &format!("Local Account {} not found", name.replace("%20", " ")));
    }
    let operator = sat.admin("GET", "/api/v1/accounts/Other%20Plant/virtual-accounts", None).await;
    assert!(names(&operator.body, "virtualAccounts").contains(&"Default".to_string()), "{:?}", operator.body);
    refused(
        &call("GET", format!("/api/v1{PLANT}/virtual-accounts/Lab2/devices"), None).await,
        404,
        "Virtual Account Lab2",
    );
    refused(&call("GET", format!("/backend/api/v1{PLANT}/nothing"), None).await, 404, "is not an endpoint");
    let wrong_method = call("DELETE", format!("/api/v1{PLANT}/licenses"), None).await;
    refused(&wrong_method, 405, "DELETE is not allowed");

    // The cloud's original API is not the satellite's, and the reverse.
    for (method, path) in [("GET", format!("{PREFIX}/v2/accounts")), ("POST", "/as/token.oauth2".to_string())] {
        refused(&sat.admin(method, &path, None).await, 404, "this manager is a satellite");
    }
    let at_cloud = cloud.admin("GET", &format!("/backend/api/v1{PLANT}/virtual-accounts"), None).await;
    refused(&at_cloud, 404, "this manager is the cloud");
    assert_eq!(cloud.admin("GET", &format!("{PREFIX}/v2/accounts"), None).await.status, 200);
}
