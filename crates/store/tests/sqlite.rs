//! The store against a real SQLite file: transactions, incremental counts, refusals that
//! change nothing.

use smartlic_core::time::DAY_MS;
use smartlic_core::{LicenseKind, LicenseTerm, Timestamp};
use smartlic_store::*;
use std::collections::BTreeMap;

const T0: Timestamp = Timestamp(1_800_000_000_000);

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: SqliteStore,
    account: Account,
    pool: VirtualAccount,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let account = store.create_account("example.com", "Example", "op", T0).await.unwrap();
    let pool = store.virtual_account(account.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
    Fixture { _dir: dir, path, store, account, pool }
}

fn cert(n: u32) -> CertificateFacts {
    CertificateFacts {
        serial: format!("{n:X}"),
        expires_at: T0.plus_days(365),
        key_algorithm: "ed25519".into(),
        public_key: "AAAA".into(),
    }
}

async fn token(f: &Fixture, hash: &str, max_uses: Option<i64>) -> RegistrationToken {
    let new = NewToken {
        virtual_account_id: f.pool.id,
        token: format!("tok-{hash}"),
        token_hash: hash.into(),
        description: String::new(),
        expires_at: T0.plus_days(30),
        max_uses,
        export_controlled: false,
    };
    f.store.create_token(new, "op", T0).await.unwrap()
}

fn device(id: &str, sn: &str, token_hash: &str, force: bool) -> NewInstance {
    NewInstance {
        id: id.into(),
        token_hash: token_hash.into(),
        udi_pid: "C9500-32C".into(),
        udi_sn: sn.into(),
        hostname: "sw1".into(),
        force,
        certificate: cert(1),
    }
}

/// A usage report with a nonce never used before.
fn report(id: &str, pairs: &[(&str, i64)], at: Timestamp) -> UsageReport {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    UsageReport {
        instance_id: id.into(),
        usage: pairs.iter().map(|(t, c)| (t.to_string(), *c)).collect::<BTreeMap<_, _>>(),
        hostname: None,
        nonce: format!("nonce-{n:016}"),
        nonce_expires_at: at.plus_days(1),
    }
}

#[tokio::test]
async fn accounts_start_with_a_default_pool_and_refuse_duplicates() {
    let f = fixture().await;
    assert!(f.pool.is_default);
    let again = f.store.create_account("example.com", "Other", "op", T0).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    assert_eq!(f.store.accounts().await.unwrap().len(), 1);
    let dup = f.store.create_virtual_account(&f.account, DEFAULT_VIRTUAL_ACCOUNT, "", "op", T0).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
}

#[tokio::test]
async fn tokens_are_refused_when_used_up_revoked_expired_or_unknown() {
    let f = fixture().await;
    token(&f, "once", Some(1)).await;
    f.store.register_instance(device("i1", "A", "once", false), T0).await.unwrap();
    let used_up = f.store.register_instance(device("i2", "B", "once", false), T0).await;
    assert!(matches!(used_up, Err(RegisterRefusal::InvalidToken)));
    let unknown = f.store.register_instance(device("i2", "B", "nope", false), T0).await;
    assert!(matches!(unknown, Err(RegisterRefusal::InvalidToken)));
    let t = token(&f, "many", None).await;
    let expired = f.store.register_instance(device("i2", "B", "many", false), T0.plus_days(31)).await;
    assert!(matches!(expired, Err(RegisterRefusal::InvalidToken)));
    f.store.revoke_token(f.pool.id, &t.token, "op", T0).await.unwrap();
    let revoked = f.store.register_instance(device("i2", "B", "many", false), T0).await;
    assert!(matches!(revoked, Err(RegisterRefusal::InvalidToken)));
    // Nothing was created by the refusals.
    assert_eq!(f.store.instances(InstanceFilter::Account(f.account.id)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn same_udi_needs_force_which_replaces_the_old_instance() {
    let f = fixture().await;
    token(&f, "t", None).await;
    f.store.register_instance(device("old", "A", "t", false), T0).await.unwrap();
    f.store.report_usage(report("old", &[("ACI Essentials", 2)], T0), T0).await.unwrap();
    let refused = f.store.register_instance(device("new", "A", "t", false), T0).await;
    assert!(matches!(refused, Err(RegisterRefusal::AlreadyRegistered)));
    let done = f.store.register_instance(device("new", "A", "t", true), T0).await.unwrap();
    assert_eq!(done.replaced.as_deref(), Some("old"));
    assert!(f.store.instance("old").await.unwrap().is_none());
    // The replaced instance's usage went back to the pool.
    assert!(f.store.pool_counts(f.pool.id, T0).await.unwrap().in_use.is_empty());
}

#[tokio::test]
async fn pool_counts_follow_usage_changes_moves_removals_and_silence() {
    let f = fixture().await;
    let other = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    token(&f, "t", None).await;
    f.store.register_instance(device("a", "A", "t", false), T0).await.unwrap();
    f.store.register_instance(device("b", "B", "t", false), T0).await.unwrap();
    let in_use = |c: PoolCounts| c.in_use.get("ACI Essentials").copied().unwrap_or(0);
    f.store.report_usage(report("a", &[("ACI Essentials", 3)], T0), T0).await.unwrap();
    let (_, counts) = f.store.report_usage(report("b", &[("ACI Essentials", 2)], T0), T0).await.unwrap();
    assert_eq!(in_use(counts), 5);
    let sent = report("a", &[("ACI Essentials", 1)], T0);
    let (_, counts) = f.store.report_usage(sent.clone(), T0).await.unwrap();
    assert_eq!(in_use(counts), 3);
    // A replayed report is refused whole.
    let replay = UsageReport { usage: [("ACI Essentials".to_string(), 50)].into(), ..sent };
    assert!(matches!(f.store.report_usage(replay, T0).await, Err(StoreError::Replay)));
    assert_eq!(in_use(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 3);
    f.store.remove_instance("b", "removed", "op", T0).await.unwrap();
    assert_eq!(in_use(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 1);
    f.store.move_instance("a", other.id, "op", T0).await.unwrap();
    assert_eq!(in_use(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 0);
    assert_eq!(in_use(f.store.pool_counts(other.id, T0).await.unwrap()), 1);
    // 90 silent days: usage released once; the next report brings it back whole.
    let later = T0.plus_days(91);
    assert_eq!(f.store.release_silent_usage(later.plus_days(-90), later).await.unwrap(), vec!["a".to_string()]);
    assert!(f.store.release_silent_usage(later.plus_days(-90), later).await.unwrap().is_empty());
    assert_eq!(in_use(f.store.pool_counts(other.id, later).await.unwrap()), 0);
    let (_, counts) = f.store.report_usage(report("a", &[("ACI Essentials", 1)], later), later).await.unwrap();
    assert_eq!(in_use(counts), 1);
    let kinds: Vec<String> =
        f.store.events(Some(f.account.id), 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    for k in ["instance.registered", "instance.removed", "instance.moved", "instance.usage-released"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn term_licenses_stop_counting_and_transfers_split_records() {
    let f = fixture().await;
    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    let add = |quantity, term| NewLicense {
        virtual_account_id: f.pool.id,
        tag: "ACI Advantage".into(),
        sku: "SKU".into(),
        quantity,
        term,
        subscription_id: None,
    };
    let term = LicenseTerm::new(LicenseKind::Term, Some(T0), Some(T0.plus_days(10))).unwrap();
    f.store.add_license(add(5, term), "op", T0).await.unwrap();
    f.store
        .add_license(add(10, LicenseTerm::new(LicenseKind::Perpetual, None, None).unwrap()), "op", T0)
        .await
        .unwrap();
    let purchased = |c: PoolCounts| c.purchased.get("ACI Advantage").copied().unwrap_or(0);
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 15);
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0.plus_days(10)).await.unwrap()), 10);
    let too_many = Transfer {
        from_virtual_account_id: f.pool.id,
        to_virtual_account_id: lab.id,
        tag: "ACI Advantage".into(),
        quantity: 16,
        kind: None,
    };
    assert!(matches!(f.store.transfer_licenses(too_many.clone(), "op", T0).await, Err(StoreError::Conflict(_))));
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 15);
    f.store.transfer_licenses(Transfer { quantity: 12, ..too_many }, "op", T0).await.unwrap();
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 3);
    assert_eq!(purchased(f.store.pool_counts(lab.id, T0).await.unwrap()), 12);
    // Perpetual licenses move first; the term record was split.
    assert_eq!(purchased(f.store.pool_counts(lab.id, T0.plus_days(10)).await.unwrap()), 10);
}

#[tokio::test]
async fn nonces_are_single_use_and_data_survives_reopening() {
    let f = fixture().await;
    assert!(f.store.consume_nonce("i", "n-0123456789abcdef", T0.plus_ms(DAY_MS)).await.unwrap());
    assert!(!f.store.consume_nonce("i", "n-0123456789abcdef", T0.plus_ms(DAY_MS)).await.unwrap());
    assert!(f.store.consume_nonce("j", "n-0123456789abcdef", T0.plus_ms(DAY_MS)).await.unwrap());
    f.store.purge_expired(T0.plus_ms(DAY_MS)).await.unwrap();
    assert!(f.store.consume_nonce("i", "n-0123456789abcdef", T0.plus_ms(2 * DAY_MS)).await.unwrap());
    let path = f.path.clone();
    drop(f.store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert!(reopened.account("example.com").await.unwrap().is_some());
}
