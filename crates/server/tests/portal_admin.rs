//! The portal's administration actions over real HTTPS (issue 14): users and API clients
//! disabled, enabled, deleted, a client's new secret, a user's password, virtual accounts
//! added and deleted, licenses transferred; each with the API's checks and messages.

use crate::common;

use common::portal::{portal_user, signed_in, Browser, PASSWORD};
use common::{shown, Harness};
use serde_json::json;

const ADMIN: &str = "/portal/acme.example/Default/admin";
const LICENSES: &str = "/portal/acme.example/Default/licenses";
const TAG: &str = "C9500 Network Advantage";

/// Sends the form of `action` on a principal from the Administration page.
async fn act(b: &Browser, what: &str, action: &str, fields: &[(&str, &str)]) -> common::portal::Page {
    b.submit(ADMIN, &format!("{ADMIN}/{what}/{action}"), fields).await
}

async fn signs_in(h: &Harness, login: &str, password: &str) -> u16 {
    Browser::new(h).sign_in(login, password).await.status
}

#[tokio::test]
async fn users_are_disabled_enabled_given_a_password_and_deleted_from_the_page() {
    let (h, b, _) = signed_in().await;
    let bob = portal_user(&h, "acme.example", "bob", "smart-account-user", None).await;
    let page = b.get(ADMIN).await;
    assert!(page.body.contains(r#"action="/portal/acme.example/Default/admin/users/bob/disable""#), "{}", page.body);

    let done = act(&b, "users/bob", "disable", &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("User bob@acme.example disabled."), "{}", done.body);
    let refused = Browser::new(&h).sign_in(&bob, PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("the user 'bob@acme.example' is disabled"), "{}", refused.body);
    assert_eq!(act(&b, "users/bob", "enable", &[]).await.status, 200);
    assert_eq!(signs_in(&h, &bob, PASSWORD).await, 303, "enabled again");

    let short = act(&b, "users/bob", "password", &[("password", "short")]).await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("must be at least 12 characters"), "{}", short.body);
    assert_eq!(signs_in(&h, &bob, PASSWORD).await, 303, "a refused password changes nothing");
    let set = act(&b, "users/bob", "password", &[("password", "bobs-new-password")]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(signs_in(&h, &bob, PASSWORD).await, 401, "the old password no longer works");
    assert_eq!(signs_in(&h, &bob, "bobs-new-password").await, 303);

    let unknown = act(&b, "users/bob", "promote", &[]).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("there is no action 'promote' on users"), "{}", unknown.body);
    let forged = b.post(&format!("{ADMIN}/users/bob/delete"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403, "no session CSRF token, no deletion");
    let deleted = act(&b, "users/bob", "delete", &[]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body.contains("User bob@acme.example deleted."));
    let users = h.admin("GET", "/api/v1/accounts/acme.example/users", None).await;
    assert!(!users.body.to_string().contains("bob@acme.example"), "{:?}", users.body);
    assert_eq!(act(&b, "users/bob", "delete", &[]).await.status, 404, "gone");
}

#[tokio::test]
async fn api_clients_get_a_new_secret_shown_once_and_are_disabled_and_deleted() {
    let (h, b, _) = signed_in().await;
    let (id, secret, _) = h.client("acme.example", json!({"name": "ci", "role": "smart-account-user"})).await;

    let rotated = act(&b, "api-clients/ci", "rotate-secret", &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.shown_once();
    assert_ne!(new_secret, secret);
    assert!(h.login(&id, &secret).await.is_none(), "the old secret no longer works");
    assert!(h.login(&id, &new_secret).await.is_some());
    assert!(!b.get(ADMIN).await.body.contains(&new_secret), "shown once");

    assert_eq!(act(&b, "api-clients/ci", "disable", &[]).await.status, 200);
    assert!(h.login(&id, &new_secret).await.is_none(), "disabled");
    assert_eq!(act(&b, "api-clients/ci", "enable", &[]).await.status, 200);
    assert!(h.login(&id, &new_secret).await.is_some());
    assert_eq!(act(&b, "api-clients/ci", "password", &[]).await.status, 404, "clients have no password");
    let deleted = act(&b, "api-clients/ci", "delete", &[]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(h.login(&id, &new_secret).await.is_none(), "deleted");
}

#[tokio::test]
async fn a_user_without_the_role_is_refused_as_the_api_refuses() {
    let (h, b, alice) = signed_in().await;
    let bob = portal_user(&h, "acme.example", "bob", "smart-account-user", None).await;
    let viewer = Browser::new(&h);
    viewer.sign_in(&bob, PASSWORD).await;
    let page = viewer.get(ADMIN).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("/disable\""), "no action offered: {}", page.body);
    let refused = viewer.submit(ADMIN, &format!("{ADMIN}/users/alice/disable"), &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(signs_in(&h, &alice, PASSWORD).await, 303, "alice still signs in");
    let refused = viewer.submit(ADMIN, &format!("{ADMIN}/virtual-accounts"), &[("name", "Lab")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    drop(b);
}

#[tokio::test]
async fn virtual_accounts_are_added_fed_by_transfers_and_deleted_when_empty() {
    let (h, b, _) = signed_in().await;
    let added =
        b.submit(ADMIN, &format!("{ADMIN}/virtual-accounts"), &[("name", "Lab"), ("description", "tests")]).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains("Virtual account Lab added."));
    let taken = b.submit(ADMIN, &format!("{ADMIN}/virtual-accounts"), &[("name", "Lab")]).await;
    assert_eq!(taken.status, 409, "{}", taken.body);

    let transfer = |count: &'static str| {
        let b = &b;
        async move {
            b.submit(
                LICENSES,
                &format!("{LICENSES}/transfer"),
                &[("tag", TAG), ("count", count), ("to", "Lab"), ("kind", "")],
            )
            .await
        }
    };
    let page = b.get(LICENSES).await;
    assert!(page.body.contains(r#"<option value="Lab">Lab</option>"#), "{}", page.body);
    let too_many = transfer("11").await;
    assert_eq!(too_many.status, 409, "{}", too_many.body);
    assert!(too_many.body.contains("only 10 of"), "{}", too_many.body);
    let bad = transfer("four").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Quantity: 'four' is not a whole number"), "{}", bad.body);
    assert_eq!(shown(&h.licenses("acme.example", "Lab").await, TAG), "", "nothing moved");
    let moved = transfer("4").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(moved.body.contains("4 of"), "{}", moved.body);
    assert_eq!(shown(&h.licenses("acme.example", "Lab").await, TAG), "4");
    assert_eq!(shown(&h.licenses("acme.example", "Default").await, TAG), "6");

    let held = b.submit(ADMIN, &format!("{ADMIN}/virtual-accounts/Lab/delete"), &[]).await;
    assert_eq!(held.status, 409, "a pool holding licenses stays: {}", held.body);
    let lab = "/portal/acme.example/Lab/licenses";
    let back = b.submit(lab, &format!("{lab}/transfer"), &[("tag", TAG), ("count", "4"), ("to", "Default")]).await;
    assert_eq!(back.status, 200, "{}", back.body);
    let gone = b.submit(ADMIN, &format!("{ADMIN}/virtual-accounts/Lab/delete"), &[]).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(gone.body.contains("Virtual account Lab deleted."));
    assert_eq!(h.admin("GET", "/api/v1/accounts/acme.example/virtual-accounts/Lab/licenses", None).await.status, 404);
    let default = b.submit(ADMIN, &format!("{ADMIN}/virtual-accounts/Default/delete"), &[]).await;
    assert_eq!(default.status, 409, "the default pool stays: {}", default.body);
}

/// The account's settings are the operator's, in the portal as in the API: a smart-account
/// admin neither sees nor can post them, the operator changes them and the API shows it.
#[tokio::test]
async fn only_the_operator_changes_the_account_settings() {
    let (h, alice, _) = signed_in().await;
    let universal = || async {
        let a = h.admin("GET", "/api/v1/accounts/acme.example", None).await;
        a.body["universal_reservation"].as_bool().unwrap()
    };
    assert!(!alice.get(ADMIN).await.body.contains("Account settings"));
    let refused = alice
        .post(
            &format!("{ADMIN}/settings"),
            &[("csrf", &alice.get(ADMIN).await.csrf()), ("universal_reservation", "true")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!universal().await, "a refused change changes nothing");

    let operator = Browser::new(&h);
    assert_eq!(operator.sign_in("admin", common::SECRET).await.status, 303);
    let page = operator.get(ADMIN).await;
    assert!(page.body.contains(r#"<option value="false" selected>forbidden</option>"#), "{}", page.body);
    let saved = operator.submit(ADMIN, &format!("{ADMIN}/settings"), &[("universal_reservation", "true")]).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved.body.contains("Account settings saved.")
            && saved.body.contains(r#"<option value="true" selected>allowed</option>"#)
    );
    assert!(universal().await);
    let bad = operator.submit(ADMIN, &format!("{ADMIN}/settings"), &[("universal_reservation", "maybe")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(universal().await, "a malformed form changes nothing");
}
