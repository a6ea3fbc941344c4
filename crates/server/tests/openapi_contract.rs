//! The OpenAPI document against the code (issue 13): every route the router sources declare is
//! documented, every documented operation is routed (and no other method on its path), and
//! each operation says what it takes and what it answers, errors included.

use crate::common;

use common::*;
use serde_json::Value;
use smartlic_server::legacy::{PREFIX, SATELLITE_BASE};
use smartlic_server::openapi::{document, satellite_document};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Sources whose routes are no part of the API: the device protocol, the gateway's relay of it,
/// and the web portal.
const NOT_API: [&str; 3] = ["src/device.rs", "src/gateway.rs", "src/portal/"];

/// Every source file of the server crate under `dir` (relative to the crate), recursively.
fn sources(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{dir}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            out.extend(sources(&name));
        } else if name.ends_with(".rs") {
            out.push(name);
        }
    }
    out
}

/// A path template with its parameters' names left out: `{domain}` and `{name}` are one slot.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push_str("{}");
            }
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// (method, path shape) of every operation of `doc`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.clone(), shape(path)));
        }
    }
    out
}

/// The text between the parenthesis opening at `open` and its match.
fn call_arguments(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced call at {open}")
}

/// A string literal's or `format!`'s text with the crate's path constants put in.
fn template(literal: &str) -> String {
    let inner = literal.split('"').nth(1).unwrap_or_else(|| panic!("no string in {literal}"));
    inner.replace("{PREFIX}", PREFIX).replace("{SATELLITE_BASE}", SATELLITE_BASE).replace("{{", "{").replace("}}", "}")
}

/// (method, path) of every `.route(...)` of `source`, except catch-alls (`{*rest}`, `any`).
/// A path written `at("/x")` is under the latest `let at = ...` closure's base; `resources`
/// serves the cloud's v1 base and a satellite's.
fn declared_routes(source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    let mut at_bases: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(found) = source[from..].find(".route(") {
        let start = from + found;
        from = start + 1;
        if let Some(closure) = source[..start].rfind("let at = |path: &str| format!(") {
            let format = template(&source[closure..]);
            let base = format.replace("{path}", "");
            at_bases = if base.contains("{base}") {
                vec![base.replace("{base}", &format!("{PREFIX}/v1")), base.replace("{base}", SATELLITE_BASE)]
            } else {
                vec![base]
            };
        }
        let args = call_arguments(source, start + ".route".len());
        let (path, handlers) = args.split_once(',').unwrap();
        let path = path.trim();
        let paths = if let Some(rest) = path.strip_prefix("&at(") {
            at_bases.iter().map(|b| format!("{b}{}", template(rest))).collect()
        } else if path.starts_with('"') || path.starts_with("&format!(") {
            vec![template(path)]
        } else {
            panic!("a route path this test cannot read: {path}")
        };
        for path in paths.iter().filter(|p| !p.contains("{*")) {
            for method in METHODS {
                let called = format!("{method}(");
                let named = handlers.match_indices(&called).any(|(i, _)| {
                    i == 0 || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if named {
                    routes.push((method.to_string(), path.clone()));
                }
            }
        }
    }
    routes
}

#[test]
fn every_route_of_the_router_is_documented() {
    let documented: BTreeSet<_> = operations(&document()).union(&operations(&satellite_document())).cloned().collect();
    let mut seen = 0;
    for file in sources("src").iter().filter(|f| !NOT_API.iter().any(|n| f.starts_with(n))) {
        let source = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        for (method, path) in declared_routes(&source) {
            seen += 1;
            let key = (method.clone(), shape(&path));
            assert!(documented.contains(&key), "{method} {path} ({file}) is routed but not in the OpenAPI document");
        }
    }
    // The reading above finds what it should: the routes of every file, not none.
    assert!(seen > 80, "only {seen} routes read from the sources");
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method() {
    let h = Harness::new().await;
    let doc = h.call("", "GET", "/api/v1/openapi.json", None).await.body;
    assert_eq!(doc, document(), "the served document is the generated one");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "1").replace(['{', '}'], "");
        for method in METHODS {
            let documented = item.get(method).is_some();
            let url = format!("{}{concrete}", h.base);
            let r = h.http.request(method.to_uppercase().parse().unwrap(), url).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            if documented {
                assert!(![404, 405].contains(&status), "{method} {path} is documented but not routed: {status} {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is routed but not documented: {body}");
            }
        }
    }
}

/// The schema an answer or body refers to, by name.
fn schema_name(content: &Value) -> &str {
    content["schema"]["$ref"].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or("")
}

#[test]
fn every_operation_says_what_it_takes_and_answers() {
    for doc in [document(), satellite_document()] {
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"], "/oauth/token");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let what = format!("{method} {path}");
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{what}: no operationId"));
                assert!(ids.insert(id.to_string()), "{what}: operationId {id} twice");
                assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{what}: no summary");
                let answers = op["responses"].as_object().unwrap();
                let success = answers.iter().find(|(status, _)| status.starts_with('2'));
                let (_, success) = success.unwrap_or_else(|| panic!("{what}: no success answer"));
                assert!(
                    success["content"].as_object().is_some_and(|c| !c.is_empty()),
                    "{what}: success has no content"
                );
                for (status, answer) in answers.iter().filter(|(s, _)| s.as_str() >= "400") {
                    let schema = schema_name(&answer["content"]["application/json"]);
                    assert!(
                        ["Error", "OriginalError", "OAuthErrorBody", "Readiness"].contains(&schema),
                        "{what} {status}: no error schema"
                    );
                }
                // Each `{parameter}` of the path is declared as one.
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let in_path: BTreeSet<&str> =
                    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
                assert_eq!(declared, in_path, "{what}: path parameters");
                let open = op["security"] == Value::Array(Vec::new());
                if !open {
                    let refused = &answers.get("401").unwrap_or_else(|| panic!("{what}: no 401"));
                    assert!(refused["headers"]["WWW-Authenticate"].is_object(), "{what}: 401 without its challenge");
                }
                // The token endpoints answer every bad body 400 in the OAuth2 shape.
                let oauth = schema_name(&answers.get("400").unwrap_or(&Value::Null)["content"]["application/json"]);
                if op["requestBody"]["content"]["application/json"].is_object() && oauth != "OAuthErrorBody" {
                    for status in ["400", "413", "415", "422"] {
                        assert!(answers.contains_key(status), "{what}: a JSON body and no {status}");
                    }
                }
            }
        }
    }
}

#[test]
fn listings_bodies_and_errors_carry_their_limits() {
    let doc = document();
    let listing = &doc["paths"]["/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens"]["get"];
    let limit = listing["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(
        (limit["in"].as_str(), &limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (Some("query"), &1.into(), &1000.into())
    );
    let page = &doc["components"]["schemas"]["TokenPage"]["properties"];
    assert_eq!(page["tokens"]["items"]["$ref"], "#/components/schemas/TokenView");
    assert!(page["next_offset"].is_object());
    let token = &doc["components"]["schemas"]["NewTokenBody"]["properties"];
    assert_eq!((&token["expires_days"]["minimum"], &token["expires_days"]["maximum"]), (&1.into(), &365.into()));
    assert_eq!(token["description"]["maxLength"], 512);
    let account = &doc["components"]["schemas"]["NewAccountBody"];
    assert_eq!(account["required"], serde_json::json!(["domain"]));
    assert_eq!(account["properties"]["domain"]["maxLength"], 253);
    let error = &doc["components"]["schemas"]["Error"]["properties"];
    assert!(error["request_id"].is_object() && error["error"]["$ref"].is_string());
    let token = &doc["paths"]["/oauth/token"]["post"];
    assert!(token["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    assert!(token["responses"]["429"]["headers"]["Retry-After"].is_object());
    let report = &doc["paths"]["/api/v1/accounts/{domain}/reports/usage"]["get"]["responses"]["200"]["content"];
    assert!(report["text/csv"].is_object() && report["application/json"].is_object());
}
