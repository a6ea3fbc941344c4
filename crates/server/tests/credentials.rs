//! The life cycle of credentials over real HTTPS (issue 10): users and API clients disabled,
//! deleted, their secrets rotated, live access tokens listed by prefix and revoked at once,
//! every change an event; registration tokens kept as hashes (shown once, listed by prefix);
//! the database and the CA key readable by their owner only.

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

const CLIENTS: &str = "/api/v1/accounts/example.com/api-clients";
const USERS: &str = "/api/v1/accounts/example.com/users";

async fn account(h: &Harness) {
    assert_eq!(h.admin("POST", "/api/v1/accounts", Some(json!({"domain": "example.com"}))).await.status, 201);
}

/// Whether a bearer token still opens the API.
async fn works(h: &Harness, token: &str) -> bool {
    let a = h.call(token, "GET", "/api/v1/accounts/example.com/virtual-accounts", None).await;
    assert!(a.status == 200 || a.status == 401, "{:?}", a.body);
    a.status == 200
}

async fn token_form(h: &Harness, form: &[(&str, &str)]) -> (u16, Value) {
    let r = h.http.post(format!("{}/oauth/token", h.base)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn event_kinds(h: &Harness) -> Vec<String> {
    let events = h.admin("GET", "/api/v1/accounts/example.com/events", None).await;
    events.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_disabled_or_deleted_client_is_refused_at_its_next_request() {
    let h = Harness::new().await;
    account(&h).await;
    let (id, secret, token) = h.client("example.com", json!({"name": "ci-bot", "role": "smart-account-admin"})).await;
    assert!(works(&h, &token).await);

    let off = h.admin("PATCH", &format!("{CLIENTS}/ci-bot"), Some(json!({"disabled": true}))).await;
    assert_eq!((off.status, off.body["status"].as_str()), (200, Some("disabled")), "{:?}", off.body);
    assert!(!works(&h, &token).await, "its live token ends at once");
    let (status, refused) =
        token_form(&h, &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]).await;
    assert_eq!(status, 401);
    assert!(refused["error_description"].as_str().unwrap().contains("disabled"), "{refused}");
    let listed = h.admin("GET", CLIENTS, None).await;
    assert_eq!(listed.body["api_clients"][0]["status"], "disabled", "the record stays");
    let twice = h.admin("PATCH", &format!("{CLIENTS}/ci-bot"), Some(json!({"disabled": true}))).await;
    assert_eq!(twice.status, 409, "{:?}", twice.body);

    assert_eq!(h.admin("PATCH", &format!("{CLIENTS}/ci-bot"), Some(json!({"disabled": false}))).await.status, 200);
    let token = h.login(&id, &secret).await.expect("enabled again");
    assert!(works(&h, &token).await);

    let gone = h.admin("DELETE", &format!("{CLIENTS}/ci-bot"), None).await;
    assert_eq!((gone.status, gone.body["deleted"].as_str()), (200, Some("ci-bot")), "{:?}", gone.body);
    assert!(!works(&h, &token).await, "a deleted client's bearer token is refused on its next request");
    assert!(h.login(&id, &secret).await.is_none());
    assert_eq!(h.admin("DELETE", &format!("{CLIENTS}/ci-bot"), None).await.status, 404);
    let kinds = event_kinds(&h).await;
    for kind in ["api-client.created", "api-client.disabled", "api-client.enabled", "api-client.deleted"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn rotating_a_secret_or_a_password_ends_the_old_one_and_its_tokens() {
    let h = Harness::new().await;
    account(&h).await;
    let (id, old_secret, token) =
        h.client("example.com", json!({"name": "ci-bot", "role": "smart-account-user"})).await;
    let rotated = h.admin("POST", &format!("{CLIENTS}/ci-bot/rotate-secret"), None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(rotated.body["client_id"], id.as_str(), "the client ID stays");
    let new_secret = rotated.body["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    assert!(!works(&h, &token).await);
    assert!(h.login(&id, &old_secret).await.is_none());
    assert!(h.login(&id, new_secret).await.is_some());
    let listed = h.admin("GET", CLIENTS, None).await.body.to_string();
    assert!(!listed.contains(new_secret), "a secret is shown once");

    // A user changes its own password; another user may not.
    for name in ["bob", "eve"] {
        let body =
            json!({"username": name, "role": "smart-account-user", "password": format!("{name}'s first password")});
        assert_eq!(h.admin("POST", USERS, Some(body)).await.status, 201);
    }
    let password = |user: &'static str, password: &'static str| {
        let h = &h;
        async move {
            let (status, v) =
                token_form(h, &[("grant_type", "password"), ("username", user), ("password", password)]).await;
            (status == 200).then(|| v["access_token"].as_str().unwrap().to_string())
        }
    };
    let bob = password("bob@example.com", "bob's first password").await.unwrap();
    let eve = password("eve@example.com", "eve's first password").await.unwrap();
    let change = Some(json!({"password": "eve takes over bob"}));
    let refused = h.call(&eve, "PATCH", &format!("{USERS}/bob"), change).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let short = h.call(&bob, "PATCH", &format!("{USERS}/bob"), Some(json!({"password": "short"}))).await;
    assert_eq!((short.status, short.body["error"]["field"].as_str()), (400, Some("password")));
    assert!(works(&h, &bob).await, "the refusals changed nothing");
    let changed =
        h.call(&bob, "PATCH", &format!("{USERS}/bob"), Some(json!({"password": "bob's second password"}))).await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert!(!works(&h, &bob).await);
    assert!(password("bob@example.com", "bob's first password").await.is_none());
    assert!(password("bob@example.com", "bob's second password").await.is_some());

    // Disabled and deleted users are refused alike; events keep the name.
    assert_eq!(h.admin("PATCH", &format!("{USERS}/eve"), Some(json!({"disabled": true}))).await.status, 200);
    assert!(!works(&h, &eve).await);
    assert!(password("eve@example.com", "eve's first password").await.is_none());
    assert_eq!(h.admin("DELETE", &format!("{USERS}/eve"), None).await.status, 200);
    let kinds = event_kinds(&h).await;
    for kind in ["api-client.secret-rotated", "user.password-changed", "user.disabled", "user.deleted"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn live_access_tokens_are_listed_by_prefix_and_revoked_at_once() {
    let h = Harness::new().await;
    account(&h).await;
    let (_, _, first) = h.client("example.com", json!({"name": "one", "role": "smart-account-admin"})).await;
    let (_, _, second) = h.client("example.com", json!({"name": "two", "role": "smart-account-user"})).await;
    let listed = h.call(&first, "GET", "/api/v1/accounts/example.com/access-tokens", None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let tokens = listed.body["access_tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    let text = listed.body.to_string();
    assert!(!text.contains(&first) && !text.contains(&second), "only prefixes are listed");
    let of_two = tokens.iter().find(|t| second.starts_with(t["prefix"].as_str().unwrap())).unwrap();

    // A smart-account user may not end someone else's token, and learns nothing of it.
    let refused = h.call(&second, "POST", "/api/v1/access-tokens/revoke", Some(json!({"id": tokens[0]["id"]}))).await;
    assert_eq!(refused.status, 404);
    assert!(works(&h, &first).await);
    let bad = h.call(&first, "POST", "/api/v1/access-tokens/revoke", Some(json!({}))).await;
    assert_eq!((bad.status, bad.code()), (400, "INVALID_INPUT"));

    // The admin ends two's token by its listed id; two's next request is refused.
    let revoked = h.call(&first, "POST", "/api/v1/access-tokens/revoke", Some(json!({"id": of_two["id"]}))).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert!(!works(&h, &second).await);
    // Anyone ends its own token by its value (logging out).
    let own = h.call(&first, "POST", "/api/v1/access-tokens/revoke", Some(json!({"token": first}))).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert!(!works(&h, &first).await);
    assert!(event_kinds(&h).await.iter().any(|k| k == "api-client.token-revoked"));

    let openapi = h.call("", "GET", "/api/v1/openapi.json", None).await.body;
    for (path, method) in [
        ("/api/v1/accounts/{domain}/users/{name}", "patch"),
        ("/api/v1/accounts/{domain}/users/{name}", "delete"),
        ("/api/v1/accounts/{domain}/api-clients/{name}", "patch"),
        ("/api/v1/accounts/{domain}/api-clients/{name}", "delete"),
        ("/api/v1/accounts/{domain}/api-clients/{name}/rotate-secret", "post"),
        ("/api/v1/accounts/{domain}/access-tokens", "get"),
        ("/api/v1/access-tokens/revoke", "post"),
    ] {
        assert!(openapi["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
}

#[tokio::test]
async fn registration_tokens_are_stored_as_hashes_shown_once_and_listed_by_prefix() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 2)]).await;
    let pool = "/api/v1/accounts/example.com/virtual-accounts/Default/tokens";
    let listed = h.admin("GET", pool, None).await;
    let row = &listed.body["tokens"][0];
    assert!(row.get("token").is_none(), "{row}");
    let prefix = row["prefix"].as_str().unwrap();
    assert_eq!(prefix.len(), 12);
    assert!(token.starts_with(prefix));
    let legacy = "/services/api/smart-accounts-and-licensing/v1/accounts/example.com/virtual-accounts/Default/tokens";
    let original = h.admin("GET", legacy, None).await;
    assert_eq!(original.body["tokens"][0]["token"], format!("{prefix}…"));

    // The token still registers a device; neither the database nor its journal holds it.
    h.register("FCH1", &token).await;
    for file in ["smartlic.db", "smartlic.db-wal"] {
        let bytes = std::fs::read(h.dir.path().join(file)).unwrap_or_default();
        let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
        assert!(!found, "{file} holds the registration token");
    }
    // Revoked by its listed prefix.
    let revoked = h.admin("POST", &format!("{pool}/revoke"), Some(json!({"token": format!("{prefix}…")}))).await;
    assert_eq!((revoked.status, revoked.body["status"].as_str()), (200, Some("REVOKED")), "{:?}", revoked.body);
}

#[tokio::test]
async fn the_database_files_and_the_ca_key_are_readable_by_their_owner_only() {
    let h = Harness::new().await;
    account(&h).await;
    if h.database.url.is_some() {
        // On PostgreSQL the CA key is sealed in the database: no copy in the data directory.
        assert!(!h.dir.path().join("ca-key.pem").exists());
        return;
    }
    for file in ["smartlic.db", "smartlic.db-wal", "smartlic.db-shm", "ca-key.pem"] {
        let mode = std::fs::metadata(h.dir.path().join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
}
