//! The original manager's REST API (C-17): token endpoints and the first endpoints, with the
//! field names and envelope existing scripts read, and the paths they send.

mod common;

use common::*;
use serde_json::{json, Value};

const PREFIX: &str = "/services/api/smart-accounts-and-licensing";

async fn legacy_token(h: &Harness, path: &str, client_id: &str, secret: &str) -> (u16, Value) {
    // Unencoded form body, as the original clients build it by hand.
    let body = format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}");
    let r = h
        .http
        .post(format!("{}{path}", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get(h: &Harness, token: &str, path: &str) -> (u16, Value) {
    let r = h.http.get(format!("{}{path}", h.base)).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(h: &Harness, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = h.http.post(format!("{}{path}", h.base)).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn an_existing_script_lists_licenses_with_their_substitutions() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    let dev = h.register("LEG1", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();
    let client = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "script", "role": "smart-account-user"})),
        )
        .await;
    let secret = client.body["client_secret"].as_str().unwrap().to_string();

    for path in ["/as/token.oauth2", "/oauth2/default/v1/token"] {
        let (status, answer) = legacy_token(&h, path, "script", &secret).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["token_type"], "Bearer");
        assert!(answer["expires_in"].as_i64().unwrap() > 0);
    }
    let (_, answer) = legacy_token(&h, "/as/token.oauth2", "script", &secret).await;
    let bearer = answer["access_token"].as_str().unwrap().to_string();

    let (status, accounts) = get(&h, &bearer, &format!("{PREFIX}/v2/accounts")).await;
    assert_eq!((status, accounts["status"].as_str()), (200, Some("SUCCESS")), "{accounts}");
    assert_eq!(accounts["accounts"][0]["accountDomain"], "example.com");
    assert_eq!(accounts["accounts"][0]["roles"][0]["role"], "SMART_ACCOUNT_USER");

    // A doubled prefix and a double slash, as some clients send them.
    let (status, vas) = get(
        &h,
        &bearer,
        "//services/api/services/api/smart-accounts-and-licensing/v1/accounts/example.com/customer/virtual-accounts",
    )
    .await;
    assert_eq!(status, 200, "{vas}");
    assert_eq!(
        vas["virtualAccounts"][0],
        json!({"isDefault": "true", "name": "Default", "description": "Default virtual account", "commerceAccessLevel": "FULL"})
    );

    let (status, licenses) = post(
        &h,
        &bearer,
        &format!("{PREFIX}/v1/accounts/example.com/licenses"),
        json!({"virtualAccounts": ["Default"], "limit": 50, "offset": 0}),
    )
    .await;
    assert_eq!(status, 200, "{licenses}");
    assert_eq!(licenses["totalRecords"], 2);
    let essentials =
        licenses["licenses"].as_array().unwrap().iter().find(|l| l["license"] == "ACI Essentials").unwrap();
    assert_eq!((essentials["quantity"].as_i64(), essentials["inUse"].as_i64()), (Some(0), Some(10)));
    assert_eq!(essentials["licenseSubstitutions"][0]["substitutedLicense"], "ACI Advantage");
    assert_eq!(essentials["licenseSubstitutions"][0]["substitutedQuantity"], 10);
    let advantage = licenses["licenses"].as_array().unwrap().iter().find(|l| l["license"] == "ACI Advantage").unwrap();
    assert_eq!(advantage["available"], 2);
    assert_eq!(advantage["licenseDetails"][0]["licenseType"], "PERPETUAL");
    assert_eq!(advantage["licenseDetails"][0]["quantity"], 12);
    let openapi = h.call("", "GET", "/api/v1/openapi.json", None).await;
    let listed = &openapi.body["paths"][format!("{PREFIX}/v1/accounts/{{domain}}/licenses")]["post"];
    assert_eq!(listed["tags"][0], "original-api", "{listed}");
    // Paging: totalRecords counts every match.
    let (_, page) = post(
        &h,
        &bearer,
        &format!("{PREFIX}/v1/accounts/example.com/licenses"),
        json!({"virtualAccounts": [], "limit": 1, "offset": 1}),
    )
    .await;
    assert_eq!((page["totalRecords"].as_i64(), page["licenses"].as_array().unwrap().len()), (Some(2), 1));
}

#[tokio::test]
async fn errors_answer_in_the_original_envelope() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    h.account_with("other.org", &[]).await;
    let client = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "script", "role": "smart-account-user"})),
        )
        .await;
    let secret = client.body["client_secret"].as_str().unwrap().to_string();
    let (status, _) = legacy_token(&h, "/as/token.oauth2", "script", "wrong").await;
    assert_eq!(status, 401);
    let (_, answer) = legacy_token(&h, "/as/token.oauth2", "script", &secret).await;
    let bearer = answer["access_token"].as_str().unwrap().to_string();
    let cases = [
        ("forged-token", format!("{PREFIX}/v2/accounts"), 401),
        (bearer.as_str(), format!("{PREFIX}/v1/accounts/nope.com/customer/virtual-accounts"), 404),
        (bearer.as_str(), format!("{PREFIX}/v1/accounts/other.org/customer/virtual-accounts"), 403),
    ];
    for (token, path, expected) in cases {
        let (status, body) = get(&h, token, &path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["status"], "ERROR", "{body}");
        assert!(!body["statusMessage"].as_str().unwrap().is_empty());
    }
    let (status, body) =
        post(&h, &bearer, &format!("{PREFIX}/v1/accounts/example.com/licenses"), json!({"virtualAccounts": ["Nope"]}))
            .await;
    assert_eq!((status, body["status"].as_str()), (404, Some("ERROR")), "{body}");
}
