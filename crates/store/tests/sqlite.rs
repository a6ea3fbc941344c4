//! The store against real databases: transactions, incremental counts, refusals that change
//! nothing. Most tests run on both backends from one body ([`on_each_backend!`]); those about
//! SQLite's file (migrations of old schemas, its WAL, editing it behind the store) on SQLite only.

use smartlic_core::compliance::Ledger;
use smartlic_core::time::DAY_MS;
use smartlic_core::{Catalog, LicenseKind, LicenseTerm, Timestamp};
use smartlic_store::*;

use crate::backends::tamper;
use crate::common;
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_800_000_000_000);

pub(crate) struct Fixture {
    _dir: Option<tempfile::TempDir>,
    /// The SQLite file (None on PostgreSQL).
    path: Option<std::path::PathBuf>,
    pub(crate) url: DatabaseUrl,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) account: Account,
    pub(crate) pool: VirtualAccount,
}

/// Where the store's tests run: SQLite always, PostgreSQL when the crate is built with its
/// feature and a private server can be started.
#[derive(Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A fresh store of `backend` with one smart account and its default pool; None when that
/// backend cannot run here (the reason is printed, see `PrivateCluster::shared`).
pub(crate) async fn fixture_on(backend: Backend) -> Option<Fixture> {
    let (dir, url) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = DatabaseUrl::Sqlite(dir.path().join("test.db"));
            (Some(dir), url)
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let cluster = smartlic_store::postgres::PrivateCluster::shared()?;
            (None, DatabaseUrl::Postgres(cluster.fresh_database().unwrap()))
        }
    };
    let store = open(&url).await.unwrap();
    let account = store.create_account("example.com", "Example", "op", T0).await.unwrap();
    let pool = store.virtual_account(account.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
    let path = match &url {
        DatabaseUrl::Sqlite(path) => Some(path.clone()),
        DatabaseUrl::Postgres(_) => None,
    };
    Some(Fixture { _dir: dir, path, url, store, account, pool })
}

/// Runs each test (an `async fn(Fixture)`) once per backend, as `sqlite_backend::NAME` and
/// `postgres_backend::NAME`: one body, both stores.
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::fixture_on(super::Backend::Sqlite).await.unwrap()).await
                }
            )+
        }
        #[cfg(feature = "postgres")]
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(f) = super::fixture_on(super::Backend::Postgres).await {
                        super::$name(f).await
                    }
                }
            )+
        }
    };
}

on_each_backend!(
    accounts_start_with_a_default_pool_and_refuse_duplicates,
    tokens_are_refused_when_used_up_revoked_expired_or_unknown,
    same_udi_needs_force_which_replaces_the_old_instance,
    a_registration_repeated_by_its_key_is_the_same_and_force_stays_in_its_account,
    renewal_keeps_the_previous_key_until_the_new_one_is_used,
    pool_counts_follow_usage_changes_moves_removals_and_silence,
    term_licenses_stop_counting_and_transfers_split_records,
    nonces_are_single_use_and_data_survives_reopening,
    reservations_take_licenses_out_of_the_pool_until_returned_once,
    concurrent_reservations_never_over_commit,
    universal_reservation_is_off_until_allowed,
    virtual_accounts_are_deleted_only_when_empty,
    reserved_term_licenses_stop_counting_when_their_term_ends,
    reservations_never_draw_the_same_licenses_twice,
    drifted_counters_are_reported_never_hidden,
    transfers_move_only_available_licenses_all_or_nothing,
    instance_moves_and_removals_are_all_or_nothing,
    the_usage_of_many_instances_is_read_together_each_its_own,
);

fn cert(n: u32) -> CertificateFacts {
    CertificateFacts {
        serial: format!("{n:X}"),
        expires_at: T0.plus_days(365),
        key_algorithm: "ed25519".into(),
        public_key: "AAAA".into(),
    }
}

pub(crate) async fn token(f: &Fixture, hash: &str, max_uses: Option<i64>) -> RegistrationToken {
    common::token_in(&*f.store, f.pool.id, hash, max_uses, T0).await
}

/// A registration of instance `id`, with a key of its own: the same key again would be the
/// same registration repeated.
pub(crate) fn device(id: &str, sn: &str, token_hash: &str, force: bool) -> NewInstance {
    NewInstance {
        id: id.into(),
        token_hash: token_hash.into(),
        udi_pid: "C9500-32C".into(),
        udi_sn: sn.into(),
        hostname: "sw1".into(),
        force,
        certificate: CertificateFacts { public_key: format!("key-of-{id}"), ..cert(1) },
        evaluation_used_ms: None,
    }
}

/// A usage report with a nonce never used before.
pub(crate) fn report(id: &str, pairs: &[(&str, i64)], at: Timestamp) -> UsageReport {
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

async fn accounts_start_with_a_default_pool_and_refuse_duplicates(f: Fixture) {
    assert!(f.pool.is_default);
    let again = f.store.create_account("example.com", "Other", "op", T0).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    assert_eq!(f.store.accounts().await.unwrap().len(), 1);
    let dup = f.store.create_virtual_account(&f.account, DEFAULT_VIRTUAL_ACCOUNT, "", "op", T0).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
}

async fn tokens_are_refused_when_used_up_revoked_expired_or_unknown(f: Fixture) {
    token(&f, "once", Some(1)).await;
    f.store.register_instance(device("i1", "A", "once", false), T0).await.unwrap();
    let used_up = f.store.register_instance(device("i2", "B", "once", false), T0).await;
    assert!(matches!(used_up, Err(RegisterRefusal::InvalidToken)));
    let unknown = f.store.register_instance(device("i2", "B", "nope", false), T0).await;
    assert!(matches!(unknown, Err(RegisterRefusal::InvalidToken)));
    token(&f, "many", None).await;
    let expired = f.store.register_instance(device("i2", "B", "many", false), T0.plus_days(31)).await;
    assert!(matches!(expired, Err(RegisterRefusal::InvalidToken)));
    f.store.revoke_token(f.pool.id, "many", "", "op", T0).await.unwrap();
    let revoked = f.store.register_instance(device("i2", "B", "many", false), T0).await;
    assert!(matches!(revoked, Err(RegisterRefusal::InvalidToken)));
    // Nothing was created by the refusals.
    assert_eq!(f.store.instances(InstanceFilter::Account(f.account.id)).await.unwrap().len(), 1);
}

async fn same_udi_needs_force_which_replaces_the_old_instance(f: Fixture) {
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

/// A lost answer: the same key registering the same UDI again gets the same instance, and the
/// single-use token that admitted it is not spent twice. Force stays within its smart account.
async fn a_registration_repeated_by_its_key_is_the_same_and_force_stays_in_its_account(f: Fixture) {
    token(&f, "once", Some(1)).await;
    let first = f.store.register_instance(device("i1", "A", "once", false), T0).await.unwrap();
    let retry = NewInstance {
        id: "i2".into(),
        certificate: CertificateFacts { serial: "2".into(), ..first.instance.certificate.clone() },
        ..device("i1", "A", "once", false)
    };
    let again = f.store.register_instance(retry, T0.plus_days(1)).await.unwrap();
    assert_eq!((again.instance.id.as_str(), again.instance.certificate.serial.as_str()), ("i1", "2"));
    assert_eq!(f.store.tokens(f.pool.id).await.unwrap()[0].uses, 1);
    assert_eq!(f.store.instances(InstanceFilter::Account(f.account.id)).await.unwrap().len(), 1);

    // Another account's token, even with force and even with that very key, replaces nothing.
    let other = f.store.create_account("other.com", "Other", "op", T0).await.unwrap();
    let other_pool = f.store.virtual_account(other.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
    common::token_in(&*f.store, other_pool.id, "b", None, T0).await;
    for stolen in [device("i3", "A", "b", true), NewInstance { id: "i3".into(), ..device("i1", "A", "b", true) }] {
        let refused = f.store.register_instance(stolen, T0).await;
        assert!(matches!(refused, Err(RegisterRefusal::AlreadyRegistered)));
    }
    assert_eq!(f.store.instance("i1").await.unwrap().unwrap().virtual_account_id, f.pool.id);
    assert!(f.store.instances(InstanceFilter::Account(other.id)).await.unwrap().is_empty());
}

/// After an ID renewal the previous key stays until forgotten; a renewal signed by it (after a
/// lost answer) keeps it, and the key never delivered is dropped.
async fn renewal_keeps_the_previous_key_until_the_new_one_is_used(f: Fixture) {
    token(&f, "t", None).await;
    f.store.register_instance(device("i1", "A", "t", false), T0).await.unwrap();
    let key = |k: &str| CertificateFacts { public_key: k.into(), ..cert(2) };
    let previous = |i: Instance| i.previous_key.map(|k| k.public_key);
    f.store.renew_certificate("i1", &key("lost"), T0).await.unwrap();
    assert_eq!(previous(f.store.instance("i1").await.unwrap().unwrap()).as_deref(), Some("key-of-i1"));
    f.store.renew_certificate("i1", &key("next"), T0).await.unwrap();
    let renewed = f.store.instance("i1").await.unwrap().unwrap();
    assert_eq!(renewed.certificate.public_key, "next");
    assert_eq!(previous(renewed).as_deref(), Some("key-of-i1"));
    f.store.forget_previous_key("i1").await.unwrap();
    assert_eq!(previous(f.store.instance("i1").await.unwrap().unwrap()), None);
}

async fn pool_counts_follow_usage_changes_moves_removals_and_silence(f: Fixture) {
    let other = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    token(&f, "t", None).await;
    f.store.register_instance(device("a", "A", "t", false), T0).await.unwrap();
    f.store.register_instance(device("b", "B", "t", false), T0).await.unwrap();
    let in_use = |c: PoolCounts| c.in_use.get("ACI Essentials").copied().unwrap_or(0);
    f.store.report_usage(report("a", &[("ACI Essentials", 3)], T0), T0).await.unwrap();
    let counts = f.store.report_usage(report("b", &[("ACI Essentials", 2)], T0), T0).await.unwrap();
    assert_eq!(in_use(counts), 5);
    let sent = report("a", &[("ACI Essentials", 1)], T0);
    let counts = f.store.report_usage(sent.clone(), T0).await.unwrap();
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
    let counts = f.store.report_usage(report("a", &[("ACI Essentials", 1)], later), later).await.unwrap();
    assert_eq!(in_use(counts), 1);
    let kinds: Vec<String> =
        f.store.events(Some(f.account.id), 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    for k in ["instance.registered", "instance.removed", "instance.moved", "instance.usage-released"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
}

async fn term_licenses_stop_counting_and_transfers_split_records(f: Fixture) {
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
    let too_many = Transfer { to_virtual_account_id: lab.id, tag: "ACI Advantage".into(), quantity: 16, kind: None };
    let refused = f.store.transfer_licenses(f.pool.id, vec![too_many.clone()], available_only(), "op", T0).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))));
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 15);
    let twelve = vec![Transfer { quantity: 12, ..too_many }];
    f.store.transfer_licenses(f.pool.id, twelve, available_only(), "op", T0).await.unwrap();
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 3);
    assert_eq!(purchased(f.store.pool_counts(lab.id, T0).await.unwrap()), 12);
    // Perpetual licenses move first; the term record was split.
    assert_eq!(purchased(f.store.pool_counts(lab.id, T0.plus_days(10)).await.unwrap()), 10);
}

async fn nonces_are_single_use_and_data_survives_reopening(f: Fixture) {
    assert!(f.store.consume_nonce("i", "n-0123456789abcdef", T0.plus_ms(DAY_MS)).await.unwrap());
    assert!(!f.store.consume_nonce("i", "n-0123456789abcdef", T0.plus_ms(DAY_MS)).await.unwrap());
    assert!(f.store.consume_nonce("j", "n-0123456789abcdef", T0.plus_ms(DAY_MS)).await.unwrap());
    f.store.purge_expired(T0.plus_ms(DAY_MS)).await.unwrap();
    assert!(f.store.consume_nonce("i", "n-0123456789abcdef", T0.plus_ms(2 * DAY_MS)).await.unwrap());
    f.store.close().await.unwrap();
    drop(f.store);
    let reopened = open(&f.url).await.unwrap();
    assert!(reopened.account("example.com").await.unwrap().is_some());
}

fn perpetual() -> LicenseTerm {
    LicenseTerm::new(LicenseKind::Perpetual, None, None).unwrap()
}

pub(crate) async fn deposit(f: &Fixture, pool: &VirtualAccount, tag: &str, quantity: i64) -> LicenseRecord {
    let new = NewLicense {
        virtual_account_id: pool.id,
        tag: tag.into(),
        sku: String::new(),
        quantity,
        term: perpetual(),
        subscription_id: None,
    };
    f.store.add_license(new, "op", T0).await.unwrap()
}

/// A specific reservation for device `sn` of licenses drawn from purchase records (the codes
/// are placeholders here).
pub(crate) fn reserving(sn: &str, licenses: &[(&LicenseRecord, i64)]) -> NewReservation {
    NewReservation {
        request_code: format!("CB-ZC9300:{sn}-AK9A6sMTr-00"),
        kind: ReservationKind::Specific,
        udi_pid: "C9300".into(),
        udi_sn: sn.into(),
        piid: format!("piid-{sn}"),
        authorization_code: format!("<specificPLR>{sn}</specificPLR>"),
        authorization_digest: format!("digest-{sn}"),
        confirmation_code: "17488c1f".into(),
        licenses: licenses
            .iter()
            .map(|(record, quantity)| ReservedLicense {
                tag: record.tag.clone(),
                quantity: *quantity,
                term: record.term.clone(),
                subscription_id: record.subscription_id.clone(),
                license_id: Some(record.id),
            })
            .collect(),
    }
}

/// The server's rule: a reservation takes only what the ledger says nobody uses.
pub(crate) fn ledger_check() -> ReservationCheck {
    Box::new(|counts, asked| {
        Ledger::check_reservation(&Catalog::builtin(), &counts.purchased, &counts.in_use, &counts.reserved, asked)
            .map_err(|s| {
                format!("more licenses than available: {} of {} asked, {} available", s.requested, s.tag, s.available)
            })
    })
}

/// The server's rule: a transfer takes only what is available, tier lending counted.
fn available_only() -> TransferCheck {
    Box::new(|counts, outgoing| {
        counts
            .check_transfer(&Catalog::builtin(), outgoing)
            .map_err(|s| format!("only {} of {} available, {} asked", s.available, s.tag, s.requested))
    })
}

pub(crate) fn reserved(c: &PoolCounts, tag: &str) -> i64 {
    c.reserved.get(tag).copied().unwrap_or(0)
}

async fn reservations_take_licenses_out_of_the_pool_until_returned_once(f: Fixture) {
    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    let adv = deposit(&f, &f.pool, "ACI Advantage", 5).await;
    let made =
        f.store.create_reservations(f.pool.id, vec![reserving("A", &[(&adv, 3)])], ledger_check(), "op", T0).await;
    let made = made.unwrap().remove(0);
    assert_eq!((made.status, made.udi().as_str()), (ReservationStatus::Reserved, "PID:C9300,SN:A"));
    let counts = f.store.pool_counts(f.pool.id, T0).await.unwrap();
    assert_eq!(reserved(&counts, "ACI Advantage"), 3);
    assert_eq!(counts.ledger(&Catalog::builtin()).get("ACI Advantage").unwrap().balance(), 2);

    // Beyond what is left, the same device twice, or a batch with one bad item: nothing changes.
    let refusals = [
        (vec![reserving("B", &[(&adv, 3)])], f.pool.id, "more licenses than available"),
        (vec![reserving("A", &[])], lab.id, "already holds an active reservation"),
        (vec![reserving("C", &[(&adv, 1)]), reserving("C", &[(&adv, 1)])], f.pool.id, "listed twice"),
    ];
    for (batch, pool, why) in refusals {
        match f.store.create_reservations(pool, batch, ledger_check(), "op", T0).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reserved(&f.store.pool_counts(f.pool.id, T0).await.unwrap(), "ACI Advantage"), 3);
    assert_eq!(f.store.reservations(ReservationFilter::Account(f.account.id)).await.unwrap().len(), 1);

    let listed = f.store.reservations(ReservationFilter::VirtualAccount(f.pool.id)).await.unwrap();
    assert_eq!(listed, vec![made.clone()]);
    assert_eq!(f.store.reservation_by_digest("digest-A").await.unwrap(), Some(made.clone()));
    assert!(f.store.reservations(ReservationFilter::VirtualAccount(lab.id)).await.unwrap().is_empty());

    let back = f.store.return_reservation(made.id, "op", T0.plus_days(1)).await.unwrap();
    assert_eq!((back.status, back.returned_at), (ReservationStatus::Returned, Some(T0.plus_days(1))));
    assert!(f.store.pool_counts(f.pool.id, T0).await.unwrap().reserved.is_empty());
    match f.store.return_reservation(made.id, "op", T0.plus_days(2)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("already returned"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(f.store.pool_counts(f.pool.id, T0).await.unwrap().reserved.is_empty());
    // The device may reserve again once its licenses are back.
    let again = NewReservation { authorization_digest: "digest-A2".into(), ..reserving("A", &[]) };
    f.store.create_reservations(lab.id, vec![again], ledger_check(), "op", T0).await.unwrap();
    let kinds: Vec<String> =
        f.store.events(Some(f.account.id), 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "reservation.created").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "reservation.returned").count(), 1, "{kinds:?}");
}

async fn concurrent_reservations_never_over_commit(f: Fixture) {
    let adv = deposit(&f, &f.pool, "ACI Advantage", 5).await;
    let store = f.store.clone();
    let attempts: Vec<_> = (0..12)
        .map(|i| {
            let (store, pool, adv) = (store.clone(), f.pool.id, adv.clone());
            tokio::spawn(async move {
                let one = reserving(&format!("SN{i}"), &[(&adv, 1)]);
                store.create_reservations(pool, vec![one], ledger_check(), "op", T0).await
            })
        })
        .collect();
    let mut granted = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(_) => granted += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(granted, 5);
    assert_eq!(reserved(&store.pool_counts(f.pool.id, T0).await.unwrap(), "ACI Advantage"), 5);
}

async fn universal_reservation_is_off_until_allowed(f: Fixture) {
    assert!(!f.account.universal_reservation);
    let on = f.store.set_universal_reservation(f.account.id, true, "op", T0).await.unwrap();
    assert!(on.universal_reservation);
    assert!(f.store.account("example.com").await.unwrap().unwrap().universal_reservation);
    assert!(matches!(f.store.set_universal_reservation(999, true, "op", T0).await, Err(StoreError::NotFound(_))));
    let events = f.store.events(Some(f.account.id), 10).await.unwrap();
    assert_eq!(events[0].kind, "account.universal-reservation");
}

async fn virtual_accounts_are_deleted_only_when_empty(f: Fixture) {
    let conflict = |r: Result<VirtualAccount>| match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = conflict(f.store.delete_virtual_account(f.pool.id, "op", T0).await);
    assert!(m.contains("default"), "{m}");

    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    let adv = deposit(&f, &lab, "ACI Advantage", 2).await;
    let expiring = LicenseTerm::new(LicenseKind::Term, Some(T0), Some(T0.plus_days(10))).unwrap();
    let term = NewLicense {
        virtual_account_id: lab.id,
        tag: "ACI Premier".into(),
        sku: String::new(),
        quantity: 1,
        term: expiring,
        subscription_id: None,
    };
    f.store.add_license(term, "op", T0).await.unwrap();
    let t = common::token_in(&*f.store, lab.id, "lab", None, T0).await;
    f.store.register_instance(device("i1", "A", "lab", false), T0).await.unwrap();
    let made = f.store.create_reservations(lab.id, vec![reserving("R", &[(&adv, 1)])], ledger_check(), "op", T0);
    let made = made.await.unwrap().remove(0);
    let user = NewPrincipal {
        kind: PrincipalKind::User,
        name: "lab-user".into(),
        login: "lab-user@example.com".into(),
        secret_hash: None,
        role: smartlic_core::Role::VirtualAccountUser,
        account_id: Some(f.account.id),
        virtual_account_id: Some(lab.id),
    };
    f.store.create_principal(user, "op", T0).await.unwrap();

    let m = conflict(f.store.delete_virtual_account(lab.id, "op", T0).await);
    for held in ["3 license(s)", "1 product instance(s)", "1 active registration token(s)", "1 active reservation(s)"] {
        assert!(m.contains(held), "{held} missing from: {m}");
    }
    assert!(f.store.virtual_account_by_id(lab.id).await.unwrap().is_some());

    // Emptied: only the ended term license and the spent token remain, and go with it. The
    // reservation comes back first: reserved licenses cannot be transferred away.
    f.store.return_reservation(made.id, "op", T0).await.unwrap();
    let back = Transfer { to_virtual_account_id: f.pool.id, tag: "ACI Advantage".into(), quantity: 2, kind: None };
    f.store.transfer_licenses(lab.id, vec![back], available_only(), "op", T0).await.unwrap();
    f.store.remove_instance("i1", "removed", "op", T0).await.unwrap();
    // Revoked by its listed prefix: the store holds no more of the token.
    f.store.revoke_token(lab.id, "not-its-hash", &t.prefix, "op", T0).await.unwrap();
    let later = T0.plus_days(11);
    let gone = f.store.delete_virtual_account(lab.id, "op", later).await.unwrap();
    assert_eq!(gone.name, "Lab");
    assert!(f.store.virtual_account(f.account.id, "Lab").await.unwrap().is_none());
    assert!(f.store.principal("lab-user@example.com").await.unwrap().is_none());
    let deleted = &f.store.events(Some(f.account.id), 1).await.unwrap()[0];
    assert_eq!(deleted.kind, "virtual-account.deleted");
    assert!(deleted.detail.contains("1 expired license record(s)"), "{}", deleted.detail);
    // The name can be used again.
    f.store.create_virtual_account(&f.account, "Lab", "", "op", later).await.unwrap();
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(include_str!("../migrations/sqlite/0001_init.sql")).unwrap();
        db.execute_batch(
            "INSERT INTO smart_accounts (id, domain, name, created_at) VALUES (1, 'old.com', 'Old', 0);
             INSERT INTO virtual_accounts (id, account_id, name, description, is_default, created_at)
                 VALUES (1, 1, 'Default', '', TRUE, 0);
             INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES (1, 'ACI Essentials', 4);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let account = store.account("old.com").await.unwrap().unwrap();
    assert!(!account.universal_reservation);
    let counts = store.pool_counts(1, T0).await.unwrap();
    assert_eq!(counts.in_use.get("ACI Essentials"), Some(&4));
    assert!(counts.reserved.is_empty());
    assert!(store.reservations(ReservationFilter::Account(1)).await.unwrap().is_empty());
}

/// Issue 10: a reservation counts only while the purchase records it draws from are valid.
async fn reserved_term_licenses_stop_counting_when_their_term_ends(f: Fixture) {
    let ends = T0.plus_days(10);
    let term = NewLicense {
        virtual_account_id: f.pool.id,
        tag: "ACI Advantage".into(),
        sku: String::new(),
        quantity: 5,
        term: LicenseTerm::new(LicenseKind::Term, Some(T0), Some(ends)).unwrap(),
        subscription_id: Some("Sub-1".into()),
    };
    let record = f.store.add_license(term, "op", T0).await.unwrap();
    let perpetual = deposit(&f, &f.pool, "ACI Advantage", 1).await;
    f.store
        .create_reservations(
            f.pool.id,
            vec![reserving("A", &[(&record, 3), (&perpetual, 1)])],
            ledger_check(),
            "op",
            T0,
        )
        .await
        .unwrap();
    let counts = f.store.pool_counts(f.pool.id, T0).await.unwrap();
    assert_eq!((counts.purchased["ACI Advantage"], reserved(&counts, "ACI Advantage")), (6, 4));
    // The term ends for the pool and for the device alike: 1 purchased, 1 reserved, in compliance.
    let later = f.store.pool_counts(f.pool.id, ends).await.unwrap();
    assert_eq!((later.purchased["ACI Advantage"], reserved(&later, "ACI Advantage")), (1, 1));
    assert!(later.ledger(&Catalog::builtin()).in_compliance());
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
    assert_eq!(f.store.check_counters(ends).await.unwrap(), []);
}

/// Issue 10: a reservation names its purchase records, and a record's licenses are drawn once.
async fn reservations_never_draw_the_same_licenses_twice(f: Fixture) {
    let first = deposit(&f, &f.pool, "ACI Advantage", 2).await;
    let second = deposit(&f, &f.pool, "ACI Advantage", 2).await;
    let made = f.store.create_reservations(f.pool.id, vec![reserving("A", &[(&first, 2)])], ledger_check(), "op", T0);
    let made = made.await.unwrap().remove(0);
    assert_eq!(made.licenses[0].license_id, Some(first.id));
    assert_eq!(f.store.drawn(f.pool.id).await.unwrap(), BTreeMap::from([(first.id, 2)]));
    // The pool has 2 left, but not in the first record: a choice made on a stale read is refused.
    let stale = f.store.create_reservations(f.pool.id, vec![reserving("B", &[(&first, 1)])], ledger_check(), "op", T0);
    match stale.await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("0 undrawn license(s) left, 1 asked"), "{m}"),
        other => panic!("{other:?}"),
    }
    f.store
        .create_reservations(f.pool.id, vec![reserving("B", &[(&second, 1)])], ledger_check(), "op", T0)
        .await
        .unwrap();
    f.store.return_reservation(made.id, "op", T0).await.unwrap();
    assert_eq!(f.store.drawn(f.pool.id).await.unwrap(), BTreeMap::from([(second.id, 1)]));
    let listed = f.store.reservations(ReservationFilter::VirtualAccount(f.pool.id)).await.unwrap();
    assert_eq!(listed[0].licenses[0].license_id, Some(first.id), "a returned reservation still names its record");
}

/// Issue 10: a counter that drifted from the records is an error and a listed difference.
async fn drifted_counters_are_reported_never_hidden(f: Fixture) {
    token(&f, "h1", None).await;
    f.store.register_instance(device("i1", "A", "h1", false), T0).await.unwrap();
    f.store.report_usage(report("i1", &[("ACI Essentials", 4)], T0), T0).await.unwrap();
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
    tamper(&f.url, "UPDATE pool_usage SET in_use = -2 WHERE tag = 'ACI Essentials'");
    match f.store.pool_counts(f.pool.id, T0).await {
        Err(StoreError::Corrupt(m)) => {
            assert!(m.contains("in-use count of 'ACI Essentials'") && m.contains("is -2"), "{m}")
        }
        other => panic!("a negative count must be an error, got {other:?}"),
    }
    let drift = CounterDrift {
        virtual_account_id: f.pool.id,
        account: "example.com".into(),
        virtual_account: DEFAULT_VIRTUAL_ACCOUNT.into(),
        tag: "ACI Essentials".into(),
        counter: "in use",
        stored: -2,
        recomputed: 4,
    };
    assert_eq!(f.store.check_counters(T0).await.unwrap(), std::slice::from_ref(&drift));
    // The repair sets the counter to the records' count, says so in the log, and is done once.
    assert_eq!(f.store.repair_in_use_counters("op", T0).await.unwrap(), [drift]);
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
    assert_eq!(f.store.pool_counts(f.pool.id, T0).await.unwrap().in_use["ACI Essentials"], 4);
    let events = f.store.events(Some(f.account.id), 1000).await.unwrap();
    let repaired: Vec<_> = events.iter().filter(|e| e.kind == "counters.repaired").collect();
    assert_eq!(repaired.len(), 1, "{events:?}");
    assert_eq!(repaired[0].detail, "in-use count set from -2 to 4, the count of the records");
    assert_eq!(f.store.repair_in_use_counters("op", T0).await.unwrap(), []);
}

/// Issue 10: a multi-item transfer is one transaction, and only available licenses leave:
/// those not in use, not lent to lower tiers in use, and not drawn by a reservation.
async fn transfers_move_only_available_licenses_all_or_nothing(f: Fixture) {
    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    deposit(&f, &f.pool, "ACI Advantage", 12).await;
    token(&f, "t", None).await;
    f.store.register_instance(device("i1", "A", "t", false), T0).await.unwrap();
    f.store.report_usage(report("i1", &[("ACI Essentials", 10)], T0), T0).await.unwrap();
    let to = |pool: &VirtualAccount, quantity, kind| Transfer {
        to_virtual_account_id: pool.id,
        tag: "ACI Advantage".into(),
        quantity,
        kind,
    };
    let transfer = |from: i64, batch: Vec<Transfer>| f.store.transfer_licenses(from, batch, available_only(), "op", T0);
    let purchased = |c: PoolCounts| c.purchased.get("ACI Advantage").copied().unwrap_or(0);
    let events = f.store.events(Some(f.account.id), 1000).await.unwrap().len();

    // 12 Advantage lend 10 to the Essentials in use: 2 are available.
    match transfer(f.pool.id, vec![to(&lab, 3, None)]).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("only 2 of ACI Advantage available, 3 asked"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Items within reach one by one but not together, an item that cannot be served (no term
    // licenses), a target in another smart account: nothing moves.
    let other = f.store.create_account("other.com", "Other", "op", T0).await.unwrap();
    let theirs = f.store.virtual_account(other.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
    let refused = [
        vec![to(&lab, 2, None), to(&lab, 1, None)],
        vec![to(&lab, 1, None), to(&lab, 1, Some(LicenseKind::Term))],
        vec![to(&lab, 1, None), to(&theirs, 1, None)],
    ];
    for batch in refused {
        assert!(matches!(transfer(f.pool.id, batch).await, Err(StoreError::Conflict(_) | StoreError::NotFound(_))));
    }
    assert_eq!(purchased(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 12);
    assert_eq!(purchased(f.store.pool_counts(lab.id, T0).await.unwrap()), 0);
    assert_eq!(f.store.events(Some(f.account.id), 1000).await.unwrap().len(), events);
    transfer(f.pool.id, vec![to(&lab, 1, None), to(&lab, 1, None)]).await.unwrap();
    assert_eq!(purchased(f.store.pool_counts(lab.id, T0).await.unwrap()), 2);

    // Lab: 2 Advantage and 1 Premier; a reservation draws 1 Advantage record. The Premier could
    // cover it in the ledger, but the drawn license stays with its record: 1 can go.
    deposit(&f, &lab, "ACI Premier", 1).await;
    let record = f.store.licenses(lab.id).await.unwrap().into_iter().find(|r| r.tag == "ACI Advantage").unwrap();
    let made = f.store.create_reservations(lab.id, vec![reserving("R", &[(&record, 1)])], ledger_check(), "op", T0);
    made.await.unwrap();
    match transfer(lab.id, vec![to(&f.pool, 2, None)]).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("only 1 license(s) of 'ACI Advantage'"), "{m}"),
        other => panic!("{other:?}"),
    }
    transfer(lab.id, vec![to(&f.pool, 1, None)]).await.unwrap();
    let counts = f.store.pool_counts(lab.id, T0).await.unwrap();
    assert_eq!((purchased(counts.clone()), reserved(&counts, "ACI Advantage")), (1, 1));
}

/// Issue 10: moves and removals of several instances (and reservation returns) are one
/// transaction; an instance no longer where the caller found it refuses the batch.
async fn instance_moves_and_removals_are_all_or_nothing(f: Fixture) {
    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    token(&f, "t", None).await;
    for (id, sn) in [("a", "A"), ("b", "B")] {
        f.store.register_instance(device(id, sn, "t", false), T0).await.unwrap();
        f.store.report_usage(report(id, &[("ACI Essentials", 1)], T0), T0).await.unwrap();
    }
    let record = deposit(&f, &f.pool, "ACI Advantage", 3).await;
    let made = f.store.create_reservations(f.pool.id, vec![reserving("R", &[(&record, 1)])], ledger_check(), "op", T0);
    let made = made.await.unwrap().remove(0);
    f.store.return_reservation(made.id, "op", T0).await.unwrap();
    let in_use = |c: PoolCounts| c.in_use.get("ACI Essentials").copied().unwrap_or(0);
    let events = f.store.events(Some(f.account.id), 1000).await.unwrap().len();
    let mv = |id: &str, from: &VirtualAccount| InstanceMove {
        instance_id: id.into(),
        from_virtual_account_id: Some(from.id),
        to_virtual_account_id: lab.id,
    };
    let rm =
        |id: &str, from: &VirtualAccount| Removal::Instance { id: id.into(), from_virtual_account_id: Some(from.id) };

    match f.store.move_instances(vec![mv("a", &f.pool), mv("b", &lab)], "op", T0).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("SN:B is no longer in virtual account 'Lab'"), "{m}"),
        other => panic!("{other:?}"),
    }
    let unknown = f.store.remove_instances(vec![rm("a", &f.pool), rm("nope", &f.pool)], "removed", "op", T0).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
    let returned = vec![rm("a", &f.pool), Removal::Reservation(made.id)];
    match f.store.remove_instances(returned, "removed", "op", T0).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("already returned"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.store.instances(InstanceFilter::VirtualAccount(f.pool.id)).await.unwrap().len(), 2);
    assert_eq!(in_use(f.store.pool_counts(f.pool.id, T0).await.unwrap()), 2);
    assert_eq!(f.store.events(Some(f.account.id), 1000).await.unwrap().len(), events);

    let moved = f.store.move_instances(vec![mv("a", &f.pool), mv("b", &f.pool)], "op", T0).await.unwrap();
    assert!(moved.iter().all(|i| i.virtual_account_id == lab.id));
    assert_eq!(in_use(f.store.pool_counts(lab.id, T0).await.unwrap()), 2);
    let gone = f.store.remove_instances(vec![rm("a", &lab), rm("b", &lab)], "removed", "op", T0).await.unwrap();
    assert_eq!(gone.len(), 2);
    assert_eq!(in_use(f.store.pool_counts(lab.id, T0).await.unwrap()), 0);
    assert!(f.store.instances(InstanceFilter::Account(f.account.id)).await.unwrap().is_empty());
}

/// Reservations made before they named their purchase records get them on migration, and keep
/// counting as reserved.
#[tokio::test]
async fn reservations_of_the_second_schema_get_their_records_on_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    common::database_of_schema_two(
        &path,
        "INSERT INTO licenses (id, virtual_account_id, tag, sku, quantity, kind, created_at)
                 VALUES (7, 1, 'ACI Premier', '', 5, 'perpetual', 0), (8, 1, 'ACI Advantage', '', 5, 'perpetual', 0);
             INSERT INTO pool_usage (virtual_account_id, tag, in_use, reserved) VALUES (1, 'ACI Advantage', 0, 3);
             INSERT INTO reservations (id, virtual_account_id, request_code, kind, udi_pid, udi_sn, piid,
                 authorization_code, authorization_digest, confirmation_code, status, created_at, created_by)
                 VALUES (1, 1, 'CB-X', 'specific', 'P', 'S', 'piid', 'code', 'digest', 'c0de', 'reserved', 0, 'op');
             INSERT INTO reservation_licenses (reservation_id, tag, quantity, license_type)
                 VALUES (1, 'ACI Advantage', 3, 'perpetual');",
    );
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.pool_counts(1, T0).await.unwrap().reserved, BTreeMap::from([("ACI Advantage".into(), 3)]));
    let found = store.reservations(ReservationFilter::VirtualAccount(1)).await.unwrap();
    assert_eq!(found[0].licenses[0].license_id, Some(8), "the record of its own tag comes first");
    assert_eq!(store.drawn(1).await.unwrap(), BTreeMap::from([(8, 3)]));
    assert_eq!(store.check_counters(T0).await.unwrap(), []);
}

#[tokio::test]
async fn close_finishes_queued_writes_then_refuses_and_leaves_an_empty_wal() {
    let f = fixture_on(Backend::Sqlite).await.unwrap();
    let store = f.store.clone();
    let writes: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.create_account(&format!("d{i}.example"), "D", "op", T0).await.map(|a| a.domain)
            })
        })
        .collect();
    store.close().await.unwrap();
    let mut stored = Vec::new();
    for w in writes {
        match w.await.unwrap() {
            Ok(domain) => stored.push(domain),
            Err(e) => assert!(e.to_string().contains("the database is closed"), "{e}"),
        }
    }
    assert!(store.probe_writable().await.unwrap_err().to_string().contains("the database is closed"));
    assert!(store.write_busy() > std::time::Duration::ZERO);
    let wal = std::path::PathBuf::from(format!("{}-wal", f.path.as_ref().unwrap().display()));
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0, "the WAL was not checkpointed");
    // Every write that was answered Ok is in the file.
    let reopened = SqliteStore::open(f.path.as_ref().unwrap()).await.unwrap();
    reopened.probe_writable().await.unwrap();
    for domain in stored {
        assert!(reopened.account(&domain).await.unwrap().is_some(), "{domain} lost");
    }
}

async fn the_usage_of_many_instances_is_read_together_each_its_own(f: Fixture) {
    token(&f, "many", None).await;
    for (id, sn) in [("i1", "A"), ("i2", "B"), ("i3", "C")] {
        f.store.register_instance(device(id, sn, "many", false), T0).await.unwrap();
    }
    f.store.report_usage(report("i1", &[("adv", 2)], T0), T0).await.unwrap();
    f.store.report_usage(report("i2", &[("adv", 1), ("ess", 4)], T0), T0).await.unwrap();
    // i3 reports nothing; a thousand unknown ids around them change nothing.
    let mut ids = vec!["i1".to_string(), "i3".to_string()];
    ids.extend((0..1000).map(|n| format!("absent-{n}")));
    ids.push("i2".into());
    let usage = f.store.instances_usage(ids).await.unwrap();
    let expected = BTreeMap::from([
        ("i1".to_string(), BTreeMap::from([("adv".to_string(), 2)])),
        ("i2".to_string(), BTreeMap::from([("adv".to_string(), 1), ("ess".to_string(), 4)])),
    ]);
    assert_eq!(usage, expected);
    assert!(f.store.instances_usage(Vec::new()).await.unwrap().is_empty());
}
