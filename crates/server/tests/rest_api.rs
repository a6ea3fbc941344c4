//! The REST API over real HTTPS: OAuth2, roles, and every bad input refused without change.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_proto::wire::Udi;
use smartlic_proto::KeyAlgorithm;

const POOL: &str = "/api/v1/accounts/example.com/virtual-accounts/Default";

/// Number of events in the log: a refused request must not add one.
async fn event_count(h: &Harness) -> usize {
    h.admin("GET", "/api/v1/events?limit=1000", None).await.body["events"].as_array().unwrap().len()
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 5)]).await;
    let before_events = event_count(&h).await;
    let before = h.licenses("example.com", "Default").await;
    let long = "x".repeat(500);
    let cases: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        ("GET", "/api/v1/accounts/nope.com/virtual-accounts".into(), None, 404, "NOT_FOUND"),
        ("GET", "/api/v1/accounts/example.com/virtual-accounts/Nope/licenses".into(), None, 404, "NOT_FOUND"),
        ("POST", format!("{POOL}/licenses"), Some(json!({"tag": "No Such Tag", "count": 1})), 400, "INVALID_INPUT"),
        ("POST", format!("{POOL}/licenses"), Some(json!({"tag": "ACI Advantage", "count": -3})), 400, "INVALID_INPUT"),
        (
            "POST",
            format!("{POOL}/licenses"),
            Some(json!({"tag": "ACI Advantage", "count": 1_000_000_000})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            format!("{POOL}/licenses"),
            Some(json!({"tag": "ACI Advantage", "count": 1, "type": "term"})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            format!("{POOL}/licenses"),
            Some(json!({"tag": "ACI Advantage", "count": 1, "type": "term", "end": "2026-02-30"})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            format!("{POOL}/licenses"),
            Some(json!({"tag": "ACI Advantage", "count": "many"})),
            422,
            "MALFORMED_JSON",
        ),
        (
            "POST",
            format!("{POOL}/licenses"),
            Some(json!({"tag": "ACI Advantage", "count": 1, "bogus": 1})),
            422,
            "MALFORMED_JSON",
        ),
        ("POST", "/api/v1/accounts".into(), Some(json!({"domain": "not a domain"})), 400, "INVALID_INPUT"),
        ("POST", "/api/v1/accounts".into(), Some(json!({"domain": "example.com"})), 409, "CONFLICT"),
        (
            "POST",
            "/api/v1/accounts/example.com/virtual-accounts".into(),
            Some(json!({"name": long})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            "/api/v1/accounts/example.com/virtual-accounts".into(),
            Some(json!({"name": "Default"})),
            409,
            "CONFLICT",
        ),
        (
            "POST",
            format!("{POOL}/licenses/transfer"),
            Some(json!({"tag": "ACI Advantage", "count": 6, "to": "Default"})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            format!("{POOL}/licenses/transfer"),
            Some(json!({"tag": "ACI Advantage", "count": 1, "to": "Nowhere"})),
            404,
            "NOT_FOUND",
        ),
        ("POST", format!("{POOL}/tokens"), Some(json!({"expires_days": 0})), 400, "INVALID_INPUT"),
        ("POST", format!("{POOL}/tokens"), Some(json!({"expires_days": 9999})), 400, "INVALID_INPUT"),
        ("POST", format!("{POOL}/tokens"), Some(json!({"max_uses": -1})), 400, "INVALID_INPUT"),
        ("POST", format!("{POOL}/tokens/revoke"), Some(json!({"token": "unknown"})), 404, "NOT_FOUND"),
        (
            "POST",
            "/api/v1/accounts/example.com/users".into(),
            Some(json!({"username": "u", "role": "king"})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            "/api/v1/accounts/example.com/users".into(),
            Some(json!({"username": "u", "role": "virtual-account-user"})),
            400,
            "INVALID_INPUT",
        ),
        (
            "POST",
            "/api/v1/accounts/example.com/api-clients".into(),
            Some(json!({"name": "", "role": "smart-account-user"})),
            400,
            "INVALID_INPUT",
        ),
        ("GET", "/api/v1/accounts/example.com/events?limit=0".into(), None, 400, "INVALID_INPUT"),
        ("GET", "/api/v1/accounts/example.com/reports/usage?format=xml".into(), None, 400, "INVALID_INPUT"),
        ("POST", "/api/v1/clock".into(), Some(json!({"time": "yesterday"})), 400, "INVALID_INPUT"),
        ("GET", "/api/v1/nothing-here".into(), None, 404, "NOT_FOUND"),
    ];
    for (method, path, body, status, code) in cases {
        let a = h.admin(method, &path, body.clone()).await;
        assert_eq!((a.status, a.code()), (status, code), "{method} {path} {body:?} -> {:?}", a.body);
        assert!(!a.body["error"]["message"].as_str().unwrap().is_empty());
    }
    // Raw malformed JSON.
    let r = h
        .http
        .post(format!("{}{POOL}/licenses", h.base))
        .bearer_auth(h.bearer())
        .header("content-type", "application/json")
        .body("{\"tag\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(h.licenses("example.com", "Default").await, before);
    assert_eq!(event_count(&h).await, before_events);
}

#[tokio::test]
async fn bearer_tokens_and_client_credentials_are_checked() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    for token in ["", "wrong-token"] {
        let a = h.call(token, "GET", "/api/v1/accounts", None).await;
        assert_eq!((a.status, a.code()), (401, "UNAUTHENTICATED"));
    }
    assert!(h.login("admin", "wrong-secret-000").await.is_none());
    assert!(h.login("nobody", SECRET).await.is_none());
    let r = h.http.post(format!("{}/oauth/token", h.base)).form(&[("grant_type", "implicit")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    // An API client gets its secret once; the listing never shows it.
    let c = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "ci-bot", "role": "smart-account-user"})),
        )
        .await;
    assert_eq!(c.status, 201);
    // Its name is a display name; it logs in with its generated client ID.
    assert_eq!(c.body["name"], "ci-bot");
    let id = c.body["client_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("client-"), "{id}");
    let secret = c.body["client_secret"].as_str().unwrap().to_string();
    let listing = h.admin("GET", "/api/v1/accounts/example.com/api-clients", None).await;
    assert!(!listing.body.to_string().contains(&secret));
    assert!(h.login("ci-bot", &secret).await.is_none());
    // Access tokens expire on the manager's clock.
    let token = h.login(&id, &secret).await.unwrap();
    h.set_clock(&smartlic_core::Timestamp(h.now_ms()).plus_days(1).to_rfc3339()).await;
    assert_eq!(h.call(&token, "GET", "/api/v1/accounts", None).await.status, 401);
    let openapi = h.call("", "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(openapi.body["openapi"], "3.1.0");
    assert!(openapi.body["paths"]["/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens"]["post"].is_object());
}

#[tokio::test]
async fn roles_act_only_within_their_rights() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 10)]).await;
    h.account_with("other.org", &[]).await;
    assert_eq!(
        h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab"}))).await.status,
        201
    );
    let client = |name: &str, role: &str, va: Option<&str>| {
        let mut body = json!({"name": name, "role": role});
        if let Some(v) = va {
            body["virtual_account"] = json!(v);
        }
        body
    };
    let mut tokens = std::collections::HashMap::new();
    for (name, role, va) in [
        ("sa-admin", "smart-account-admin", None),
        ("sa-user", "smart-account-user", None),
        ("va-admin", "virtual-account-admin", Some("Lab")),
        ("va-user", "virtual-account-user", Some("Lab")),
    ] {
        let c = h.admin("POST", "/api/v1/accounts/example.com/api-clients", Some(client(name, role, va))).await;
        assert_eq!(c.status, 201, "{:?}", c.body);
        let (id, secret) = (c.body["client_id"].as_str().unwrap(), c.body["client_secret"].as_str().unwrap());
        tokens.insert(name, h.login(id, secret).await.unwrap());
    }
    let as_ = |who: &str| tokens[who].clone();
    let lab = "/api/v1/accounts/example.com/virtual-accounts/Lab";
    // Nobody but the operator creates accounts or deposits licenses.
    for who in ["sa-admin", "sa-user", "va-admin", "va-user"] {
        let a = h.call(&as_(who), "POST", "/api/v1/accounts", Some(json!({"domain": "x.com"}))).await;
        assert_eq!((a.status, a.code()), (403, "FORBIDDEN"), "{who}");
        let a = h
            .call(&as_(who), "POST", &format!("{lab}/licenses"), Some(json!({"tag": "ACI Advantage", "count": 1})))
            .await;
        assert_eq!(a.status, 403, "{who}");
        let a = h.call(&as_(who), "GET", "/api/v1/accounts/other.org/virtual-accounts", None).await;
        assert_eq!(a.status, 404, "{who} learns nothing of another account");
        let a = h.call(&as_(who), "POST", "/api/v1/clock", Some(json!({"time": "2030-01-01"}))).await;
        assert_eq!(a.status, 403, "{who} sets the clock");
    }
    // Smart-account roles span pools; users do not manage access.
    assert_eq!(
        h.call(
            &as_("sa-user"),
            "POST",
            &format!("{POOL}/licenses/transfer"),
            Some(json!({"tag": "ACI Advantage", "count": 2, "to": "Lab"}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.call(
            &as_("sa-user"),
            "POST",
            "/api/v1/accounts/example.com/users",
            Some(json!({"username": "eve", "role": "smart-account-admin"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        h.call(
            &as_("sa-admin"),
            "POST",
            "/api/v1/accounts/example.com/users",
            Some(json!({"username": "bob", "role": "smart-account-user", "password": "correct horse battery"}))
        )
        .await
        .status,
        201
    );
    // Virtual-account roles see and act in their pool only.
    let vas = h.call(&as_("va-user"), "GET", "/api/v1/accounts/example.com/virtual-accounts", None).await;
    let names: Vec<&str> =
        vas.body["virtual_accounts"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Lab"]);
    assert_eq!(h.call(&as_("va-user"), "GET", &format!("{POOL}/licenses"), None).await.status, 403);
    assert_eq!(h.call(&as_("va-user"), "POST", &format!("{lab}/tokens"), Some(json!({}))).await.status, 201);
    assert_eq!(
        h.call(
            &as_("va-user"),
            "POST",
            &format!("{lab}/licenses/transfer"),
            Some(json!({"tag": "ACI Advantage", "count": 1, "to": "Default"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        h.call(
            &as_("va-admin"),
            "POST",
            &format!("{lab}/licenses/transfer"),
            Some(json!({"tag": "ACI Advantage", "count": 1, "to": "Default"}))
        )
        .await
        .status,
        403,
        "target pool outside its scope"
    );
    assert_eq!(
        h.call(
            &as_("va-admin"),
            "POST",
            "/api/v1/accounts/example.com/users",
            Some(json!({"username": "carol", "role": "virtual-account-user", "virtual_account": "Lab"}))
        )
        .await
        .status,
        201
    );
    assert_eq!(
        h.call(
            &as_("va-admin"),
            "POST",
            "/api/v1/accounts/example.com/users",
            Some(json!({"username": "dan", "role": "smart-account-user"}))
        )
        .await
        .status,
        403
    );
    // A user with a password logs in with the password grant.
    let form = [("grant_type", "password"), ("username", "bob@example.com"), ("password", "correct horse battery")];
    let r = h.http.post(format!("{}/oauth/token", h.base)).form(&form).send().await.unwrap();
    assert!(r.status().is_success());
    let bad = [("grant_type", "password"), ("username", "bob@example.com"), ("password", "wrong password here")];
    let r = h.http.post(format!("{}/oauth/token", h.base)).form(&bad).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn reports_come_as_json_and_csv() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    let dev = h.register("REP", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();
    let json = h.admin("GET", "/api/v1/accounts/example.com/reports/usage", None).await;
    assert_eq!(json.body["rows"].as_array().unwrap().len(), 2);
    let r = h
        .http
        .get(format!("{}/api/v1/accounts/example.com/reports/usage?format=csv", h.base))
        .bearer_auth(h.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("smart_account,virtual_account,tag,"), "{csv}");
    assert!(csv.contains("example.com,Default,ACI Essentials,ACI Essentials,0,10,0,10,0,In Compliance"), "{csv}");
    let instances = h.admin("GET", "/api/v1/accounts/example.com/reports/instances?format=csv", None).await;
    assert!(instances.body.as_str().unwrap().contains("ACI Essentials=10"));
}

/// A device names itself with a spreadsheet formula: the API's CSV report neutralises it (the
/// portal's downloads share the same writer).
#[tokio::test]
async fn a_formula_a_device_reports_as_its_hostname_is_neutralised_in_csv() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let udi = Udi { pid: "C9500-32C".into(), sn: "CSV1".into() };
    h.devices
        .register(&udi, Some("=HYPERLINK(\"http://x\")"), &token, false, KeyAlgorithm::Ed25519, h.now_ms())
        .await
        .expect("registration");
    let instances = h.admin("GET", "/api/v1/accounts/example.com/reports/instances?format=csv", None).await;
    let csv = instances.body.as_str().unwrap();
    assert!(csv.contains(r#""'=HYPERLINK(""http://x"")""#), "{csv}");
    assert!(!csv.contains(",=HYPERLINK"), "{csv}");
}
