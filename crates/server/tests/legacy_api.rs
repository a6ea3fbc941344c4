//! The original manager's REST API (C-17): token endpoints and the first endpoints, with the
//! field names and envelope existing scripts read, and the paths they send.

use crate::common;

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
    let id = client.body["client_id"].as_str().unwrap().to_string();

    for path in ["/as/token.oauth2", "/oauth2/default/v1/token"] {
        let (status, answer) = legacy_token(&h, path, &id, &secret).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["token_type"], "Bearer");
        assert!(answer["expires_in"].as_i64().unwrap() > 0);
    }
    let (_, answer) = legacy_token(&h, "/as/token.oauth2", &id, &secret).await;
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
    let id = client.body["client_id"].as_str().unwrap().to_string();
    let (status, _) = legacy_token(&h, "/as/token.oauth2", &id, "wrong").await;
    assert_eq!(status, 401);
    let (_, answer) = legacy_token(&h, "/as/token.oauth2", &id, &secret).await;
    let bearer = answer["access_token"].as_str().unwrap().to_string();
    let cases = [
        ("forged-token", format!("{PREFIX}/v2/accounts"), 401),
        (bearer.as_str(), format!("{PREFIX}/v1/accounts/nope.com/customer/virtual-accounts"), 404),
        // Another tenant's account is answered as if it did not exist.
        (bearer.as_str(), format!("{PREFIX}/v1/accounts/other.org/customer/virtual-accounts"), 404),
        (bearer.as_str(), format!("{PREFIX}/v9/no/such/endpoint"), 404),
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

/// A legacy bearer token for a new API client of `domain` with `role`.
async fn legacy_bearer(h: &Harness, domain: &str, name: &str, role: &str) -> String {
    legacy_bearer_in(h, domain, json!({"name": name, "role": role})).await
}

/// A legacy bearer token for a new API client of `domain` created with `body`.
async fn legacy_bearer_in(h: &Harness, domain: &str, body: Value) -> String {
    let client = h.admin("POST", &format!("/api/v1/accounts/{domain}/api-clients"), Some(body)).await;
    assert_eq!(client.status, 201, "{:?}", client.body);
    let secret = client.body["client_secret"].as_str().unwrap().to_string();
    let id = client.body["client_id"].as_str().unwrap().to_string();
    let (_, answer) = legacy_token(h, "/as/token.oauth2", &id, &secret).await;
    answer["access_token"].as_str().unwrap().to_string()
}

fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], "ERROR", "{body}");
    assert!(!body["statusMessage"].as_str().unwrap().is_empty(), "{body}");
}

#[tokio::test]
async fn a_script_creates_a_virtual_account_and_manages_its_tokens() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    let bearer = legacy_bearer(&h, "example.com", "admin-script", "smart-account-admin").await;
    let reader = legacy_bearer(&h, "example.com", "reader", "smart-account-user").await;

    let vas = format!("{PREFIX}/v1/accounts/example.com/virtual-accounts");
    let (status, created) = post(&h, &bearer, &vas, json!({"name": "Lab Pool", "description": "lab"})).await;
    assert_eq!((status, created["status"].as_str()), (200, Some("SUCCESS")), "{created}");
    assert_eq!(created["statusMessage"], "");
    assert_eq!(
        created["virtualAccount"],
        json!({"isDefault": "false", "name": "Lab Pool", "description": "lab", "commerceAccessLevel": "FULL"})
    );
    let (status, body) = post(&h, &bearer, &vas, json!({"name": "Lab Pool", "description": ""})).await;
    assert_error(status, &body, 409);
    let (status, body) = post(&h, &reader, &vas, json!({"name": "Other", "description": ""})).await;
    assert_error(status, &body, 403);

    // The pool name with a space, percent-encoded as the scripts send it.
    let tokens = format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Lab%20Pool/tokens");
    let (status, made) = post(
        &h,
        &bearer,
        &tokens,
        json!({"description": "from script", "expiresAfterDays": "30", "exportControlled": "Allowed", "numberOfUses": 2}),
    )
    .await;
    assert_eq!((status, made["status"].as_str()), (200, Some("SUCCESS")), "{made}");
    let info = &made["tokenInfo"];
    let token = info["token"].as_str().unwrap().to_string();
    assert_eq!(info["description"], "from script");
    assert_eq!(info["exportControlled"], "Allowed");
    // Events and records name a caller by its login: for an API client, its client ID.
    assert!(info["createdBy"].as_str().unwrap().starts_with("client-"), "{info}");
    assert_eq!(info["numberOfUses"], 2);
    assert_eq!(info["virtualAccount"], "Lab Pool");
    assert!(info["expirationDate"].as_str().unwrap().ends_with('Z'), "{info}");
    let (status, body) = post(&h, &bearer, &tokens, json!({"description": "x", "exportControlled": "Maybe"})).await;
    assert_error(status, &body, 400);
    let (status, body) = post(&h, &bearer, &tokens, json!({"description": "x", "expiresAfterDays": 366})).await;
    assert_error(status, &body, 400);
    let default_user = legacy_bearer_in(
        &h,
        "example.com",
        json!({"name": "default-user", "role": "virtual-account-user", "virtual_account": "Default"}),
    )
    .await;
    let (status, body) = post(&h, &default_user, &tokens, json!({"description": "x"})).await;
    assert_error(status, &body, 403);

    let (status, listed) = get(&h, &reader, &tokens).await;
    assert_eq!((status, listed["status"].as_str()), (200, Some("SUCCESS")), "{listed}");
    let row = &listed["tokens"][0];
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1);
    // Listings show the token's first characters only: it is stored as a hash.
    let prefix = format!("{}…", &token[..12]);
    assert_eq!((row["token"].as_str(), row["status"].as_str()), (Some(prefix.as_str()), Some("ACTIVE")));
    for field in ["expirationDate", "description", "createdBy", "exportControlled"] {
        assert!(row.get(field).is_some(), "{field} missing in {row}");
    }
    let (status, body) =
        get(&h, &bearer, &format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Nope/tokens")).await;
    assert_error(status, &body, 404);

    // One unknown token: nothing is revoked.
    let revoke = format!("{tokens}/revoke");
    let (status, body) = post(&h, &bearer, &revoke, json!({"tokens": [token, "not-a-token"]})).await;
    assert_error(status, &body, 404);
    let (_, listed) = get(&h, &bearer, &tokens).await;
    assert_eq!(listed["tokens"][0]["status"], "ACTIVE");
    let (status, revoked) = post(&h, &bearer, &revoke, json!({"tokens": [token]})).await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("SUCCESS")), "{revoked}");
    assert_eq!(revoked["tokens"][0]["status"], "REVOKED");
    let (_, listed) = get(&h, &bearer, &tokens).await;
    assert_eq!(listed["tokens"][0]["status"], "REVOKED");
    let (status, body) = post(&h, &bearer, &revoke, json!({"tokens": [token]})).await;
    assert_error(status, &body, 409);

    let openapi = h.call("", "GET", "/api/v1/openapi.json", None).await;
    let path = format!("{PREFIX}/v1/accounts/{{domain}}/virtual-accounts/{{va}}/tokens/revoke");
    assert_eq!(openapi.body["paths"][path]["post"]["tags"][0], "original-api");
}

#[tokio::test]
async fn a_script_lists_devices_in_the_original_shape() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    let dev = h.register("DEV1", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 3)]), h.now_ms()).await.unwrap();
    let bearer = legacy_bearer(&h, "example.com", "script", "smart-account-user").await;

    let (status, pool) =
        get(&h, &bearer, &format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Default/devices")).await;
    assert_eq!((status, pool["status"].as_str()), (200, Some("SUCCESS")), "{pool}");
    assert_eq!(pool["totalRecords"], 1);
    let d = &pool["devices"][0];
    assert_eq!(d["licenseUsage"], json!([{"license": "ACI Advantage", "quantity": 3}]));
    assert_eq!(d["hostName"], "sw1");
    assert_eq!(
        (d["sudi"]["udiPid"].as_str(), d["sudi"]["udiSerialNumber"].as_str()),
        (Some("C9500-32C"), Some("DEV1"))
    );
    assert_eq!(d["displayName"], "UDI_PID:C9500-32C; UDI_SN:DEV1; ");
    assert_eq!(d["virtualAccount"], "Default");
    assert_eq!(d["status"], "In Compliance");
    for field in
        ["registrationDate", "lastContactDate", "productTagName", "productName", "productDescription", "productType"]
    {
        assert!(d.get(field).is_some(), "{field} missing in {d}");
    }
    assert!(d["sudi"].get("macAddress").is_some() && d["sudi"].get("uuid").is_some(), "{d}");

    let devices = format!("{PREFIX}/v1/accounts/example.com/devices");
    let (status, all) = post(&h, &bearer, &devices, json!({"virtualAccounts": [], "limit": 50, "offset": 0})).await;
    assert_eq!((status, all["status"].as_str()), (200, Some("SUCCESS")), "{all}");
    assert_eq!(all["devices"][0], *d);
    let (_, none) = post(&h, &bearer, &devices, json!({"virtualAccounts": ["Default"], "offset": 1})).await;
    assert_eq!((none["totalRecords"].as_i64(), none["devices"].as_array().unwrap().len()), (Some(1), 0));
    // Pages by position over several devices, in PID and serial order; the pool's list is whole.
    for sn in ["DEV3", "DEV2"] {
        h.register(sn, &token).await;
    }
    let serials = |page: &Value| -> Vec<String> {
        let devices = page["devices"].as_array().unwrap();
        devices.iter().map(|d| d["sudi"]["udiSerialNumber"].as_str().unwrap().to_string()).collect()
    };
    let (_, page) = post(&h, &bearer, &devices, json!({"virtualAccounts": ["Default"], "limit": 2, "offset": 1})).await;
    assert_eq!((page["totalRecords"].as_i64(), serials(&page)), (Some(3), vec!["DEV2".into(), "DEV3".into()]));
    let (status, whole) =
        get(&h, &bearer, &format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Default/devices")).await;
    assert_eq!((status, whole["status"].as_str(), whole["totalRecords"].as_i64()), (200, Some("SUCCESS"), Some(3)));
    assert_eq!(serials(&whole), ["DEV1", "DEV2", "DEV3"]);
    let (status, body) = post(&h, &bearer, &devices, json!({"virtualAccounts": ["Nope"]})).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn a_script_transfers_licenses_all_or_nothing() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 7)]).await;
    let a = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab Pool"}))).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let bearer = legacy_bearer(&h, "example.com", "script", "smart-account-admin").await;
    let transfer = format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Default/licenses/transfer");
    let item = |n: i64| json!({"license": "ACI Advantage", "licenseType": "PERPETUAL", "quantity": n, "targetVirtualAccount": "Lab Pool"});

    // 5 + 5 of 7 held: refused as a whole, nothing moved.
    let (status, body) = post(&h, &bearer, &transfer, json!({"licenses": [item(5), item(5)]})).await;
    assert_error(status, &body, 409);
    let licenses = format!("{PREFIX}/v1/accounts/example.com/licenses");
    let (_, listed) = post(&h, &bearer, &licenses, json!({"virtualAccounts": ["Default"]})).await;
    assert_eq!(listed["licenses"][0]["quantity"], 7, "{listed}");
    let (status, body) = post(
        &h,
        &bearer,
        &transfer,
        json!({"licenses": [{"license": "No Such", "quantity": 1,
        "targetVirtualAccount": "Lab Pool"}]}),
    )
    .await;
    assert_error(status, &body, 400);

    let (status, done) = post(&h, &bearer, &transfer, json!({"licenses": [item(3), item(2)]})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("SUCCESS")), "{done}");
    assert_eq!(done["licenses"][1]["targetVirtualAccount"], "Lab Pool");
    let (_, listed) = post(&h, &bearer, &licenses, json!({"virtualAccounts": ["Lab Pool", "Default"]})).await;
    let quantity = |va: &str| {
        listed["licenses"].as_array().unwrap().iter().find(|l| l["virtualAccount"] == va).unwrap()["quantity"].clone()
    };
    assert_eq!((quantity("Lab Pool"), quantity("Default")), (json!(5), json!(2)));
}

#[tokio::test]
async fn a_script_lists_license_subscriptions() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 4)]).await;
    let a = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/virtual-accounts/Default/licenses",
            Some(json!({"tag": "ACI Premier", "count": 10, "type": "term", "start": "2020-01-01",
                        "end": "2999-01-01", "subscription_id": "Sub123456"})),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let bearer = legacy_bearer(&h, "example.com", "script", "smart-account-user").await;
    let subs = format!("{PREFIX}/v1/accounts/example.com/license-subscriptions");
    let (status, body) = post(&h, &bearer, &subs, json!({"virtualAccounts": ["Default"]})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
    assert_eq!(body["totalRecords"], 1, "perpetual licenses without subscription are not listed: {body}");
    assert_eq!(
        body["licenseSubscriptions"][0],
        json!({"subscriptionId": "Sub123456", "virtualAccount": "Default", "license": "ACI Premier", "sku": "",
               "licenseType": "TERM", "quantity": 10, "startDate": "2020-01-01T00:00:00Z",
               "endDate": "2999-01-01T00:00:00Z", "status": "ACTIVE"})
    );
    let (status, body) = post(&h, &bearer, &subs, json!({"virtualAccounts": ["Nope"]})).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn a_script_moves_devices_all_or_nothing() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    h.register("MOV1", &token).await;
    h.register("MOV2", &token).await;
    let a = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab Pool"}))).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let bearer = legacy_bearer(&h, "example.com", "script", "smart-account-user").await;
    let transfer = format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Default/devices/transfer");
    let item = |sn: &str| {
        json!({"sudi": {"udiPid": "C9500-32C", "udiSerialNumber": sn, "suvi": "", "uuid": "", "hostIdentifier": "",
                        "udiVid": "", "macAddress": ""},
               "productTagName": "regid.x", "targetVirtualAccount": "Lab Pool"})
    };
    let pool_devices = |va: &'static str| format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/{va}/devices");

    let (status, body) = post(&h, &bearer, &transfer, json!({"productInstances": [item("MOV1"), item("NOPE")]})).await;
    assert_error(status, &body, 404);
    let (_, lab) = get(&h, &bearer, &pool_devices("Lab%20Pool")).await;
    assert_eq!(lab["totalRecords"], 0, "{lab}");

    let (status, moved) = post(&h, &bearer, &transfer, json!({"productInstances": [item("MOV1")]})).await;
    assert_eq!((status, moved["status"].as_str()), (200, Some("SUCCESS")), "{moved}");
    assert_eq!(moved["productInstances"][0]["targetVirtualAccount"], "Lab Pool");
    let (_, lab) = get(&h, &bearer, &pool_devices("Lab%20Pool")).await;
    assert_eq!(
        (lab["totalRecords"].as_i64(), lab["devices"][0]["sudi"]["udiSerialNumber"].as_str()),
        (Some(1), Some("MOV1"))
    );
    let (_, default) = get(&h, &bearer, &pool_devices("Default")).await;
    assert_eq!(default["totalRecords"], 1, "{default}");
}

#[tokio::test]
async fn a_script_searches_accounts() {
    let h = Harness::new().await;
    for domain in ["work.com", "wework.com", "other.org"] {
        h.account_with(domain, &[]).await;
    }
    let operator = h.bearer();
    let (status, found) =
        get(&h, &operator, &format!("{PREFIX}/v1/accounts/search?domain=work.com&type=CUSTOMER&limit=1000&offset=0"))
            .await;
    assert_eq!((status, found["status"].as_str()), (200, Some("SUCCESS")), "{found}");
    assert_eq!(found["totalRecords"], 2, "substring match: {found}");
    let row = found["accounts"].as_array().unwrap().iter().find(|a| a["domain"] == "work.com").unwrap();
    for field in ["domain", "name", "id", "type", "status"] {
        assert!(row.get(field).is_some(), "{field} missing in {row}");
    }
    let bearer = legacy_bearer(&h, "work.com", "script", "smart-account-user").await;
    let (_, own) = get(&h, &bearer, &format!("{PREFIX}/v1/accounts/search?domain=work.com")).await;
    assert_eq!(own["totalRecords"], 1, "only the caller's account: {own}");

    let (status, v2) = get(&h, &bearer, &format!("{PREFIX}/v2/accounts/search")).await;
    assert_eq!((status, v2["status"].as_str()), (200, Some("COMPLETE")), "{v2}");
    let account = &v2["accounts"][0];
    assert!(account["account_id"].is_i64(), "{v2}");
    assert_eq!(account["domain"], "work.com");
    assert_eq!(account["virtual_accounts"][0]["name"], "Default");
    assert_eq!(account["virtual_accounts"][0]["default"], true);
    assert!(account["virtual_accounts"][0]["virtual_account_id"].is_i64());

    let (status, body) = get(&h, "forged", &format!("{PREFIX}/v2/accounts/search")).await;
    assert_error(status, &body, 401);
}
