//! The web portal over real HTTPS (issue 14): sign-in and sessions, CSRF, the API's role
//! checks, escaping of what devices send, the pages' security headers and CSV downloads.

use crate::common;

use common::portal::{portal_user, signed_in, Browser, GENERAL, PASSWORD};
use common::Harness;
use serde_json::json;
use smartlic_core::Timestamp;
use smartlic_proto::wire::Udi;
use smartlic_proto::KeyAlgorithm;

async fn register(h: &Harness, token: &str, pid: &str, sn: &str, hostname: &str) {
    let udi = Udi { pid: pid.into(), sn: sn.into() };
    h.devices.register(&udi, Some(hostname), token, false, KeyAlgorithm::Ed25519, h.now_ms()).await.expect("registers");
}

#[tokio::test]
async fn signing_in_opens_the_default_pool_and_signing_out_ends_the_session() {
    let h = Harness::new().await;
    h.account_with("acme.example", &[]).await;
    let login = portal_user(&h, "acme.example", "alice", "smart-account-admin", None).await;
    let b = Browser::new(&h);

    let page = b.get(GENERAL).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/signin")), "no session: the sign-in form");
    let wrong = b.sign_in(&login, "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong login or password"), "{}", wrong.body);
    let unknown = b.sign_in("nobody@acme.example", PASSWORD).await;
    assert_eq!(unknown.status, 401, "an unknown login hears the same");
    assert!(unknown.body.contains("wrong login or password"));
    assert!(b.session_cookie().is_none());

    let ok = b.sign_in(&login, PASSWORD).await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")));
    let home = b.get("/").await;
    assert_eq!(home.location.as_deref(), Some(GENERAL));
    let page = b.get(GENERAL).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Inventory: General") && page.body.contains("alice@acme.example"));

    let session = b.session_cookie().expect("a session cookie");
    let out = b.submit(GENERAL, "/signout", &[]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/signin")));
    assert!(b.session_cookie().is_none(), "the cookie is deleted");
    b.set_session_cookie(&session);
    assert_eq!(b.get(GENERAL).await.location.as_deref(), Some("/signin"), "the server forgot the session");
}

#[tokio::test]
async fn a_session_ends_after_half_an_hour_idle_or_when_the_password_changes() {
    let (h, b, _) = signed_in().await;
    h.set_clock("2030-01-01T00:00:00Z").await;
    assert_eq!(b.get(GENERAL).await.location.as_deref(), Some("/signin"), "idle past 30 minutes");

    b.sign_in("alice@acme.example", PASSWORD).await;
    assert_eq!(b.get(GENERAL).await.status, 200);
    let changed = h
        .admin("PATCH", "/api/v1/accounts/acme.example/users/alice", Some(json!({"password": "another-password-1"})))
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(b.get(GENERAL).await.location.as_deref(), Some("/signin"), "a new password ends old sessions");
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_are_refused_and_change_nothing() {
    let (h, b, _) = signed_in().await;
    let tokens = "/api/v1/accounts/acme.example/virtual-accounts/Default/tokens";
    let before = h.admin("GET", tokens, None).await.body["tokens"].as_array().unwrap().len();

    for csrf in ["", "forged-token-value"] {
        let refused = b.post(GENERAL, &[("csrf", csrf), ("description", "forged")]).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains("CSRF token is missing or out of date"), "{}", refused.body);
    }
    assert_eq!(h.admin("GET", tokens, None).await.body["tokens"].as_array().unwrap().len(), before);

    // The sign-in form is protected by its own double-submit cookie.
    let other = Browser::new(&h);
    let refused =
        other.post("/signin", &[("csrf", "x"), ("login", "alice@acme.example"), ("password", PASSWORD)]).await;
    assert_eq!(refused.status, 403);
    assert!(other.session_cookie().is_none());
}

#[tokio::test]
async fn a_token_created_on_the_page_registers_a_device_that_the_page_then_lists() {
    let (h, b, _) = signed_in().await;
    let made =
        b.submit(GENERAL, GENERAL, &[("description", "lab switches"), ("expires_days", "7"), ("max_uses", "2")]).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let token = made.shown_once();
    assert!(made.body.contains("lab switches") && made.body.contains("0 of 2"), "{}", made.body);
    assert!(made.body.contains("Revoke token "), "an active token can be revoked from its row");
    assert!(!b.get(GENERAL).await.body.contains(&token), "shown once only");

    register(&h, &token, "C9500-32C", "FCW0001", "core-sw1").await;
    register(&h, &token, "C9300-48P", "FCW0002", "edge-sw2").await;
    let list = b.get("/portal/acme.example/Default/instances").await;
    assert!(list.body.contains("core-sw1") && list.body.contains("edge-sw2"), "{}", list.body);
    let found = b.get("/portal/acme.example/Default/instances?q=fcw0002").await;
    assert!(found.body.contains("edge-sw2") && !found.body.contains("core-sw1"), "search by serial, any case");
    let found = b.get("/portal/acme.example/Default/instances?q=C9500").await;
    assert!(found.body.contains("core-sw1") && !found.body.contains("edge-sw2"), "search by PID");
    assert!(b.get(GENERAL).await.body.contains("2 of 2"), "uses shown");

    let bad = b.submit(GENERAL, GENERAL, &[("expires_days", "0")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Expire after: must be between 1 and 365 days, got 0"), "{}", bad.body);
    let bad = b.submit(GENERAL, GENERAL, &[("max_uses", "many")]).await;
    assert!(bad.body.contains("Maximum number of uses: 'many' is not a whole number"), "{}", bad.body);

    let prefix: String = token.chars().take(12).collect();
    let revoked = b.submit(GENERAL, &format!("{GENERAL}/revoke"), &[("token", &prefix)]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body.contains("revoked"));
    let refused = h
        .devices
        .register(
            &Udi { pid: "C9500-32C".into(), sn: "FCW0003".into() },
            None,
            &token,
            false,
            KeyAlgorithm::Ed25519,
            h.now_ms(),
        )
        .await;
    assert!(refused.is_err(), "a revoked token registers nothing");
}

#[tokio::test]
async fn a_device_hostname_is_shown_as_text_and_kept_out_of_spreadsheet_formulas() {
    let (h, b, _) = signed_in().await;
    let token = h.token("acme.example", "Default", json!({})).await;
    register(&h, &token, "C9500-32C", "FCW0666", "<script>alert(1)</script>").await;
    register(&h, &token, "=HYPERLINK(\"http://x\")", "FCW0667", "@SUM(1+1)").await;

    let list = b.get("/portal/acme.example/Default/instances").await;
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", list.body);
    assert!(!list.body.contains("<script>alert(1)"), "never as markup");
    let csp = list.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"));
    assert_eq!(list.headers["x-frame-options"], "DENY");
    assert_eq!(list.headers["x-content-type-options"], "nosniff");

    let csv = b.get("/portal/acme.example/Default/reports/instances.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.body.contains("'@SUM(1+1)") && csv.body.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{}", csv.body);
    assert!(csv.body.contains("<script>alert(1)</script>"), "CSV is not HTML: kept as sent");
}

#[tokio::test]
async fn a_role_sees_and_does_only_what_the_api_allows() {
    let h = Harness::new().await;
    h.account_with("acme.example", &[]).await;
    h.account_with("other.example", &[]).await;
    let va = "/api/v1/accounts/acme.example/virtual-accounts";
    assert_eq!(h.admin("POST", va, Some(json!({"name": "Lab"}))).await.status, 201);
    let login = portal_user(&h, "acme.example", "victor", "virtual-account-user", Some("Lab")).await;
    let b = Browser::new(&h);
    b.sign_in(&login, PASSWORD).await;
    assert_eq!(b.get("/").await.location.as_deref(), Some("/portal/acme.example/Lab/general"), "its one pool");

    let lab = b.get("/portal/acme.example/Lab/reservations").await;
    assert_eq!(lab.status, 200);
    assert!(!lab.body.contains("Reserve licenses"), "no form the API would refuse");
    assert!(!lab.body.contains(">Default<"), "the selector offers only its pool");
    let lab = "/portal/acme.example/Lab/reservations";
    let refused = b.submit(lab, lab, &[("request_code", "anything")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("may not reserve licenses in acme.example / Lab"), "{}", refused.body);
    let admin = b.get("/portal/acme.example/Lab/admin").await;
    assert!(!admin.body.contains("Add user"));
    let granted = b
        .submit(
            lab,
            "/portal/acme.example/Lab/admin/users",
            &[("name", "mallory"), ("role", "smart-account-admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(granted.status, 403, "{}", granted.body);
    let users = h.admin("GET", "/api/v1/accounts/acme.example/users", None).await;
    assert_eq!(users.body["users"].as_array().unwrap().len(), 1, "nobody was added");

    for other in ["/portal/acme.example/Default/general", "/portal/other.example/Default/licenses"] {
        let page = b.get(other).await;
        assert_eq!(page.status, 404, "{other}: {}", page.body);
    }
}

#[tokio::test]
async fn failed_sign_ins_spend_the_login_budget_of_the_token_endpoint() {
    let h = Harness::new().await;
    h.account_with("acme.example", &[]).await;
    let login = portal_user(&h, "acme.example", "alice", "smart-account-admin", None).await;
    let b = Browser::new(&h);
    let budget = smartlic_server::state::Limits::default().login_failures_per_client;
    for _ in 0..budget {
        assert_eq!(b.sign_in(&login, "wrong-password").await.status, 401);
    }
    let refused = b.sign_in(&login, PASSWORD).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(h.login(&login, PASSWORD).await.is_none(), "the API's token endpoint counts the same failures");
}

#[tokio::test]
async fn every_page_renders_for_an_admin_and_assets_are_cached_for_long() {
    let (h, b, _) = signed_in().await;
    let token = h.token("acme.example", "Default", json!({})).await;
    register(&h, &token, "C9500-32C", "FCW0001", "core-sw1").await;
    for tab in ["general", "licenses", "instances", "events", "reservations", "alerts", "reports", "admin"] {
        let page = b.get(&format!("/portal/acme.example/Default/{tab}")).await;
        assert_eq!(page.status, 200, "{tab}: {}", page.body);
        assert!(page.body.contains(r#"aria-current="page""#), "{tab}: its tab is marked");
        assert_eq!(page.headers["cache-control"], "no-store");
    }
    let events = b.get("/portal/acme.example/Default/events?type=token.created").await;
    assert!(events.body.contains("token.created") && !events.body.contains("<code>instance.registered"));
    let bad = b.get("/portal/acme.example/Default/events?from=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("from: 'yesterday' is not a date"), "{}", bad.body);

    let page = b.get(GENERAL).await;
    for asset in ["/static/htmx-", "/static/portal-"] {
        let at = page.body.find(asset).unwrap();
        let path = &page.body[at..at + page.body[at..].find('"').unwrap()];
        let file = b.get(path).await;
        assert_eq!(file.status, 200, "{path}");
        assert_eq!(file.headers["cache-control"], "public, max-age=31536000, immutable");
    }
    assert_eq!(b.get("/static/htmx.min.js").await.status, 404, "only the digest-named file");
}

#[tokio::test]
async fn the_operator_switches_between_accounts_and_api_clients_use_the_api() {
    let h = Harness::new().await;
    h.account_with("acme.example", &[]).await;
    h.account_with("other.example", &[]).await;
    let b = Browser::new(&h);
    assert_eq!(b.sign_in("admin", common::SECRET).await.status, 303);
    let page = b.get(GENERAL).await;
    assert!(page.body.contains(r#"<option value="other.example">"#), "the switcher lists every account");
    let moved = b.get("/portal/go?account=other.example&va=Default&tab=licenses").await;
    assert_eq!(moved.location.as_deref(), Some("/portal/other.example/Default/licenses"));
    let unknown = b.get("/portal/go?account=nowhere.example").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("smart account 'nowhere.example' does not exist"), "{}", unknown.body);

    let (client_id, secret, _) =
        h.client("acme.example", json!({"name": "orchestrator", "role": "smart-account-admin"})).await;
    let refused = Browser::new(&h).sign_in(&client_id, &secret).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("API clients use the REST API"), "{}", refused.body);
}

#[tokio::test]
async fn the_instance_list_pages_through_a_pool_and_searches_literally() {
    let (h, b, _) = signed_in().await;
    let token = h.token("acme.example", "Default", json!({})).await;
    for n in 0..55 {
        register(&h, &token, "C9300-48P", &format!("FOC{n:04}"), &format!("access-{n:02}")).await;
    }
    register(&h, &token, "C9500-32C", "FCW9999", "lab_100%").await;
    let list = "/portal/acme.example/Default/instances";

    let first = b.get(list).await;
    assert!(first.body.contains("56 product instances") && first.body.contains("Page 1 of 2"), "{}", first.body);
    assert_eq!(first.body.matches("<tr>").count(), 51, "a header and 50 rows");
    let second = b.get(&format!("{list}?page=1")).await;
    assert_eq!(second.body.matches("<tr>").count(), 7, "the 6 others");
    assert!(second.body.contains("Page 2 of 2") && second.body.contains(r#"rel="prev""#));
    let past = b.get(&format!("{list}?page=40")).await;
    assert!(past.body.contains("Page 2 of 2"), "past the end: the last page");

    let literal = b.get(&format!("{list}?q=_100%25")).await;
    assert!(literal.body.contains("1 product instance matching") && literal.body.contains("lab_100%"));
    let none = b.get(&format!("{list}?q=nothing-like-this")).await;
    assert!(none.body.contains("0 product instances matching"), "{}", none.body);
}

#[tokio::test]
async fn an_instance_opens_in_its_own_pool_only_and_is_moved_and_removed_from_its_page() {
    let (h, b, _) = signed_in().await;
    let token = h.token("acme.example", "Default", json!({})).await;
    register(&h, &token, "C9500-32C", "FCW0001", "core-sw1").await;
    let listed = h.admin("GET", "/api/v1/accounts/acme.example/instances", None).await;
    let id = listed.body["instances"][0]["id"].as_str().unwrap().to_string();
    let va = "/api/v1/accounts/acme.example/virtual-accounts";
    assert_eq!(h.admin("POST", va, Some(json!({"name": "Lab"}))).await.status, 201);

    let page = format!("/portal/acme.example/Default/instances/{id}");
    let details = b.get(&page).await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert!(details.body.contains("PID:C9500-32C, SN:FCW0001") && details.body.contains("Remove product instance"));
    let elsewhere = b.get(&format!("/portal/acme.example/Lab/instances/{id}")).await;
    assert_eq!(elsewhere.status, 404);
    assert!(elsewhere.body.contains("is not in virtual account 'Lab'"), "{}", elsewhere.body);

    assert!(
        details.body.contains(r#"<option value="Lab">Lab</option>"#),
        "the other pool is offered: {}",
        details.body
    );
    let nowhere = b.submit(&page, &format!("{page}/move"), &[("to", "Nowhere")]).await;
    assert_eq!(nowhere.status, 404, "{}", nowhere.body);
    assert!(nowhere.body.contains("Nowhere") && nowhere.body.contains("PID:C9500-32C"), "{}", nowhere.body);
    let moved = b.submit(&page, &format!("{page}/move"), &[("to", "Lab")]).await;
    let in_lab = format!("/portal/acme.example/Lab/instances/{id}");
    assert_eq!((moved.status, moved.location.as_deref()), (303, Some(in_lab.as_str())), "{}", moved.body);
    assert_eq!(b.get(&page).await.status, 404, "no longer in Default");
    let details = b.get(&in_lab).await;
    assert!(
        details.body.contains("<dd>Lab</dd>") && details.body.contains("Move to virtual account"),
        "{}",
        details.body
    );

    let removed = b.submit(&in_lab, &format!("{in_lab}/remove"), &[]).await;
    assert_eq!((removed.status, removed.location.as_deref()), (303, Some("/portal/acme.example/Lab/instances")));
    let listed = h.admin("GET", "/api/v1/accounts/acme.example/instances", None).await;
    assert_eq!(listed.body["instances"], json!([]), "the instance is gone");
    assert_eq!(b.get(&in_lab).await.status, 404);
}

/// Portal sessions in the manager's database (an ended one stays until the jobs drop it).
fn stored_sessions(h: &Harness) -> i64 {
    h.sql("SELECT COUNT(*) FROM portal_sessions").unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_session_survives_a_restart_and_ends_half_an_hour_after_its_last_request() {
    let (h, b, _) = signed_in().await;
    let session = b.session_cookie().expect("a session cookie");
    assert_eq!(stored_sessions(&h), 1);
    let Harness { dir, server, .. } = h;
    server.stop();
    drop(server);

    let config = common::server_config(dir.path());
    let h = Harness::start(dir, config).await;
    let b = Browser::new(&h);
    b.set_session_cookie(&session);
    let page = b.get(GENERAL).await;
    assert_eq!(page.status, 200, "the restarted manager knows the session: {}", page.body);
    assert!(page.body.contains("alice@acme.example"));

    let minutes = |m: i64| Timestamp(h.now_ms() + m * 60_000).to_rfc3339();
    h.set_clock(&minutes(29)).await;
    assert_eq!(b.get(GENERAL).await.status, 200, "29 minutes idle: still signed in");
    h.set_clock(&minutes(29)).await;
    assert_eq!(b.get(GENERAL).await.status, 200, "the last request moved the end");
    assert_eq!(stored_sessions(&h), 1);
    h.set_clock(&minutes(31)).await;
    assert_eq!(b.get(GENERAL).await.location.as_deref(), Some("/signin"), "31 minutes idle: signed out");
    assert_eq!(stored_sessions(&h), 0, "the jobs dropped the ended session");
}

#[tokio::test]
async fn usage_is_recorded_day_by_day_drawn_over_time_and_downloaded() {
    const TAG: &str = "C9500 Network Advantage";
    let h = Harness::new().await;
    h.set_clock("2031-03-01T10:00:00Z").await;
    h.account_with("acme.example", &[(TAG, 10)]).await;
    let login = portal_user(&h, "acme.example", "alice", "smart-account-admin", None).await;
    let token = h.token("acme.example", "Default", json!({})).await;
    let device = h.register("FCW0002", &token).await;
    h.devices.authorize(&device, &common::usage(&[(TAG, 3)]), h.now_ms()).await.unwrap();
    h.set_clock("2031-03-01T11:00:00Z").await;

    h.set_clock("2031-03-02T10:00:00Z").await;
    let added = h
        .admin(
            "POST",
            "/api/v1/accounts/acme.example/virtual-accounts/Default/licenses",
            Some(json!({"tag": TAG, "count": 5})),
        )
        .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    h.devices.authorize(&device, &common::usage(&[(TAG, 7)]), h.now_ms()).await.unwrap();
    h.set_clock("2031-03-02T11:00:00Z").await;
    h.set_clock("2031-03-04T10:00:00Z").await;

    let b = Browser::new(&h);
    b.sign_in(&login, PASSWORD).await;
    let page = b.get("/portal/acme.example/Default/reports").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Usage over time in Default"), "{}", page.body);
    assert_eq!(page.body.matches(r#"<polyline class="line-used""#).count(), 1, "one chart for the one tag");
    assert!(page.body.contains("7 in use") && page.body.contains("15 purchased"), "{}", page.body);
    assert!(page.body.contains("2031-03-04"), "the window ends today");

    let csv = b.get("/portal/acme.example/Default/reports/history.csv").await;
    assert_eq!(csv.status, 200);
    let days: Vec<&str> = csv.body.lines().skip(1).map(|l| l.split_once(',').unwrap().1).collect();
    assert_eq!(
        days,
        [
            format!("Default,{TAG},2031-03-01,3,10"),
            format!("Default,{TAG},2031-03-02,7,15"),
            format!("Default,{TAG},2031-03-04,7,15"),
        ],
        "a day's last value, no row for a day the jobs did not run"
    );
}
