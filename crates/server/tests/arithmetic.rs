//! Exact license arithmetic over real HTTPS (issue 10): reserved term licenses end with their
//! term, reservations draw named purchase records once, tier lending finds an allocation
//! whenever one exists, and drifted counters are reported, never hidden.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_core::Timestamp;
use smartlic_proto::cert::public_key_of_certificate;
use smartlic_proto::reservation::{Authorization, RequestCode, ReservationKind, ReturnCode, VerifiedAuthorization};
use smartlic_proto::wire::AuthorizationStatus;
use smartlic_proto::{KeyAlgorithm, SigningKey};

const POOL: &str = "/api/v1/accounts/example.com/virtual-accounts/Default";

/// An offline device with its reservation key; reserves `licenses` and installs what it gets.
struct Offline {
    key: SigningKey,
    request: RequestCode,
}

impl Offline {
    fn new(sn: &str) -> Offline {
        let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let request = RequestCode::new(ReservationKind::Specific, "C9300-24UX", sn, &key.public_key()).unwrap();
        Offline { key, request }
    }

    async fn reserve(&self, h: &Harness, licenses: Value) -> VerifiedAuthorization {
        let body = json!({"request_code": self.request.to_string(), "licenses": licenses});
        let made = h.admin("POST", &format!("{POOL}/reservations"), Some(body)).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let ca = public_key_of_certificate(&h.server.ca_pem).unwrap();
        Authorization::verify(made.body["authorization_code"].as_str().unwrap(), &[ca]).unwrap()
    }

    async fn give_back(&self, h: &Harness, installed: &VerifiedAuthorization) {
        let code = ReturnCode::create(installed, true, &self.key).unwrap();
        let back = h.admin("POST", &format!("{POOL}/reservations/return"), Some(json!({ "return_code": code }))).await;
        assert_eq!(back.status, 200, "{}", back.body);
    }
}

/// The line of `tag` in the pool's license listing.
async fn line(h: &Harness, tag: &str) -> Value {
    let l = h.licenses("example.com", "Default").await;
    l["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == tag).cloned().unwrap_or_default()
}

async fn deposit(h: &Harness, body: Value) {
    let a = h.admin("POST", &format!("{POOL}/licenses"), Some(body)).await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[tokio::test]
async fn reserved_term_licenses_end_with_their_term_and_records_are_drawn_once() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 2)]).await;
    // Whole seconds, as dates travel.
    let ends = Timestamp(h.now_ms() / 1000 * 1000).plus_days(30);
    deposit(&h, json!({"tag": "ACI Advantage", "count": 2, "type": "term", "end": ends.to_string()})).await;

    // Perpetual first: the first device draws the perpetual record, the second the term one.
    let (a, b, c) = (Offline::new("SN-A"), Offline::new("SN-B"), Offline::new("SN-C"));
    let first = a.reserve(&h, json!([{"tag": "ACI Advantage", "count": 2}])).await;
    assert_eq!(first.authorization.entitlements[0].license_type, "PERPETUAL");
    let second = b.reserve(&h, json!([{"tag": "ACI Advantage", "count": 2}])).await;
    assert_eq!(second.authorization.entitlements[0].license_type, "TERM");
    assert_eq!(second.authorization.entitlements[0].end, Some(ends.millis()));
    // The first gives its licenses back: the next one gets them, not the term licenses the
    // second still holds (a count of reserved licenses cannot say which ones they were).
    a.give_back(&h, &first).await;
    let third = c.reserve(&h, json!([{"tag": "ACI Advantage", "count": 2}])).await;
    assert_eq!(third.authorization.entitlements[0].license_type, "PERPETUAL");
    assert_eq!((line(&h, "ACI Advantage").await["reserved"].as_i64()), Some(4));

    // The term ends on the manager as on the device: the pool neither has nor reserves them.
    h.set_clock(&ends.to_string()).await;
    let after = line(&h, "ACI Advantage").await;
    assert_eq!((after["purchased"].as_i64(), after["reserved"].as_i64()), (Some(2), Some(2)), "{after}");
    assert_eq!(h.licenses("example.com", "Default").await["status"], "In Compliance");
    let check = h.admin("GET", "/api/v1/check", None).await;
    assert_eq!(check.body, json!({"consistent": true, "differences": []}));
}

#[tokio::test]
async fn lending_finds_the_allocation_a_greedy_pass_misses() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("CUWL", 1), ("HCS Cisco UCM Foundation License", 1)]).await;
    let cucm = h.register("CUCM1", &token).await;
    let used = usage(&[("CUCM Basic", 1), ("CUCM Enhanced Plus", 1)]);
    let answer = h.devices.authorize(&cucm, &used, h.now_ms()).await.unwrap();
    assert_eq!(answer.status, AuthorizationStatus::Authorized);
    let l = h.licenses("example.com", "Default").await;
    assert_eq!(l["status"], "In Compliance", "{l}");
    let lent: Vec<(&str, &str)> = l["substitutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["requested"].as_str().unwrap(), s["fulfilled_by"].as_str().unwrap()))
        .collect();
    assert_eq!(lent, [("CUCM Basic", "HCS Cisco UCM Foundation License"), ("CUCM Enhanced Plus", "CUWL")]);
}

#[tokio::test]
async fn drifted_counters_are_an_error_and_the_check_lists_them() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    let dev = h.register("SN1", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();
    assert_eq!(h.admin("GET", "/api/v1/check", None).await.body["consistent"], true);

    h.sql("UPDATE pool_usage SET in_use = -3 WHERE tag = 'ACI Essentials'");
    let listing = h.admin("GET", &format!("{POOL}/licenses"), None).await;
    assert_eq!((listing.status, listing.code()), (500, "INCONSISTENT_DATA"), "{}", listing.body);
    let message = listing.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("in-use count of 'ACI Essentials'") && message.contains("-3"), "{message}");

    let check = h.admin("GET", "/api/v1/check", None).await;
    let difference = json!({"account": "example.com", "virtual_account": "Default", "tag": "ACI Essentials",
                            "counter": "in use", "stored": -3, "recomputed": 10});
    assert_eq!(check.body, json!({"consistent": false, "differences": [difference.clone()]}));
    // The jobs raise it as an alert instead of computing with it.
    h.set_clock(&Timestamp(h.now_ms()).plus_days(1).to_string()).await;
    let alerts = h.admin("GET", "/api/v1/accounts/example.com/alerts", None).await.body.to_string();
    assert!(alerts.contains("counters-drifted") && alerts.contains("in-use count of 'ACI Essentials'"), "{alerts}");
    // The check is the operator's: an account's own API client may not run it.
    let client = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "sa-admin", "role": "smart-account-admin"})),
        )
        .await;
    let id = client.body["client_id"].as_str().unwrap_or("sa-admin");
    let sa_admin = h.login(id, client.body["client_secret"].as_str().unwrap()).await.unwrap();
    assert_eq!(h.call(&sa_admin, "GET", "/api/v1/check", None).await.status, 403);
    assert_eq!(h.call(&sa_admin, "POST", "/api/v1/check/repair", None).await.status, 403);
    // The operator's repair sets the counter to the records' count.
    let repair = h.admin("POST", "/api/v1/check/repair", None).await;
    assert_eq!(repair.body, json!({"repaired": [difference], "consistent": true, "differences": []}));
    let listing = h.admin("GET", &format!("{POOL}/licenses"), None).await;
    assert_eq!(listing.status, 200, "{}", listing.body);
}
