//! The portal's searches and usage history against a real SQLite file: the trigram indexes
//! follow every change of an instance or the log, the answers stay bounded on a large pool,
//! and old usage days are dropped.

use crate::common;
use smartlic_core::Timestamp;
use smartlic_store::*;
use std::collections::BTreeMap;

const T0: Timestamp = Timestamp(1_800_000_000_000);

async fn open() -> (tempfile::TempDir, SqliteStore, VirtualAccount) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("search.db")).await.unwrap();
    let pool = pool_in(&store).await;
    (dir, store, pool)
}

/// The default pool of a new account, with the token `register` uses.
async fn pool_in(store: &(impl Store + ?Sized)) -> VirtualAccount {
    let account = store.create_account("example.com", "Example", "op", T0).await.unwrap();
    let pool = store.virtual_account(account.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
    common::token_in(store, pool.id, "token-hash", None, T0).await;
    pool
}

async fn register(store: &(impl Store + ?Sized), id: &str, sn: &str, hostname: &str) {
    let new = NewInstance {
        id: id.into(),
        token_hash: "token-hash".into(),
        udi_pid: "C9300-48P".into(),
        udi_sn: sn.into(),
        hostname: hostname.into(),
        force: false,
        certificate: CertificateFacts {
            serial: sn.into(),
            expires_at: T0.plus_days(365),
            key_algorithm: "ed25519".into(),
            public_key: format!("key-of-{id}"),
        },
        evaluation_used_ms: None,
    };
    store.register_instance(new, T0).await.map_err(|e| e.to_string()).unwrap();
}

/// The hostnames a search of `text` lists (first page of 50), and the count it answers.
async fn found(store: &(impl Store + ?Sized), pool: i64, text: &str) -> (Vec<String>, i64) {
    let (page, total) = store.search_instances(pool, text, 0, 50).await.unwrap();
    (page.into_iter().map(|i| i.hostname).collect(), total)
}

#[tokio::test]
async fn the_instance_index_follows_hostname_changes_moves_and_removals() {
    for (backend, store, _dir) in crate::backends::each_backend().await {
        let store = store.as_ref();
        let pool = pool_in(store).await;
        eprintln!("on {backend}");
        register(store, "id-1", "FCW0001", "core-sw1").await;
        register(store, "id-2", "FCW0002", "Edge_100%").await;
        assert_eq!(found(store, pool.id, "CORE-").await, (vec!["core-sw1".into()], 1), "case ignored");
        assert_eq!(found(store, pool.id, "fcw000").await.1, 2, "by serial");
        assert_eq!(found(store, pool.id, "_100%").await.1, 1, "% and _ are plain characters");
        assert_eq!(found(store, pool.id, "core_").await.1, 0, "_ is not a wildcard");
        assert_eq!(found(store, pool.id, "d-2").await.1, 1, "by id");
        assert_eq!(found(store, pool.id, "\"sw").await.1, 0, "a quote is a plain character too");

        let report = UsageReport {
            instance_id: "id-1".into(),
            usage: BTreeMap::new(),
            hostname: Some("renamed-sw".into()),
            nonce: "n1".into(),
            nonce_expires_at: T0.plus_days(1),
        };
        store.report_usage(report, T0).await.unwrap();
        assert_eq!(found(store, pool.id, "core-").await.1, 0, "the old name is forgotten");
        assert_eq!(found(store, pool.id, "named").await, (vec!["renamed-sw".into()], 1));

        let account = store.account("example.com").await.unwrap().unwrap();
        let lab = store.create_virtual_account(&account, "Lab", "", "op", T0).await.unwrap();
        store.move_instance("id-1", lab.id, "op", T0).await.unwrap();
        assert_eq!(found(store, pool.id, "named").await.1, 0, "moved away");
        assert_eq!(found(store, lab.id, "named").await.1, 1, "found in its new pool");

        store.remove_instance("id-1", "removed", "op", T0).await.unwrap();
        assert_eq!(found(store, lab.id, "named").await.1, 0, "removed");
        assert_eq!(found(store, pool.id, "edge").await.1, 1, "the other one stays");
    }
}

/// A database of the second schema holding `count` instances of pool 1 and an event for each,
/// migrated on open: the indexes are filled from the rows already there.
async fn migrated(dir: &tempfile::TempDir, count: usize) -> SqliteStore {
    let path = dir.path().join("v2.db");
    common::database_of_schema_two(
        &path,
        &format!(
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < {count})
             INSERT INTO instances (id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at,
                 last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled,
                 usage_released)
             SELECT 'id-' || x, 1, 'C9300', printf('SN%05d', x), 'switch-' || x, 0, 0, x, 0, 'ed25519', 'k', 0, 0 FROM n;
             INSERT INTO events (at, actor, kind, account_id, virtual_account_id, object, detail)
             SELECT x, 'op', 'instance.registered', 1, 1, id, 'registered ' || udi_sn
             FROM (SELECT rowid - 1 AS x, id, udi_sn FROM instances);"
        ),
    );
    SqliteStore::open(&path).await.unwrap()
}

#[tokio::test]
async fn searches_of_a_large_pool_stay_bounded_and_the_page_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let count = 6_000;
    let store = migrated(&dir, count).await;

    let (page, total) = found(&store, 1, "switch-").await;
    assert_eq!(total, INSTANCE_MATCHES_LISTED + 1, "more than the listed matches: the cap plus one");
    assert_eq!(page.len(), 50);
    assert_eq!(found(&store, 1, "switch-4242").await, (vec!["switch-4242".into()], 1), "indexed on migration");
    let (last, _) = store.search_instances(1, "switch-", 990, 50).await.unwrap();
    assert_eq!(last.len(), 10, "paging ends at the listed matches");

    // Two characters: the first SHORT_SEARCH_INSTANCES instances (by serial here) only.
    let window = usize::try_from(SHORT_SEARCH_INSTANCES).unwrap();
    let expected = (0..window).filter(|n| format!("SN{n:05}switch-{n}id-{n}").to_lowercase().contains("99")).count();
    assert_eq!(found(&store, 1, "99").await.1, i64::try_from(expected).unwrap());
    assert_eq!(found(&store, 1, "59").await.0.first().map(String::as_str), Some("switch-59"), "in listing order");
    assert_eq!(found(&store, 1, "5999").await.1, 1, "four characters: every instance");
    assert_eq!(found(&store, 1, "").await.1, i64::try_from(count).unwrap(), "no text: every instance counted");

    let query = |text: &str| EventQuery { account_id: 1, text: text.into(), limit: 200, ..Default::default() };
    let hits = store.search_events(query("SN04242")).await.unwrap();
    assert_eq!(hits.iter().map(|e| e.object.as_str()).collect::<Vec<_>>(), ["id-4242"]);
    let newest = store.search_events(query("registered")).await.unwrap();
    assert_eq!((newest.len(), newest[0].object.as_str()), (200, "id-5999"), "newest first, at most the limit");
    let short = store.search_events(EventQuery { limit: 10_000, ..query("00") }).await.unwrap();
    let oldest_looked_at = i64::try_from(count).unwrap() - SHORT_SEARCH_EVENTS.min(i64::try_from(count).unwrap());
    assert!(short.iter().all(|e| e.at.0 >= oldest_looked_at && e.detail.contains("00")));
    store.remove_instance("id-7", "removed", "op", T0).await.unwrap();
    let listed = store.event_kinds(1).await.unwrap();
    assert_eq!(listed, ["instance.registered", "instance.removed"], "each kind once, in order");
    assert!(store.event_kinds(2).await.unwrap().is_empty());
    let kinds = EventQuery { kind: "instance.migrated".into(), ..query("registered") };
    assert!(store.search_events(kinds).await.unwrap().is_empty(), "the kind filters a text search too");
    let dated = EventQuery { from: Some(Timestamp(10)), to: Some(Timestamp(12)), ..query("regis") };
    let at: Vec<i64> = store.search_events(dated).await.unwrap().iter().map(|e| e.at.0).collect();
    assert_eq!(at, [11, 10], "from included, to excluded");
}

#[tokio::test]
async fn usage_days_older_than_the_retention_are_pruned() {
    let (_dir, store, pool) = open().await;
    let day = |d: i64| UsageDay {
        virtual_account_id: pool.id,
        tag: "ACI Advantage".into(),
        day: T0.plus_days(d),
        in_use: d,
        purchased: 10,
    };
    store.record_usage_days((0..5).map(day).collect()).await.unwrap();
    // Two years and two days later, with a retention of two years, the first two days go.
    let now = T0.plus_days(731 + 1);
    assert_eq!(store.prune_usage_history(now.plus_days(-730)).await.unwrap(), 2);
    let kept: Vec<i64> = store.usage_history(pool.id, Timestamp(0)).await.unwrap().iter().map(|d| d.in_use).collect();
    assert_eq!(kept, [2, 3, 4]);
    assert_eq!(store.prune_usage_history(now.plus_days(-730)).await.unwrap(), 0, "nothing more to drop");
}

/// The private PostgreSQL folds letters as Debian's default cluster does (C.UTF-8), so its
/// `lower()` turns "É" into "é": the text searched must be folded the same way, or a value
/// named in its own case would never be found.
#[tokio::test]
async fn a_value_with_non_ascii_letters_is_found_in_its_own_case_on_every_backend() {
    for (backend, store, _dir) in crate::backends::each_backend().await {
        let pool = pool_in(store.as_ref()).await;
        register(store.as_ref(), "id-1", "FCW0001", "ÉCOLE-sw1").await;
        for text in ["ÉCOLE-SW", "ÉC", "École"] {
            let (page, total) = store.search_instances(pool.id, text, 0, 50).await.unwrap();
            assert_eq!((page.len(), total), (1, 1), "{backend}: {text}");
        }
        let query = |text: &str| EventQuery {
            account_id: pool.account_id,
            text: text.into(),
            kind: String::new(),
            from: None,
            to: None,
            pools: None,
            limit: 10,
        };
        store
            .record_event(NewEvent {
                at: T0,
                actor: "op".into(),
                kind: "note".into(),
                account_id: Some(pool.account_id),
                virtual_account_id: None,
                object: "ÉCOLE-sw1".into(),
                detail: String::new(),
            })
            .await
            .unwrap();
        for text in ["ÉCOLE-SW", "ÉC"] {
            assert_eq!(store.search_events(query(text)).await.unwrap().len(), 1, "{backend}: {text}");
        }
    }
}
