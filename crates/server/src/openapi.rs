//! The OpenAPI 3 description served at `/api/v1/openapi.json`, built from the route table.

use serde_json::{json, Map, Value};

/// (method, path, summary) of every REST operation; docs/API.md has the shapes.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("post", "/oauth/token", "OAuth2 token (client_credentials or password grant, form-encoded)"),
    ("get", "/api/v1/accounts", "List smart accounts"),
    ("post", "/api/v1/accounts", "Create a smart account (operator)"),
    ("get", "/api/v1/accounts/{domain}", "Show a smart account"),
    ("patch", "/api/v1/accounts/{domain}", "Allow or forbid universal reservations (operator)"),
    ("get", "/api/v1/accounts/{domain}/virtual-accounts", "List virtual accounts"),
    ("post", "/api/v1/accounts/{domain}/virtual-accounts", "Create a virtual account"),
    ("delete", "/api/v1/accounts/{domain}/virtual-accounts/{va}", "Delete an empty virtual account"),
    ("get", "/api/v1/accounts/{domain}/users", "List users (login name@domain, status)"),
    ("post", "/api/v1/accounts/{domain}/users", "Create a user with a role (name unique in the account)"),
    (
        "patch",
        "/api/v1/accounts/{domain}/users/{name}",
        "Disable or enable a user, or set its password (a user may set its own); revokes its access tokens",
    ),
    ("delete", "/api/v1/accounts/{domain}/users/{name}", "Delete a user; its access tokens end at once"),
    ("get", "/api/v1/accounts/{domain}/api-clients", "List API clients (generated client ID, status)"),
    ("post", "/api/v1/accounts/{domain}/api-clients", "Create an API client (client ID generated, secret shown once)"),
    (
        "patch",
        "/api/v1/accounts/{domain}/api-clients/{name}",
        "Disable or enable an API client; disabling revokes its access tokens",
    ),
    ("delete", "/api/v1/accounts/{domain}/api-clients/{name}", "Delete an API client; its access tokens end at once"),
    (
        "post",
        "/api/v1/accounts/{domain}/api-clients/{name}/rotate-secret",
        "Give an API client a new secret (shown once); the old one and its access tokens end at once",
    ),
    ("get", "/api/v1/accounts/{domain}/access-tokens", "Live access tokens of the account (id and prefix only)"),
    ("get", "/api/v1/access-tokens", "Live access tokens of the operators (operator)"),
    (
        "post",
        "/api/v1/access-tokens/revoke",
        "End an access token at once, by value or id: one's own, or one of a principal one manages",
    ),
    ("get", "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses", "Licenses of a pool with tier lending"),
    ("post", "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses", "Deposit licenses (operator)"),
    (
        "post",
        "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses/transfer",
        "Transfer available licenses (not in use, reserved or lent to lower tiers) to another pool",
    ),
    ("get", "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens", "List registration tokens (by prefix)"),
    (
        "post",
        "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
        "Create a registration token (shown once: only its hash is kept)",
    ),
    (
        "post",
        "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens/revoke",
        "Revoke a registration token given whole or by its listed prefix",
    ),
    ("get", "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations", "Offline reservations of a pool"),
    (
        "post",
        "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations",
        "Reserve licenses for an offline device: request code in, signed authorization code out",
    ),
    (
        "post",
        "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations/return",
        "Take back reserved licenses with the device's return code",
    ),
    ("get", "/api/v1/accounts/{domain}/reservations", "Offline reservations of an account"),
    ("get", "/api/v1/accounts/{domain}/virtual-accounts/{va}/instances", "Product instances of a pool"),
    ("get", "/api/v1/accounts/{domain}/instances", "Product instances of an account"),
    (
        "get",
        "/api/v1/accounts/{domain}/instances/{id}",
        "Show a product instance, with the evaluation use it reported at registration",
    ),
    ("delete", "/api/v1/accounts/{domain}/instances/{id}", "Remove a product instance"),
    ("post", "/api/v1/accounts/{domain}/instances/{id}/move", "Move a product instance to another pool"),
    ("get", "/api/v1/accounts/{domain}/events", "Event log of an account"),
    ("get", "/api/v1/events", "Event log of the manager (operator)"),
    ("get", "/api/v1/accounts/{domain}/alerts", "Current alerts"),
    ("get", "/api/v1/accounts/{domain}/reports/usage", "Usage report (format=json|csv)"),
    ("get", "/api/v1/accounts/{domain}/reports/instances", "Product instance report (format=json|csv)"),
    ("get", "/api/v1/clock", "The manager's time"),
    ("post", "/api/v1/clock", "Set the simulated clock (operator, --clock simulated)"),
    ("get", "/api/v1/catalog", "Entitlement tags and tiers"),
    ("get", "/api/v1/check", "Counters recomputed from the records: every difference (operator)"),
    (
        "post",
        "/api/v1/backup",
        "A consistent copy of the database taken online (operator; application/vnd.sqlite3, without the CA key)",
    ),
    (
        "post",
        "/api/v1/satellites",
        "Cloud: record a satellite's signed registration (operator or a role in its smart account); pending until approved",
    ),
    ("get", "/api/v1/satellites", "Cloud: satellites, pending and approved, with the pools they serve (operator)"),
    (
        "post",
        "/api/v1/satellites/{id}/approve",
        "Cloud: approve a satellite: certificate from the cloud CA (1 year), the named virtual accounts served by it alone",
    ),
    ("get", "/api/v1/satellites/{id}/answer", "Cloud: the signed approval for the satellite to import (409 NOT_APPROVED before)"),
    (
        "post",
        "/api/v1/satellites/answer",
        "Cloud, offline registration: record and approve a registration file with the named pools; answers the approval file",
    ),
    ("get", "/api/v1/local-accounts", "Satellite: local accounts and their registration status (operator)"),
    ("post", "/api/v1/local-accounts", "Satellite: create a local account mirroring a smart account of the cloud (operator)"),
    (
        "get",
        "/api/v1/local-accounts/{name}/registration",
        "Satellite: the local account's registration signed with the satellite's key (query satellite=NAME)",
    ),
    ("post", "/api/v1/local-accounts/{name}/sent", "Satellite: note the cloud's identifier of a registration sent online"),
    (
        "post",
        "/api/v1/local-accounts/{name}/approval",
        "Satellite: import the cloud's signed approval; the smart account and its granted pools then serve devices",
    ),
    (
        "post",
        SATELLITE_SYNC,
        "Cloud, network synchronisation: {request: YAML} signed by the satellite's certified key (no bearer token); answers {response: YAML}",
    ),
    (
        "post",
        "/api/v1/satellites/file-sync",
        "Cloud, File Sync (operator): apply a satellite's request file {request: YAML}; answers the response file {response: YAML}",
    ),
    ("get", "/api/v1/satellites/{id}/instances", "Cloud: the satellite's instances and usage as of its last synchronisation (operator)"),
    (
        "post",
        "/api/v1/satellites/{id}/instances/remove",
        "Cloud: remove a satellite's instance {virtual_account, pid, sn} (operator); the satellite removes it at its next sync",
    ),
    (
        "post",
        "/api/v1/sync/now",
        "Satellite: synchronise with the cloud over HTTPS {full, local_account, cloud} and apply its response",
    ),
    (
        "post",
        "/api/v1/sync/export",
        "Satellite: the next signed request {request: YAML} (body {full, local_account}) to carry to the cloud",
    ),
    ("post", "/api/v1/sync/import", "Satellite: apply the cloud's response file {response: YAML} in one transaction"),
    (
        "get",
        "/api/v1/sync/status",
        "Satellite: each local account's last synchronisation, Synchronization Due (30 days on) and whether overdue",
    ),
];

/// Authenticated by the signed request it carries, not by a bearer token.
const SATELLITE_SYNC: &str = "/api/v1/satellites/sync";

/// The original manager's API (`crate::legacy`), listed under its own tag.
const ORIGINAL_OPERATIONS: &[(&str, &str, &str)] = &[
    ("post", "/as/token.oauth2", "OAuth2 token, original identity service path (form-encoded)"),
    ("post", "/oauth2/default/v1/token", "OAuth2 token, newer identity service path (form-encoded)"),
    ("get", "/services/api/smart-accounts-and-licensing/v2/accounts", "Smart accounts of the caller"),
    (
        "get",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/{accountType}/virtual-accounts",
        "Virtual accounts",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/licenses",
        "Licenses with substitutions and details",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts",
        "Create a virtual account",
    ),
    (
        "get",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
        "Registration tokens of a virtual account",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
        "Create a registration token",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/tokens/revoke",
        "Revoke registration tokens (all or none)",
    ),
    (
        "get",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/devices",
        "Product instances of a virtual account",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/devices",
        "Product instances of virtual accounts, paged",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/licenses/transfer",
        "Transfer available licenses to other virtual accounts (all or none)",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/license-subscriptions",
        "Term and subscription licenses, paged",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/devices/transfer",
        "Move product instances to other virtual accounts (all or none)",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/delete",
        "Delete an empty virtual account",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/reserve-licenses",
        "Reserve licenses for offline devices (all requests or none)",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v2/accounts/{domain}/virtual-accounts/{va}/reserve-licenses",
        "Reserve licenses for offline devices (all requests or none)",
    ),
    (
        "post",
        "/services/api/smart-accounts-and-licensing/v2/accounts/{domain}/virtual-accounts/{va}/devices/remove",
        "Remove product instances, or return their reservations with return codes (all or none)",
    ),
    (
        "get",
        "/services/api/smart-accounts-and-licensing/v1/accounts/search",
        "Search smart accounts by domain substring",
    ),
    (
        "get",
        "/services/api/smart-accounts-and-licensing/v2/accounts/search",
        "Smart accounts with numeric account and virtual account ids (snake_case)",
    ),
];

/// A satellite's document: its original API is §1.5's variant, served instead of the cloud's.
pub fn satellite_document() -> Value {
    let mut doc = document();
    if let Some(paths) = doc["paths"].as_object_mut() {
        let satellite = satellite_original(paths);
        let cloud_token = |p: &str| p == "/as/token.oauth2" || p == "/oauth2/default/v1/token";
        paths.retain(|p, _| !p.starts_with(crate::legacy::PREFIX) && !cloud_token(p));
        paths.extend(satellite);
    }
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({"name": "satellite-original-api", "description": "A satellite's variant of the original API (also under /api/v1)"}));
    }
    doc
}

/// A satellite's original API (§1.5, `crate::legacy`): the cloud's v1 account resources under
/// `/backend/api/v1` (scripts use `/api/v1` too) with the account named by its local account's
/// name, its virtual accounts listed without an account type, the list of local accounts and
/// the token endpoint taking a JSON body.
fn satellite_original(cloud: &Map<String, Value>) -> Map<String, Value> {
    use crate::legacy::{PREFIX, SATELLITE_BASE};
    let cloud_base = format!("{PREFIX}/v1/accounts/{{domain}}/");
    let name = json!({"name": "name", "in": "path", "required": true, "description": "the local account's name",
                      "schema": {"type": "string"}});
    let mut paths = Map::new();
    for (path, item) in cloud {
        let Some(rest) = path.strip_prefix(&cloud_base) else { continue };
        let mut item = item.clone();
        for op in item.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
            op["tags"] = json!(["satellite-original-api"]);
            op["parameters"][0] = name.clone();
        }
        let rest = if rest == "{accountType}/virtual-accounts" { "virtual-accounts" } else { rest };
        let entry = paths.entry(format!("{SATELLITE_BASE}/accounts/{{name}}/{rest}")).or_insert_with(|| json!({}));
        for (method, op) in item.as_object().into_iter().flatten() {
            let mut op = op.clone();
            if let Some(params) = op["parameters"].as_array_mut() {
                params.retain(|p| p["name"] != "accountType");
            }
            entry[method] = op;
        }
    }
    let answer = json!({"200": {"description": "success"}});
    let token = json!({"post": {"summary": "OAuth2 token (client credentials) with a JSON body {grant_type, client_id, client_secret}",
        "tags": ["satellite-original-api"], "security": [], "responses": answer}});
    let accounts = json!({"post": {"summary": "The local accounts the caller may see: {accounts: [{name, accountDomain, accountName, status}]}",
        "tags": ["satellite-original-api"], "responses": answer}});
    paths.insert("/backend/oauth/token".into(), token);
    paths.insert(format!("{SATELLITE_BASE}/upstream_satellites/accounts"), accounts);
    paths
}

/// Probes and metrics (`crate::observe`, `crate::metrics`), outside the versioned API.
fn operating() -> Map<String, Value> {
    let check = json!({"type": "string", "description": "ok, or why the check failed"});
    let ready = json!({"type": "object", "properties": {
        "ready": {"type": "boolean"},
        "checks": {"type": "object", "properties": {"database": check, "ca": check, "jobs": check}}}});
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
    let health = json!({"get": {"summary": "Liveness: the process answers", "tags": ["operating"], "security": [],
        "responses": {"200": {"description": "alive", "content": {"text/plain": {"schema": {"type": "string", "enum": ["ok"]}}}}}}});
    let ready = json!({"get": {
        "summary": "Readiness: the database takes a write, the CA key signs, the background jobs ran within three intervals",
        "tags": ["operating"], "security": [],
        "responses": {
            "200": {"description": "ready", "content": {"application/json": {"schema": ready}}},
            "503": {"description": "not ready; each failed check says why", "content": {"application/json": {"schema": ready}}}}}});
    let metrics = json!({"get": {"summary": "Metrics in the Prometheus text format (operator)", "tags": ["operating"],
        "responses": {
            "200": {"description": "OpenMetrics text", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}},
            "401": {"description": "no usable bearer token", "content": error},
            "403": {"description": "the caller is not the operator", "content": error}}}});
    let paths = [("/health", health), ("/ready", ready), ("/metrics", metrics)];
    paths.into_iter().map(|(path, item)| (path.to_string(), item)).collect()
}

/// The listings of `/api/v1`: they answer a page (`limit`, `offset`) and `next_offset`, the
/// offset of the next page (null after the last).
const LISTINGS: &[&str] = &[
    "/api/v1/accounts",
    "/api/v1/accounts/{domain}/virtual-accounts",
    "/api/v1/accounts/{domain}/users",
    "/api/v1/accounts/{domain}/api-clients",
    "/api/v1/accounts/{domain}/access-tokens",
    "/api/v1/access-tokens",
    "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
    "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations",
    "/api/v1/accounts/{domain}/reservations",
    "/api/v1/accounts/{domain}/virtual-accounts/{va}/instances",
    "/api/v1/accounts/{domain}/instances",
    "/api/v1/accounts/{domain}/events",
    "/api/v1/events",
    "/api/v1/accounts/{domain}/alerts",
    "/api/v1/satellites",
    "/api/v1/local-accounts",
];

fn page_parameters() -> [Value; 2] {
    [
        json!({"name": "limit", "in": "query", "description": "items a page (events: the most recent first)",
               "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}),
        json!({"name": "offset", "in": "query", "description": "where the page starts: 0, or the previous page's next_offset",
               "schema": {"type": "integer", "minimum": 0, "default": 0}}),
    ]
}

pub fn document() -> Value {
    let mut paths = Map::new();
    let tagged =
        OPERATIONS.iter().map(|op| (op, "smartlic")).chain(ORIGINAL_OPERATIONS.iter().map(|op| (op, "original-api")));
    for ((method, path, summary), tag) in tagged {
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if *method == "get" && LISTINGS.contains(path) {
            params.extend(page_parameters());
        }
        let mut op = json!({
            "summary": summary,
            "tags": [tag],
            "parameters": params,
            "responses": {
                "200": {"description": "success"},
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if path.ends_with("token") || path.ends_with("token.oauth2") {
            op["security"] = json!([]);
            let retry = json!({"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}});
            op["responses"]["429"] = json!({"description": "too many failed logins for this client ID or from this address", "headers": retry});
            op["responses"]["503"] = json!({"description": "too many logins being checked at once", "headers": retry});
        } else {
            let challenge = json!({"WWW-Authenticate": {
                "description": "Bearer realm=\"smartlic\", with error=\"invalid_token\" when a token was refused",
                "schema": {"type": "string"}}});
            op["responses"]["401"] = json!({
                "description": "no usable bearer token (the scheme name is matched case-insensitively)",
                "headers": challenge,
                "content": op["responses"]["default"]["content"].clone()});
        }
        if *path == SATELLITE_SYNC {
            op["security"] = json!([]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    paths.extend(operating());
    json!({
        "openapi": "3.0.3",
        "info": {"title": "smartlic license manager", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "security": [{"oauth2": []}],
        "tags": [
            {"name": "smartlic", "description": "The smartlic REST API (docs/API.md)"},
            {"name": "original-api", "description": "The original manager's public API, for existing clients"},
            {"name": "operating", "description": "Liveness, readiness and metrics for the operator's tools"}
        ],
        "components": {
            "securitySchemes": {"oauth2": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}}}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}},
                "request_id": {"type": "string", "description": "The request's X-Request-Id, as in the server log"}}}}
        }
    })
}
