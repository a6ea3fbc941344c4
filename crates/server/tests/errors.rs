//! Every error on every route is the documented JSON error (issue 13): the routes are read
//! from the served OpenAPI document, so a new route is covered without touching this test.

use crate::common;

use common::*;
use reqwest::header::{HeaderMap, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::{json, Value};

const LEGACY: &str = "/services/api/smart-accounts-and-licensing";
/// Operations that take no body: a wrong content type is not theirs to refuse.
const BODYLESS: &[&str] =
    &["/rotate-secret", "/virtual-accounts/{va}/delete", "/api/v1/backup", "/api/v1/check/repair"];

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// The route's path with its parameters filled in with names of an existing account and pool.
fn concrete(path: &str) -> String {
    path.replace("{domain}", "example.com")
        .replace("{va}", "Default")
        .replace("{kind}", "CUSTOMER")
        .replace("{name}", "nobody")
        .replace("{id}", "1")
}

async fn send(
    h: &Harness,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    content: Option<(&str, &str)>,
) -> Reply {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut req = h.http.request(method, format!("{}{path}", h.base));
    if let Some(a) = authorization {
        req = req.header(AUTHORIZATION, a);
    }
    if let Some((content_type, body)) = content {
        if !content_type.is_empty() {
            req = req.header(CONTENT_TYPE, content_type);
        }
        req = req.body(body.to_string());
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    // Not every success is JSON (a backup, a CSV report): an error always is, see `error_of`.
    let body = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

/// Asserts the documented error shape of the API `path` belongs to, and returns its code
/// (the original API's envelope has none: its message is returned).
fn error_of(path: &str, r: &Reply) -> String {
    let what = format!("{path}: {} {}", r.status, r.body);
    assert!(r.status >= 400, "{what}");
    assert_eq!(r.headers[CONTENT_TYPE], "application/json", "{what}");
    assert!(r.body.is_object(), "{what}");
    if path.starts_with(LEGACY) {
        assert_eq!(r.body["status"], "ERROR", "{what}");
        let message = r.body["statusMessage"].as_str().unwrap_or_else(|| panic!("{what}"));
        assert!(!message.is_empty(), "{what}");
        message.to_string()
    } else {
        let message = r.body["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}"));
        assert!(!message.is_empty(), "{what}");
        r.body["error"]["code"].as_str().unwrap_or_else(|| panic!("{what}")).to_string()
    }
}

/// Every operation of the document that needs a bearer token: (method, path).
async fn protected_operations(h: &Harness) -> Vec<(String, String)> {
    let doc = send(h, "get", "/api/v1/openapi.json", None, None).await.body;
    let mut out = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            if op.get("security") != Some(&Value::Array(Vec::new())) {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    assert!(out.len() > 40, "the document lists the operations: {}", out.len());
    out
}

#[tokio::test]
async fn every_route_refuses_without_a_usable_token_with_a_challenge() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    for (method, route) in protected_operations(&h).await {
        let path = concrete(&route);
        let missing = send(&h, &method, &path, None, None).await;
        assert_eq!(missing.status, 401, "{method} {path}: {}", missing.body);
        error_of(&path, &missing);
        assert_eq!(missing.headers[WWW_AUTHENTICATE], r#"Bearer realm="smartlic""#, "{method} {path}");

        let wrong = send(&h, &method, &path, Some("Bearer not-a-token"), None).await;
        assert_eq!(wrong.status, 401, "{method} {path}: {}", wrong.body);
        error_of(&path, &wrong);
        let challenge = &wrong.headers[WWW_AUTHENTICATE];
        assert_eq!(challenge, r#"Bearer realm="smartlic", error="invalid_token""#, "{method} {path}");

        let basic = send(&h, &method, &path, Some("Basic YWRtaW46eA=="), None).await;
        assert_eq!(basic.status, 401, "{method} {path}: {}", basic.body);
        assert_eq!(basic.headers[WWW_AUTHENTICATE], r#"Bearer realm="smartlic""#, "{method} {path}");
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_whatever_its_case() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {}", h.bearer());
        for (method, route) in protected_operations(&h).await {
            let path = concrete(&route);
            let r = send(&h, &method, &path, Some(&auth), Some(("application/json", "{}"))).await;
            assert_ne!(r.status, 401, "{scheme}: {method} {path}: {}", r.body);
        }
    }
    let r = send(&h, "get", "/api/v1/accounts", Some(&format!("bearer {}", h.bearer())), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_is_a_json_405_naming_the_allowed_ones() {
    let h = Harness::new().await;
    let auth = format!("Bearer {}", h.bearer());
    let doc = send(&h, "get", "/api/v1/openapi.json", None, None).await.body;
    for (route, methods) in doc["paths"].as_object().unwrap() {
        let path = concrete(route);
        let r = send(&h, "put", &path, Some(&auth), None).await;
        assert_eq!(r.status, 405, "PUT {path}: {}", r.body);
        let code = error_of(&path, &r);
        if !path.starts_with(LEGACY) {
            assert_eq!(code, "METHOD_NOT_ALLOWED", "{path}");
        }
        let allow = r.headers[ALLOW].to_str().unwrap().to_ascii_lowercase();
        for method in methods.as_object().unwrap().keys() {
            assert!(allow.contains(method.as_str()), "PUT {path}: Allow {allow} lacks {method}");
        }
    }
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415_and_bad_json_400_on_every_route() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    let auth = format!("Bearer {}", h.bearer());
    for (method, route) in protected_operations(&h).await {
        if !["post", "patch"].contains(&method.as_str()) || BODYLESS.iter().any(|b| route.ends_with(b)) {
            continue;
        }
        let path = concrete(&route);
        for content_type in ["", "text/plain", "application/x-www-form-urlencoded"] {
            let r = send(&h, &method, &path, Some(&auth), Some((content_type, "{}"))).await;
            assert_eq!(r.status, 415, "{method} {path} with '{content_type}': {}", r.body);
            let code = error_of(&path, &r);
            if !path.starts_with(LEGACY) {
                assert_eq!(code, "UNSUPPORTED_MEDIA_TYPE", "{method} {path}");
            }
        }
        let r = send(&h, &method, &path, Some(&auth), Some(("application/json", "{not json"))).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.body);
        let code = error_of(&path, &r);
        if !path.starts_with(LEGACY) {
            assert_eq!(code, "MALFORMED_JSON", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn a_bad_query_string_is_a_json_error_on_every_route() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    let auth = format!("Bearer {}", h.bearer());
    for (method, route) in protected_operations(&h).await {
        let path = format!("{}?limit=many&offset=-x", concrete(&route));
        let r = send(&h, &method, &path, Some(&auth), Some(("application/json", "{}"))).await;
        if r.status >= 400 {
            error_of(&path, &r);
        }
    }
    for path in ["/api/v1/events?limit=many", "/api/v1/accounts/example.com/events?limit=1e3"] {
        let r = send(&h, "get", path, Some(&auth), None).await;
        assert_eq!((r.status, error_of(path, &r).as_str()), (400, "INVALID_QUERY"), "{path}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("limit"), "{}", r.body);
    }
    let path = format!("{LEGACY}/v1/accounts/search?domain=ex&limit=many");
    let r = send(&h, "get", &path, Some(&auth), None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(error_of(&path, &r).contains("limit"), "{}", r.body);
}

#[tokio::test]
async fn wrong_client_credentials_name_the_basic_scheme() {
    let h = Harness::new().await;
    let form = [("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", "wrong-secret-000")];
    let r = h.http.post(format!("{}/oauth/token", h.base)).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()[WWW_AUTHENTICATE], r#"Basic realm="smartlic""#);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
}

/// Every listing of the document (a GET whose answer carries `next`) pages: its pages of one
/// item, followed by their `next` cursor, are the whole list, in order; `limit` is bounded.
#[tokio::test]
async fn every_list_endpoint_pages() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 5)]).await;
    h.account_with("example.org", &[]).await;
    let lab = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab"}))).await;
    assert_eq!(lab.status, 201, "{}", lab.body);
    for name in ["ann", "bob"] {
        let body = json!({"name": name, "role": "smart-account-user", "password": "a-long-password-1"});
        let user = h.admin("POST", "/api/v1/accounts/example.com/users", Some(body)).await;
        assert_eq!(user.status, 201, "{}", user.body);
        h.client("example.com", json!({"name": format!("{name}-ci"), "role": "smart-account-admin"})).await;
        h.relogin().await;
    }
    h.token("example.com", "Default", json!({})).await;
    for sn in ["SN1", "SN2"] {
        h.register(sn, &token).await;
    }
    let auth = format!("Bearer {}", h.bearer());
    let doc = send(&h, "get", "/api/v1/openapi.json", None, None).await.body;
    let mut listings = Vec::new();
    for (route, methods) in doc["paths"].as_object().unwrap() {
        // A listing names no single object.
        if route.starts_with(LEGACY) || route.contains("{id}") || methods.get("get").is_none() {
            continue;
        }
        let path = concrete(route);
        let whole = send(&h, "get", &format!("{path}?limit=1000"), Some(&auth), None).await;
        // Routes of another mode (a satellite's) refuse on this manager.
        let Some(next) = whole.body.get("next").filter(|_| whole.status == 200) else { continue };
        assert!(next.is_null(), "{path}: {}", whole.body);
        let (key, all) = whole.body.as_object().unwrap().iter().find(|(_, v)| v.is_array()).unwrap();
        let all = all.as_array().unwrap();
        let mut paged = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = send(&h, "get", &format!("{path}?limit=1{cursor}"), Some(&auth), None).await;
            let items = page.body[key].as_array().unwrap_or_else(|| panic!("{path}: {}", page.body));
            assert!(items.len() <= 1, "{path}: {}", page.body);
            paged.extend(items.iter().cloned());
            match page.body["next"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(&paged, all, "{path}");
        let documented: Vec<&str> = methods["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        // Instance and event listings page by cursor only (keyset pages); the others by offset too.
        let keyset = ["instances", "events"].contains(&key.as_str());
        let paging: &[&str] = if keyset { &["limit", "cursor"] } else { &["limit", "offset", "cursor"] };
        assert_eq!(documented, paging, "{route} documents its paging");
        listings.push((path, all.len()));
    }
    let several = listings.iter().filter(|(_, n)| *n >= 2).count();
    assert!(listings.len() >= 14 && several >= 9, "listings and their sizes: {listings:?}");

    for (query, code) in [("limit=0", "INVALID_INPUT"), ("limit=1001", "INVALID_INPUT"), ("offset=-1", "INVALID_QUERY")]
    {
        let path = format!("/api/v1/accounts?{query}");
        let r = send(&h, "get", &path, Some(&auth), None).await;
        assert_eq!((r.status, error_of(&path, &r).as_str()), (400, code), "{path}: {}", r.body);
    }
    let r = send(&h, "get", "/api/v1/accounts?limit=1&offset=7", Some(&auth), None).await;
    assert_eq!((r.body["accounts"].as_array().unwrap().len(), &r.body["next_offset"]), (0, &Value::Null));
}
