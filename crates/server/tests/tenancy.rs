//! Tenant boundaries over real HTTPS (issue 10): a caller with no role in a smart account
//! learns nothing of it (the same answer as for one that does not exist, in both REST
//! front-ends), names of users and API clients are unique per smart account, and a device
//! held in another smart account is not reserved, without naming that account's pools.

use crate::common;

use common::*;
use serde_json::json;
use smartlic_proto::reservation::{RequestCode, ReservationKind};
use smartlic_proto::{KeyAlgorithm, SigningKey};

const PREFIX: &str = "/services/api/smart-accounts-and-licensing";

/// Two tenants: a.com (with an admin API client) and b.com with a virtual account "Secret".
async fn two_tenants(h: &Harness) -> String {
    for domain in ["a.com", "b.com"] {
        assert_eq!(h.admin("POST", "/api/v1/accounts", Some(json!({"domain": domain}))).await.status, 201);
    }
    let va = h.admin("POST", "/api/v1/accounts/b.com/virtual-accounts", Some(json!({"name": "Secret"}))).await;
    assert_eq!(va.status, 201);
    let (_, _, token) = h.client("a.com", json!({"name": "a-admin", "role": "smart-account-admin"})).await;
    token
}

#[tokio::test]
async fn an_outsider_gets_the_same_answer_for_another_tenants_account_as_for_a_missing_one() {
    let h = Harness::new().await;
    let outsider = two_tenants(&h).await;
    // (path for b.com, the same for an unknown domain), method, body.
    let cases = [
        ("GET", "/api/v1/accounts/{d}", None),
        ("GET", "/api/v1/accounts/{d}/virtual-accounts", None),
        ("GET", "/api/v1/accounts/{d}/virtual-accounts/Secret/licenses", None),
        ("GET", "/api/v1/accounts/{d}/virtual-accounts/Nope/licenses", None),
        ("POST", "/api/v1/accounts/{d}/virtual-accounts/Secret/tokens", Some(json!({}))),
        ("POST", "/api/v1/accounts/{d}/virtual-accounts", Some(json!({"name": "Mine"}))),
        ("DELETE", "/api/v1/accounts/{d}/virtual-accounts/Secret", None),
        ("GET", "/api/v1/accounts/{d}/instances/no-such-id", None),
        ("GET", "/api/v1/accounts/{d}/users", None),
        ("POST", "/api/v1/accounts/{d}/api-clients", Some(json!({"role": "smart-account-admin"}))),
        ("GET", "/api/v1/accounts/{d}/events", None),
    ];
    for (method, path, body) in cases {
        let theirs = h.call(&outsider, method, &path.replace("{d}", "b.com"), body.clone()).await;
        let missing = h.call(&outsider, method, &path.replace("{d}", "nope.com"), body.clone()).await;
        assert_eq!(theirs.status, 404, "{method} {path}: {:?}", theirs.body);
        assert_eq!(comparable(&theirs.body).replace("b.com", "X"), comparable(&missing.body).replace("nope.com", "X"));
        assert!(!theirs.body.to_string().contains("Secret"), "{:?}", theirs.body);
    }
    // The original API answers alike.
    for path in ["/v1/accounts/{d}/x/virtual-accounts", "/v1/accounts/{d}/virtual-accounts/Secret/tokens"] {
        let get = |domain: &str| {
            let url = format!("{}{PREFIX}{}", h.base, path.replace("{d}", domain));
            h.http.get(url).bearer_auth(&outsider).send()
        };
        let (theirs, missing) = (get("b.com").await.unwrap(), get("nope.com").await.unwrap());
        assert_eq!((theirs.status().as_u16(), missing.status().as_u16()), (404, 404));
        let (t, m) = (theirs.json().await.unwrap(), missing.json().await.unwrap());
        assert_eq!(comparable(&t).replace("b.com", "X"), comparable(&m).replace("nope.com", "X"));
    }
    // Nothing was created; the operator and b.com's own members still see it all.
    let vas = h.admin("GET", "/api/v1/accounts/b.com/virtual-accounts", None).await;
    assert_eq!(vas.body["virtual_accounts"].as_array().unwrap().len(), 2);
    let (_, _, member) = h.client("b.com", json!({"name": "b-user", "role": "smart-account-user"})).await;
    let own = h.call(&member, "GET", "/api/v1/accounts/b.com/virtual-accounts/Secret/licenses", None).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
}

#[tokio::test]
async fn user_and_client_names_are_unique_per_smart_account_and_logins_name_the_account() {
    let h = Harness::new().await;
    two_tenants(&h).await;
    let (a_id, _, _) = h.client("a.com", json!({"name": "ci-bot", "role": "smart-account-user"})).await;
    let (b_id, _, _) = h.client("b.com", json!({"name": "ci-bot", "role": "smart-account-user"})).await;
    assert_ne!(a_id, b_id, "client IDs are generated and unique across the manager");
    let again = h
        .admin(
            "POST",
            "/api/v1/accounts/a.com/api-clients",
            Some(json!({"name": "ci-bot", "role": "smart-account-user"})),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "CONFLICT"), "{:?}", again.body);
    let listed = h.admin("GET", "/api/v1/accounts/a.com/api-clients", None).await;
    let names: Vec<&str> =
        listed.body["api_clients"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "ci-bot").count(), 1, "the refusal created nothing: {names:?}");

    // Users "bob" in both accounts, each logging in as name@domain.
    for (domain, password) in [("a.com", "bob of a, long enough"), ("b.com", "bob of b, long enough")] {
        let body = json!({"username": "bob", "role": "smart-account-user", "password": password});
        let u = h.admin("POST", &format!("/api/v1/accounts/{domain}/users"), Some(body)).await;
        assert_eq!(u.status, 201, "{:?}", u.body);
        assert_eq!(u.body["login"], format!("bob@{domain}"));
    }
    let password_login = |user: &str, password: &str| {
        let form = [("grant_type", "password"), ("username", user), ("password", password)];
        h.http.post(format!("{}/oauth/token", h.base)).form(&form).send()
    };
    let ok = password_login("bob@b.com", "bob of b, long enough").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let token = ok.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let listed = h.call(&token, "GET", "/api/v1/accounts", None).await;
    assert_eq!(listed.body["accounts"][0]["domain"], "b.com", "bob@b.com is b.com's bob");
    assert_eq!(password_login("bob@a.com", "bob of b, long enough").await.unwrap().status().as_u16(), 400);
    assert_eq!(password_login("bob", "bob of b, long enough").await.unwrap().status().as_u16(), 400);
    // The bootstrap operator keeps its bare name.
    assert!(h.login("admin", SECRET).await.is_some());
}

fn request_code(sn: &str) -> String {
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    RequestCode::new(ReservationKind::Specific, "C9500-32C", sn, &key.public_key()).unwrap().to_string()
}

#[tokio::test]
async fn a_device_held_in_another_smart_account_is_not_reserved_and_its_pool_is_not_named() {
    let h = Harness::new().await;
    two_tenants(&h).await;
    let lab = h.admin("POST", "/api/v1/accounts/a.com/virtual-accounts", Some(json!({"name": "Lab"}))).await;
    assert_eq!(lab.status, 201);
    for (domain, va) in [("a.com", "Lab"), ("a.com", "Default"), ("b.com", "Default")] {
        let path = format!("/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses");
        assert_eq!(h.admin("POST", &path, Some(json!({"tag": "ACI Advantage", "count": 4}))).await.status, 201);
    }
    // FCH1 is registered in a.com/Lab; FCH2 is reserved there.
    let token = h.token("a.com", "Lab", json!({})).await;
    h.register("FCH1", &token).await;
    let h = &h;
    let reserve = |domain: &str, va: &str, sn: &str| {
        let body = json!({"request_code": request_code(sn), "licenses": [{"tag": "ACI Advantage", "count": 1}]});
        let path = format!("/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations");
        async move { h.admin("POST", &path, Some(body)).await }
    };
    assert_eq!(reserve("a.com", "Lab", "FCH2").await.status, 201);

    for sn in ["FCH1", "FCH2"] {
        let refused = reserve("b.com", "Default", sn).await;
        assert_eq!(refused.status, 409, "{:?}", refused.body);
        let message = refused.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("another smart account"), "{message}");
        assert!(!message.contains("Lab") && !message.contains("a.com"), "{message}");
    }
    // In its own account the refusal says where the device is: one device is licensed once.
    let registered = reserve("a.com", "Default", "FCH1").await;
    assert_eq!(registered.status, 409);
    let message = registered.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("registered product instance") && message.contains("'Lab'"), "{message}");
    // The refusals reserved nothing.
    let b = h.admin("GET", "/api/v1/accounts/b.com/reservations", None).await;
    assert_eq!(b.body["reservations"].as_array().unwrap().len(), 0);
    let a = h.admin("GET", "/api/v1/accounts/a.com/reservations", None).await;
    assert_eq!(a.body["reservations"].as_array().unwrap().len(), 1);
}

/// An answer as text without its request ids, which differ from request to request by design.
fn comparable(body: &serde_json::Value) -> String {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("request_id");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut body = body.clone();
    strip(&mut body);
    body.to_string()
}
