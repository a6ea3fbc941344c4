//! Credentials in the store (on every backend, see `backends`; the files on SQLite): per-account names, the life cycle of
//! users and API clients (disable, rotate, delete revoke access tokens at once), registration
//! tokens kept as hashes, and database files readable by their owner only.

use smartlic_core::{Role, Timestamp};
use smartlic_store::*;

use crate::backends::each_backend;
use crate::common;
use std::os::unix::fs::PermissionsExt;

const T0: Timestamp = Timestamp(1_800_000_000_000);
const LATER: Timestamp = Timestamp(1_800_000_600_000);

fn client(name: &str, login: &str, account: &Account) -> NewPrincipal {
    NewPrincipal {
        kind: PrincipalKind::ApiClient,
        name: name.into(),
        login: login.into(),
        secret_hash: Some("hash".into()),
        role: Role::SmartAccountAdmin,
        account_id: Some(account.id),
        virtual_account_id: None,
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn names_are_unique_per_smart_account_and_logins_across_the_manager() {
    for (backend, store, _dir) in each_backend().await {
        eprintln!("on {backend}");
        let a = store.create_account("a.com", "A", "op", T0).await.unwrap();
        let b = store.create_account("b.com", "B", "op", T0).await.unwrap();
        store.create_principal(client("ci-bot", "client-1", &a), "op", T0).await.unwrap();
        // The same name in another account is another principal.
        store.create_principal(client("ci-bot", "client-2", &b), "op", T0).await.unwrap();
        let twice = store.create_principal(client("ci-bot", "client-3", &a), "op", T0).await;
        assert!(matches!(twice, Err(StoreError::Conflict(m)) if m.contains("'ci-bot' exists already")));
        let login_taken = store.create_principal(client("other", "client-1", &b), "op", T0).await;
        assert!(matches!(login_taken, Err(StoreError::Conflict(m)) if m.contains("login 'client-1'")));
        assert_eq!(store.principal("client-2").await.unwrap().unwrap().account_id, Some(b.id));
        let in_b = store.principal_named(b.id, PrincipalKind::ApiClient, "ci-bot").await.unwrap().unwrap();
        assert_eq!(in_b.login, "client-2");
        assert_eq!(store.principals(Some(a.id)).await.unwrap().len(), 1, "the refusals created nothing");
    }
}

#[tokio::test]
async fn disabling_rotating_and_deleting_end_access_tokens_at_once() {
    for (backend, store, _dir) in each_backend().await {
        eprintln!("on {backend}");
        let a = store.create_account("a.com", "A", "op", T0).await.unwrap();
        let p = store.create_principal(client("ci-bot", "client-1", &a), "op", T0).await.unwrap();
        let live = |hash: &'static str| {
            let store = &store;
            async move { store.principal_for_access_token(hash, T0).await.unwrap().is_some() }
        };
        let expires = Timestamp(T0.0 + 3_600_000);

        store.insert_access_token("h1", "abcdefgh", p.id, T0, expires).await.unwrap();
        assert!(live("h1").await);
        let disabled = store.set_principal_disabled(p.id, true, "op", T0).await.unwrap();
        assert_eq!(disabled.disabled_at, Some(T0));
        assert!(!live("h1").await);
        assert!(matches!(store.set_principal_disabled(p.id, true, "op", T0).await, Err(StoreError::Conflict(_))));
        store.insert_access_token("h2", "bcdefghi", p.id, T0, expires).await.unwrap();
        assert!(!live("h2").await, "a disabled principal's token is refused");
        store.set_principal_disabled(p.id, false, "op", T0).await.unwrap();
        assert!(!live("h1").await, "enabling does not bring revoked tokens back");

        store.insert_access_token("h3", "cdefghij", p.id, T0, expires).await.unwrap();
        assert!(live("h3").await);
        let rotated = store.set_principal_secret(p.id, "new-hash", "op", T0).await.unwrap();
        assert_eq!(rotated.secret_hash.as_deref(), Some("new-hash"));
        assert!(!live("h3").await);

        store.insert_access_token("h4", "defghijk", p.id, T0, expires).await.unwrap();
        let listed = store.access_tokens(AccessTokenFilter::Account(a.id), T0).await.unwrap();
        assert_eq!(listed.iter().map(|t| t.prefix.as_str()).collect::<Vec<_>>(), ["defghijk"]);
        let by_hash = store.access_tokens(AccessTokenFilter::Hash("h4".into()), T0).await.unwrap();
        assert_eq!(by_hash, listed);
        store.revoke_access_token(listed[0].id, "op", LATER).await.unwrap();
        assert!(!live("h4").await);
        let again = store.revoke_access_token(listed[0].id, "op", LATER).await;
        assert!(matches!(again, Err(StoreError::NotFound(_))));

        store.insert_access_token("h5", "efghijkl", p.id, T0, expires).await.unwrap();
        store.delete_principal(p.id, "op", LATER).await.unwrap();
        assert!(!live("h5").await);
        assert!(store.principal("client-1").await.unwrap().is_none());
        let kinds: Vec<String> = store.events(Some(a.id), 100).await.unwrap().into_iter().map(|e| e.kind).collect();
        for kind in [
            "api-client.created",
            "api-client.disabled",
            "api-client.enabled",
            "api-client.secret-rotated",
            "api-client.token-revoked",
            "api-client.deleted",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
        }
        let deleted = store.events(Some(a.id), 1).await.unwrap().remove(0);
        assert_eq!((deleted.object.as_str(), deleted.kind.as_str()), ("ci-bot", "api-client.deleted"));
    }
}

#[tokio::test]
async fn a_database_of_schema_two_is_migrated_keeping_logins_and_dropping_token_texts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    common::database_of_schema_two(
        &path,
        "INSERT INTO principals (id, kind, name, secret_hash, role, account_id, virtual_account_id, created_at)
                 VALUES (1, 'api-client', 'admin', 'h', 'operator', NULL, NULL, 0),
                        (2, 'api-client', 'ci-bot', 'h', 'smart-account-admin', 1, NULL, 0),
                        (3, 'user', 'bob', 'h', 'smart-account-user', 1, NULL, 0);
             INSERT INTO access_tokens (token_hash, principal_id, expires_at) VALUES ('live', 2, 1900000000000);
             INSERT INTO registration_tokens (id, virtual_account_id, token, token_hash, description, created_at,
                 expires_at, max_uses, uses, export_controlled, revoked_at, created_by)
                 VALUES (1, 1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'reg-hash', '', 0, 1900000000000, NULL, 0, FALSE, NULL, 'op');",
    );
    let store = SqliteStore::open(&path).await.unwrap();
    // Clients keep their name as client ID, the operator its name; users log in as name@domain.
    assert_eq!(store.principal("admin").await.unwrap().unwrap().role, Role::Operator);
    assert_eq!(store.principal("ci-bot").await.unwrap().unwrap().id, 2);
    assert_eq!(store.principal("bob@old.com").await.unwrap().unwrap().id, 3);
    assert_eq!(store.principal_for_access_token("live", T0).await.unwrap().unwrap().id, 2);
    assert_eq!(store.tokens(1).await.unwrap()[0].prefix, "ABCDEFGHIJKL");
    drop(store);
    let db = rusqlite::Connection::open(&path).unwrap();
    let texts: i64 =
        db.query_row("SELECT COUNT(*) FROM registration_tokens WHERE prefix LIKE '%XYZ%'", [], |r| r.get(0)).unwrap();
    assert_eq!(texts, 0, "no registration token text is left in the database");
}

#[tokio::test]
async fn the_database_and_its_journal_files_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.create_account("a.com", "A", "op", T0).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("fresh.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // A file an earlier start left readable by others is tightened.
    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    SqliteStore::open(&old).await.unwrap();
    assert_eq!(mode(&old), 0o600);
}
