//! Offline reservation on the manager side over real HTTPS, through both REST front-ends:
//! request codes made with a device key, authorization codes checked against the manager's CA
//! key, return codes signed by the device, and every refusal leaving the pool as it was.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_proto::cert::public_key_of_certificate;
use smartlic_proto::reservation::{Authorization, RequestCode, ReservationKind, ReturnCode, VerifiedAuthorization};
use smartlic_proto::{KeyAlgorithm, SigningKey};

const PREFIX: &str = "/services/api/smart-accounts-and-licensing";
const POOL: &str = "/api/v1/accounts/example.com/virtual-accounts/Default";

/// An offline device: its reservation key and the request code it prints.
struct Device {
    key: SigningKey,
    request: RequestCode,
}

fn device(kind: ReservationKind, sn: &str) -> Device {
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request = RequestCode::new(kind, "C9300-24UX", sn, &key.public_key()).unwrap();
    Device { key, request }
}

/// What the device does with an authorization code: check it against the manager's CA.
fn install(h: &Harness, code: &str) -> VerifiedAuthorization {
    let ca = public_key_of_certificate(&h.server.ca_pem).unwrap();
    Authorization::verify(code, &[ca]).expect("the authorization code verifies against the manager's CA")
}

fn return_code(d: &Device, installed: &VerifiedAuthorization) -> String {
    ReturnCode::create(installed, true, &d.key).unwrap()
}

async fn reserve(h: &Harness, d: &Device, licenses: Value) -> Answer {
    h.admin(
        "POST",
        &format!("{POOL}/reservations"),
        Some(json!({"request_code": d.request.to_string(), "licenses": licenses})),
    )
    .await
}

async fn give_back(h: &Harness, code: &str) -> Answer {
    h.admin("POST", &format!("{POOL}/reservations/return"), Some(json!({ "return_code": code }))).await
}

/// (reserved, available) of `tag` in the /api/v1 listing and in the original API's listing.
async fn reserved_and_available(h: &Harness, tag: &str) -> [(i64, i64); 2] {
    let ours = h.licenses("example.com", "Default").await;
    let line = ours["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == tag).cloned().unwrap_or_default();
    let (_, theirs) =
        legacy(h, &format!("{PREFIX}/v1/accounts/example.com/licenses"), json!({"virtualAccounts": ["Default"]})).await;
    let row = theirs["licenses"].as_array().unwrap().iter().find(|l| l["license"] == tag).cloned().unwrap_or_default();
    let n = |v: &Value, f: &str| v[f].as_i64().unwrap_or(0);
    [(n(&line, "reserved"), n(&line, "available")), (n(&row, "reserved"), n(&row, "available"))]
}

async fn legacy(h: &Harness, path: &str, body: Value) -> (u16, Value) {
    let r = h.http.post(format!("{}{path}", h.base)).bearer_auth(h.bearer()).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn reservations(h: &Harness) -> Vec<Value> {
    h.admin("GET", "/api/v1/accounts/example.com/reservations", None).await.body["reservations"]
        .as_array()
        .unwrap()
        .clone()
}

/// PATCH of the account's universal reservation flag (the harness has no PATCH).
async fn allow_universal(h: &Harness, bearer: &str) -> (u16, Value) {
    let r = h
        .http
        .patch(format!("{}/api/v1/accounts/example.com", h.base))
        .bearer_auth(bearer)
        .json(&json!({"universal_reservation": true}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn refused(a: &Answer, status: u16, words: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "expected '{words}' in: {message}");
}

#[tokio::test]
async fn reserved_licenses_leave_the_pool_until_the_device_returns_them() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    // 10 Essentials in use borrow from Advantage: 2 Advantage are left.
    let online = h.register("ONLINE1", &token).await;
    h.devices.authorize(&online, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();
    let d = device(ReservationKind::Specific, "FCW2134L0RN");

    refused(&reserve(&h, &d, json!([{"tag": "ACI Advantage", "count": 3}])).await, 409, "more licenses than available");
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(0, 2), (0, 2)]);
    assert!(reservations(&h).await.is_empty());

    let made = reserve(&h, &d, json!([{"tag": "ACI Advantage", "count": 2}])).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let code = made.body["authorization_code"].as_str().unwrap();
    assert!(code.starts_with("<specificPLR>"), "{code}");
    assert_eq!((made.body["kind"].as_str(), made.body["status"].as_str()), (Some("specific"), Some("reserved")));
    assert_eq!(made.body["udi"], "PID:C9300-24UX,SN:FCW2134L0RN");
    let installed = install(&h, code);
    assert_eq!(made.body["confirmation_code"].as_str(), Some(installed.identity.confirmation_code.as_str()));
    assert_eq!(made.body["piid"].as_str(), Some(installed.authorization.piid.as_str()));
    assert_eq!(installed.authorization.request_code, d.request.to_string());
    let granted = &installed.authorization.entitlements;
    assert_eq!((granted.len(), granted[0].tag.as_str(), granted[0].count), (1, "ACI Advantage", 2));
    assert_eq!(granted[0].license_type, "PERPETUAL");

    // Counted in both listings; the online devices stay in compliance, nothing is left to reserve.
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(2, 0), (2, 0)]);
    assert_eq!(h.licenses("example.com", "Default").await["status"], "In Compliance");
    // One more license: a device holds one reservation at a time, and the rest is what is left.
    let deposit = json!({"tag": "ACI Advantage", "count": 1});
    assert_eq!(h.admin("POST", &format!("{POOL}/licenses"), Some(deposit)).await.status, 201);
    let one = json!([{"tag": "ACI Advantage", "count": 1}]);
    refused(&reserve(&h, &d, one).await, 409, "already holds an active reservation");
    let other = device(ReservationKind::Specific, "FCW2134L0RM");
    refused(&reserve(&h, &other, json!([{"tag": "ACI Essentials", "count": 2}])).await, 409, "1 available");
    assert_eq!(reservations(&h).await.len(), 1);

    let back = give_back(&h, &return_code(&d, &installed)).await;
    assert_eq!((back.status, back.body["status"].as_str()), (200, Some("returned")), "{}", back.body);
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(0, 3), (0, 3)]);
    // A return code counts once.
    refused(&give_back(&h, &return_code(&d, &installed)).await, 409, "already returned");
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(0, 3), (0, 3)]);
    let events = h.admin("GET", "/api/v1/accounts/example.com/events", None).await.body["events"].to_string();
    assert!(events.contains("reservation.created") && events.contains("reservation.returned"), "{events}");
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong_and_reserve_nothing() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 5)]).await;
    let d = device(ReservationKind::Specific, "SN1");
    let advantage = json!([{"tag": "ACI Advantage", "count": 1}]);
    let with_code = |code: &str| json!({"request_code": code, "licenses": advantage});
    let path = format!("{POOL}/reservations");

    let typo = d.request.to_string().replacen("SN1", "SN2", 1);
    refused(&h.admin("POST", &path, Some(with_code(&typo))).await, 400, "check characters do not match");
    refused(&h.admin("POST", &path, Some(with_code("CB-ZC9300"))).await, 400, "request code is malformed");
    refused(&reserve(&h, &d, json!([{"tag": "No Such Tag", "count": 1}])).await, 400, "unknown product/entitlement");
    refused(&reserve(&h, &d, json!([{"tag": "ACI Advantage", "count": 0}])).await, 400, "quantity");
    refused(&reserve(&h, &d, json!([])).await, 400, "needs at least one license");
    let says_universal = json!({"request_code": d.request.to_string(), "universal": true, "licenses": []});
    refused(&h.admin("POST", &path, Some(says_universal)).await, 400, "asks for a specific reservation");

    // Universal reservations wait for the operator's permission.
    let u = device(ReservationKind::Universal, "SN3");
    refused(&reserve(&h, &u, json!([])).await, 403, "universal reservation is not allowed for this smart account");
    let client = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "sa-admin", "role": "smart-account-admin"})),
        )
        .await;
    let sa_admin = h.login(client.body["client_id"].as_str().unwrap(), client.body["client_secret"].as_str().unwrap());
    let sa_admin = sa_admin.await.unwrap();
    assert_eq!(allow_universal(&h, &sa_admin).await.0, 403);
    let (status, account) = allow_universal(&h, &h.bearer()).await;
    assert_eq!((status, &account["universal_reservation"]), (200, &json!(true)), "{account}");
    refused(&reserve(&h, &u, advantage.clone()).await, 400, "list none");
    let made = reserve(&h, &u, json!([])).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let code = made.body["authorization_code"].as_str().unwrap();
    assert!(code.starts_with("<universalPLR>"), "{code}");
    assert!(install(&h, code).authorization.entitlements.is_empty());

    // A virtual-account user may look but not reserve; a smart-account admin may reserve.
    let viewer = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "va-user", "role": "virtual-account-user", "virtual_account": "Default"})),
        )
        .await;
    let viewer = h.login(viewer.body["client_id"].as_str().unwrap(), viewer.body["client_secret"].as_str().unwrap());
    let viewer = viewer.await.unwrap();
    let body = json!({"request_code": d.request.to_string(), "licenses": advantage});
    refused(&h.call(&viewer, "POST", &path, Some(body.clone())).await, 403, "may not reserve licenses");
    assert_eq!(h.call(&viewer, "GET", &path, None).await.body["reservations"].as_array().unwrap().len(), 1);
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(0, 5), (0, 5)]);
    assert_eq!(h.call(&sa_admin, "POST", &path, Some(body)).await.status, 201);
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(1, 4), (1, 4)]);
}

#[tokio::test]
async fn only_the_reserving_device_can_return_and_altered_codes_are_refused() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 5)]).await;
    let d = device(ReservationKind::Specific, "SN1");
    let made = reserve(&h, &d, json!([{"tag": "ACI Advantage", "count": 4}])).await;
    let installed = install(&h, made.body["authorization_code"].as_str().unwrap());

    let stranger = device(ReservationKind::Specific, "SN1");
    let forged = ReturnCode::create(&installed, true, &stranger.key).unwrap();
    refused(&give_back(&h, &forged).await, 400, "was not made by the device the licenses are reserved for");
    let genuine = return_code(&d, &installed);
    // The last Base58 digit is the low end of the signature.
    let last = genuine.chars().last().unwrap();
    let altered = format!("{}{}", &genuine[..genuine.len() - 1], if last == 'z' { 'y' } else { 'z' });
    refused(&give_back(&h, &altered).await, 400, "signature does not match: it was altered");
    refused(&give_back(&h, "ChWhde-okvz5f").await, 400, "return code is malformed");
    // A code for a reservation of another virtual account is not found in this one.
    let lab = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab"}))).await;
    assert_eq!(lab.status, 201);
    let other_pool = "/api/v1/accounts/example.com/virtual-accounts/Lab/reservations/return";
    let elsewhere = h.admin("POST", other_pool, Some(json!({ "return_code": genuine }))).await;
    refused(&elsewhere, 404, "no reservation in virtual account 'Lab'");
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(4, 1), (4, 1)]);

    // Through the original API's device removal: the UDI named must be the reservation's.
    let remove = format!("{PREFIX}/v2/accounts/example.com/virtual-accounts/Default/devices/remove");
    let wrong = json!({"productInstacesRemoveRequests": [{"sudi": {"udiPid": "C9300-24UX", "udiSerialNumber": "SN9"},
                       "productTagName": "C9300", "returnCode": genuine}]});
    let (status, body) = legacy(&h, &remove, wrong).await;
    assert_eq!((status, body["status"].as_str()), (400, Some("ERROR")), "{body}");
    assert!(body["statusMessage"].as_str().unwrap().contains("the return code is for PID:C9300-24UX,SN:SN1"), "{body}");
    let right = json!({"productInstacesRemoveRequests": [{"sudi": {"udiPid": "C9300-24UX", "udiSerialNumber": "SN1"},
                       "productTagName": "C9300", "returnCode": genuine}]});
    let (status, body) = legacy(&h, &remove, right.clone()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
    assert_eq!(body["productInstances"][0]["action"], "RETURNED");
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(0, 5), (0, 5)]);
    let (status, body) = legacy(&h, &remove, right).await;
    assert_eq!((status, body["status"].as_str()), (409, Some("ERROR")), "{body}");
    assert!(body["statusMessage"].as_str().unwrap().contains("already returned"), "{body}");
}

#[tokio::test]
async fn the_original_api_reserves_all_requests_or_none() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 3)]).await;
    let (a, b) = (device(ReservationKind::Specific, "A1"), device(ReservationKind::Specific, "B1"));
    let request = |d: &Device, tag: &str, quantity: Value| {
        json!({"reservationCode": d.request.to_string(), "reservationType": "SPECIFIC",
               "licenses": [{"entitlementTag": tag, "quantity": quantity, "precedence": "LONGEST_TERM_FIRST"}]})
    };
    let v2 = format!("{PREFIX}/v2/accounts/example.com/virtual-accounts/Default/reserve-licenses");
    let refusals = [
        (
            json!([request(&a, "ACI Advantage", json!(1)), request(&b, "No Such Tag", json!(1))]),
            400,
            "reservation request 2: ",
        ),
        (
            json!([request(&a, "ACI Advantage", json!(2)), request(&b, "ACI Advantage", json!("2"))]),
            409,
            "more licenses than available",
        ),
        (json!([request(&a, "ACI Advantage", json!(1)), request(&a, "ACI Advantage", json!(1))]), 400, "listed twice"),
        (json!([request(&a, "ACI Advantage", json!("one"))]), 400, "not a whole number"),
        (
            json!([{"reservationCode": a.request.to_string(), "reservationType": "UNIVERSAL", "licenses": []}]),
            400,
            "asks for a specific",
        ),
    ];
    for (requests, status, words) in refusals {
        let (got, body) = legacy(&h, &v2, json!({ "reservationRequests": requests })).await;
        assert_eq!((got, body["status"].as_str()), (status, Some("ERROR")), "{body}");
        assert!(body["statusMessage"].as_str().unwrap().contains(words), "{words}: {body}");
    }
    assert!(reservations(&h).await.is_empty());
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(0, 3), (0, 3)]);

    // As CiscoDevNet/smart-license-app sends it: quantity as a string.
    let requests = json!([request(&a, "ACI Advantage", json!(2)), request(&b, "ACI Advantage", json!("1"))]);
    let (status, body) = legacy(&h, &v2, json!({ "reservationRequests": requests })).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
    let codes = body["authorizationCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 2);
    assert_eq!(
        (codes[1]["reservationCode"].as_str(), codes[1]["reservationType"].as_str()),
        (Some(b.request.to_string().as_str()), Some("SPECIFIC"))
    );
    assert_eq!(install(&h, codes[0]["authorizationCode"].as_str().unwrap()).authorization.entitlements[0].count, 2);
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(3, 0), (3, 0)]);

    // The v1 path is the same operation; universal needs the account's permission.
    let v1 = format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Default/reserve-licenses");
    let u = device(ReservationKind::Universal, "U1");
    let universal = json!({"reservationCode": u.request.to_string(), "reservationType": "UNIVERSAL", "licenses": []});
    let (status, body) = legacy(&h, &v1, json!({ "reservationRequests": [universal] })).await;
    assert_eq!((status, body["status"].as_str()), (403, Some("ERROR")), "{body}");

    // devices/remove, correctly spelled, returns one reservation and removes a registered device.
    let token = h.token("example.com", "Default", json!({})).await;
    h.register("REG1", &token).await;
    let installed = install(&h, codes[1]["authorizationCode"].as_str().unwrap());
    let remove = format!("{PREFIX}/v2/accounts/example.com/virtual-accounts/Default/devices/remove");
    let items = json!({"productInstancesRemoveRequests": [
        {"sudi": {"udiPid": "C9300-24UX", "udiSerialNumber": "B1"}, "returnCode": return_code(&b, &installed)},
        {"sudi": {"udiPid": "C9500-32C", "udiSerialNumber": "NOPE"}}
    ]});
    let (status, body) = legacy(&h, &remove, items.clone()).await;
    assert_eq!((status, body["status"].as_str()), (404, Some("ERROR")), "{body}");
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(3, 0), (3, 0)]);
    let mut items = items;
    items["productInstancesRemoveRequests"][1]["sudi"]["udiSerialNumber"] = json!("REG1");
    let (status, body) = legacy(&h, &remove, items).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
    let actions: Vec<&str> =
        body["productInstances"].as_array().unwrap().iter().map(|p| p["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["RETURNED", "REMOVED"]);
    assert_eq!(reserved_and_available(&h, "ACI Advantage").await, [(2, 1), (2, 1)]);
    let instances = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await;
    assert!(instances.body["instances"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn virtual_accounts_are_deleted_only_when_empty() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    for name in ["Lab", "Spare"] {
        let a = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({ "name": name }))).await;
        assert_eq!(a.status, 201);
    }
    let lab = "/api/v1/accounts/example.com/virtual-accounts/Lab";
    assert_eq!(
        h.admin("POST", &format!("{lab}/licenses"), Some(json!({"tag": "ACI Advantage", "count": 2}))).await.status,
        201
    );
    let token = h.token("example.com", "Lab", json!({})).await;
    let d = device(ReservationKind::Specific, "SN1");
    let made = h
        .admin(
            "POST",
            &format!("{lab}/reservations"),
            Some(json!({"request_code": d.request.to_string(), "licenses": [{"tag": "ACI Advantage", "count": 1}]})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);

    refused(&h.admin("DELETE", POOL, None).await, 409, "default virtual account");
    let held = h.admin("DELETE", lab, None).await;
    refused(&held, 409, "2 license(s)");
    for what in ["1 active registration token(s)", "1 active reservation(s)", "nothing was deleted"] {
        refused(&held, 409, what);
    }
    let legacy_delete = format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Lab/delete");
    let (status, body) = legacy(&h, &legacy_delete, json!({})).await;
    assert_eq!((status, body["status"].as_str()), (409, Some("ERROR")), "{body}");

    // Emptied, it goes; through the original API as well.
    let transfer = json!({"tag": "ACI Advantage", "count": 2, "to": "Default"});
    let installed = install(&h, made.body["authorization_code"].as_str().unwrap());
    let back = h
        .admin("POST", &format!("{lab}/reservations/return"), Some(json!({"return_code": return_code(&d, &installed)})))
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(h.admin("POST", &format!("{lab}/licenses/transfer"), Some(transfer)).await.status, 200);
    assert_eq!(h.admin("POST", &format!("{lab}/tokens/revoke"), Some(json!({ "token": token }))).await.status, 200);
    let gone = h.admin("DELETE", lab, None).await;
    assert_eq!((gone.status, &gone.body["deleted"]), (200, &json!("Lab")), "{}", gone.body);
    let (status, body) =
        legacy(&h, &format!("{PREFIX}/v1/accounts/example.com/virtual-accounts/Spare/delete"), json!({})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
    let vas = h.admin("GET", "/api/v1/accounts/example.com/virtual-accounts", None).await.body.to_string();
    assert!(!vas.contains("Lab") && !vas.contains("Spare"), "{vas}");
    refused(&h.admin("DELETE", lab, None).await, 404, "does not exist");
}
