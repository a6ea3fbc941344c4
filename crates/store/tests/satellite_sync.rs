//! A satellite's synchronisation (S-3) through the store, on every backend (see `backends`):
//! the satellite's request read a part at a time from one snapshot, so that devices keep
//! registering while a long export runs; the cloud applying it all or nothing, once; pools
//! reassigned and instances removed by the cloud carried back down in its response.

use crate::backends::each_backend;
use crate::common;
use smartlic_core::{LicenseKind, LicenseTerm, Timestamp};
use smartlic_store::satellite::*;
use smartlic_store::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_800_000_000_000);
const TAG: &str = "ACI Essentials";

/// A satellite's store with an approved local account serving Lab (10 perpetual licenses), and
/// a token of Lab.
async fn satellite(store: &dyn Store) -> VirtualAccount {
    store.create_local_account("Plant", "example.com", "op", T0).await.unwrap();
    let license = NewLicense {
        virtual_account_id: 0,
        tag: TAG.into(),
        sku: "SKU-1".into(),
        quantity: 10,
        term: LicenseTerm { kind: LicenseKind::Perpetual, start: None, end: None },
        subscription_id: None,
    };
    let approval = LocalApproval {
        local_account: "Plant".into(),
        cloud_satellite_id: 1,
        smart_account_name: "Example".into(),
        certificate: "certificate".into(),
        certificate_expires_at: T0.plus_days(365),
        cloud_ca: "ca".into(),
        pools: vec![MirroredPool { name: "Lab".into(), description: String::new(), licenses: vec![license] }],
    };
    store.approve_local_account(approval, "op", T0).await.unwrap();
    let account = store.account("example.com").await.unwrap().unwrap();
    let lab = store.virtual_account(account.id, "Lab").await.unwrap().unwrap();
    common::token_in(store, lab.id, "token-hash", None, T0).await;
    lab
}

async fn register(store: &dyn Store, sn: &str) {
    let new = NewInstance {
        id: format!("id-{sn}"),
        token_hash: "token-hash".into(),
        udi_pid: "C9300-48P".into(),
        udi_sn: sn.into(),
        hostname: "sw".into(),
        force: false,
        certificate: CertificateFacts {
            serial: sn.into(),
            expires_at: T0.plus_days(365),
            key_algorithm: "ed25519".into(),
            public_key: format!("key-of-{sn}"),
        },
        evaluation_used_ms: None,
    };
    store.register_instance(new, T0).await.map_err(|e| e.to_string()).unwrap();
}

async fn use_licenses(store: &dyn Store, sn: &str, count: i64) {
    let report = UsageReport {
        instance_id: format!("id-{sn}"),
        usage: BTreeMap::from([(TAG.to_string(), count)]),
        hostname: None,
        nonce: format!("nonce-{sn}-{count}"),
        nonce_expires_at: T0.plus_days(1),
    };
    store.report_usage(report, T0).await.unwrap();
}

/// The next part the read sends, waited for off the async threads.
async fn next_part(parts: &Arc<std::sync::Mutex<std::sync::mpsc::Receiver<PoolInstances>>>) -> Option<PoolInstances> {
    let parts = parts.clone();
    tokio::task::spawn_blocking(move || parts.lock().unwrap().recv().ok()).await.unwrap()
}

/// Every part of a request `begin_sync` makes now.
async fn request(store: &Arc<dyn Store>, full: bool) -> (SyncDraft, Vec<PoolInstances>) {
    let draft = store.begin_sync("Plant", full, T0).await.unwrap();
    let (sender, parts) = std::sync::mpsc::sync_channel(2);
    let reading = tokio::spawn({
        let store = store.clone();
        async move { store.sync_instances("Plant", full, sender).await }
    });
    let parts = tokio::task::spawn_blocking(move || parts.iter().collect()).await.unwrap();
    reading.await.unwrap().unwrap();
    (draft, parts)
}

/// The read of a full request is held inside its snapshot (it waits for its second part to be
/// taken): a device registers meanwhile, and the request carries the instances as they were
/// when the read began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registers_while_a_full_request_is_being_read() {
    for (backend, store, _dir) in each_backend().await {
        satellite(&*store).await;
        let mut registering = tokio::task::JoinSet::new();
        for n in 0..=SYNC_PART {
            let store = store.clone();
            registering.spawn(async move { register(&*store, &format!("FCW{n:05}")).await });
        }
        registering.join_all().await;

        store.begin_sync("Plant", true, T0).await.unwrap();
        // No room in the channel: the read waits inside its snapshot until each part is taken.
        let (sender, parts) = std::sync::mpsc::sync_channel(0);
        let reading = tokio::spawn({
            let store = store.clone();
            async move { store.sync_instances("Plant", true, sender).await }
        });
        let parts = Arc::new(std::sync::Mutex::new(parts));
        let first = next_part(&parts).await.expect("a first part");
        assert_eq!((first.pool.as_str(), first.instances.len()), ("Lab", SYNC_PART), "{backend}");

        // The read is under way (its second part not taken): a registration completes.
        register(&*store, "FCWZZZZZ").await;
        assert!(!reading.is_finished(), "{backend}: the read ended before its last part was taken");

        let second = next_part(&parts).await.expect("a second part");
        let sns: Vec<&str> = second.instances.iter().map(|i| i.sn.as_str()).collect();
        assert_eq!(sns, [format!("FCW{SYNC_PART:05}")], "{backend}: the snapshot of when the read began");
        assert!(next_part(&parts).await.is_none(), "{backend}");
        reading.await.unwrap().unwrap();
    }
}

/// The cloud's side: a smart account whose pool Lab is served by an approved satellite.
async fn cloud(store: &dyn Store) -> (Satellite, VirtualAccount) {
    let account = store.create_account("example.com", "Example", "op", T0).await.unwrap();
    let lab = store.create_virtual_account(&account, "Lab", "", "op", T0).await.unwrap();
    let new = NewSatellite {
        account_id: account.id,
        name: "sat-1".into(),
        local_account: "Plant".into(),
        manager_id: "m-1".into(),
        key_algorithm: "ed25519".into(),
        public_key: "key".into(),
        csr: "csr".into(),
    };
    let sat = store.create_satellite(new, "op", T0).await.unwrap();
    let approval = SatelliteApproval {
        satellite_id: sat.id,
        virtual_account_ids: vec![lab.id],
        certificate_expires_at: T0.plus_days(365),
        answer: "{}".into(),
    };
    (store.approve_satellite(approval, "op", T0).await.unwrap(), lab)
}

/// A request as the cloud applies it.
fn sync_of(sat: &Satellite, draft: &SyncDraft, full: bool, parts: Vec<Result<PoolInstances>>) -> SatelliteSync {
    SatelliteSync {
        satellite_id: sat.id,
        sequence: draft.sequence,
        acknowledges: draft.acknowledges,
        full,
        interval_days: 7,
        parts: Box::new(parts.into_iter()),
    }
}

fn in_use(counts: &PoolCounts) -> i64 {
    counts.in_use.get(TAG).copied().unwrap_or(0)
}

/// A request carries the satellite's instances and usage up, once; a request that fails part
/// way or names a pool the satellite does not serve changes nothing; the next (standard)
/// request carries only what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_applies_a_request_once_all_or_nothing() {
    for ((backend, up, _d1), (_, down, _d2)) in each_backend().await.into_iter().zip(each_backend().await) {
        satellite(&*down).await;
        let (sat, lab) = cloud(&*up).await;
        for sn in ["FCW1", "FCW2"] {
            register(&*down, sn).await;
            use_licenses(&*down, sn, 2).await;
        }
        let (draft, parts) = request(&down, true).await;
        assert_eq!(parts.iter().map(|p| p.instances.len()).sum::<usize>(), 2, "{backend}");
        assert_eq!(parts[0].instances[0].usage, BTreeMap::from([(TAG.to_string(), 2)]), "{backend}");

        // A part the satellite's file fails to give, after a good one: nothing changes.
        let broken = vec![Ok(parts[0].clone()), Err(StoreError::Conflict("part 2 is malformed".into()))];
        let refused = up.apply_satellite_sync(sync_of(&sat, &draft, true, broken), T0).await;
        assert!(matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("malformed")), "{backend}: {refused:?}");
        let foreign = PoolInstances { pool: "Default".into(), ..parts[0].clone() };
        let refused = up.apply_satellite_sync(sync_of(&sat, &draft, true, vec![Ok(foreign)]), T0).await;
        assert!(matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("does not serve")), "{backend}");
        assert_eq!(up.satellite_instances(sat.id).await.unwrap(), [], "{backend}: nothing changed");
        assert_eq!(up.satellite(sat.id).await.unwrap().unwrap().sync_sequence, 0, "{backend}");

        let good = || sync_of(&sat, &draft, true, parts.iter().cloned().map(Ok).collect());
        let outcome = up.apply_satellite_sync(good(), T0).await.unwrap();
        assert_eq!((outcome.satellite.sync_sequence, outcome.satellite.sync_interval_days), (1, 7), "{backend}");
        assert_eq!(up.satellite_instances(sat.id).await.unwrap(), parts, "{backend}");
        assert_eq!(in_use(&up.pool_counts(lab.id, T0).await.unwrap()), 4, "{backend}");
        let replayed = up.apply_satellite_sync(good(), T0).await;
        assert!(matches!(&replayed, Err(StoreError::Conflict(m)) if m.contains("replayed")), "{backend}");
        assert_eq!(in_use(&up.pool_counts(lab.id, T0).await.unwrap()), 4, "{backend}: not counted twice");

        // The response applied, a device changes its usage and another leaves: only they go up.
        let response = AppliedSync {
            local_account: "Plant".into(),
            sequence: draft.sequence,
            pools: Vec::new(),
            removed: Vec::new(),
            released: Vec::new(),
        };
        down.apply_sync_response(response.clone(), "op", T0).await.unwrap();
        let stale = down.apply_sync_response(response, "op", T0).await;
        assert!(matches!(&stale, Err(StoreError::Conflict(m)) if m.contains("replayed")), "{backend}");
        use_licenses(&*down, "FCW1", 3).await;
        down.remove_instance("id-FCW2", "instance", "op", T0).await.unwrap();
        let (next, parts) = request(&down, false).await;
        let gone = vec![("C9300-48P".to_string(), "FCW2".to_string())];
        let changed: Vec<_> = parts.iter().map(|p| (p.pool.as_str(), p.instances.len(), &p.removed)).collect();
        assert_eq!(changed, [("Lab", 1, &gone)], "{backend}");
        up.apply_satellite_sync(sync_of(&sat, &next, false, parts.into_iter().map(Ok).collect()), T0).await.unwrap();
        assert_eq!(in_use(&up.pool_counts(lab.id, T0).await.unwrap()), 3, "{backend}: FCW1's 3, FCW2 gone");
    }
}

/// What the cloud's operator does to a satellite's pool goes down with the responses: an
/// instance removed, the pool reassigned to the cloud with the satellite's next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_and_reassignments_reach_the_satellite() {
    for ((backend, up, _d1), (_, down, _d2)) in each_backend().await.into_iter().zip(each_backend().await) {
        let local_lab = satellite(&*down).await;
        let (sat, lab) = cloud(&*up).await;
        for sn in ["FCW1", "FCW2"] {
            register(&*down, sn).await;
            use_licenses(&*down, sn, 1).await;
        }
        let (draft, parts) = request(&down, true).await;
        up.apply_satellite_sync(sync_of(&sat, &draft, true, parts.into_iter().map(Ok).collect()), T0).await.unwrap();

        let udi = RemovedUdi { pool: "Lab".into(), pid: "C9300-48P".into(), sn: "FCW2".into() };
        up.remove_satellite_instance(sat.id, udi.clone(), "op", T0).await.unwrap();
        let unknown = RemovedUdi { sn: "FCW9".into(), ..udi.clone() };
        let refused = up.remove_satellite_instance(sat.id, unknown, "op", T0).await;
        assert!(matches!(refused, Err(StoreError::NotFound(_))), "{backend}: {refused:?}");
        assert_eq!(in_use(&up.pool_counts(lab.id, T0).await.unwrap()), 1, "{backend}");

        let moved = up.reassign_pool(lab.id, None, "op", T0).await.unwrap();
        let expected =
            Reassignment { pool: "Lab".into(), from: Some("satellite sat-1".into()), to: None, pending: true };
        assert_eq!(moved, expected, "{backend}");
        let again = up.reassign_pool(lab.id, None, "op", T0).await;
        assert!(matches!(&again, Err(StoreError::Conflict(m)) if m.contains("waits")), "{backend}: {again:?}");

        let (next, parts) = request(&down, false).await;
        let outcome = up
            .apply_satellite_sync(sync_of(&sat, &next, false, parts.into_iter().map(Ok).collect()), T0)
            .await
            .unwrap();
        assert_eq!((outcome.removed.as_slice(), outcome.released.as_slice()), (&[][..], &["Lab".to_string()][..]));
        assert_eq!(up.satellite_serving_pool(lab.id).await.unwrap(), None, "{backend}: the cloud serves Lab");
        assert_eq!(in_use(&up.pool_counts(lab.id, T0).await.unwrap()), 0, "{backend}: its devices register again");

        let response = AppliedSync {
            local_account: "Plant".into(),
            sequence: next.sequence,
            pools: Vec::new(),
            removed: vec![udi],
            released: outcome.released,
        };
        let unknown = AppliedSync { sequence: next.sequence + 5, ..response.clone() };
        let refused = down.apply_sync_response(unknown, "op", T0).await;
        assert!(matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("never made")), "{backend}");
        let local = down.apply_sync_response(response, "op", T0).await.unwrap();
        assert_eq!((local.acknowledged_sequence, local.last_sync_error), (next.sequence, None), "{backend}");
        assert_eq!(down.released_pool(local_lab.id).await.unwrap().as_deref(), Some("Lab"), "{backend}");
        assert_eq!(down.instances(InstanceFilter::VirtualAccount(local_lab.id)).await.unwrap(), [], "{backend}");
        assert_eq!(down.released_pool_of_token("token-hash").await.unwrap().as_deref(), Some("Lab"), "{backend}");
    }
}

/// Two requests of one satellite applied at once (on PostgreSQL one runs again after a
/// conflict, reading its parts anew from where they were staged): the newer one is applied, the
/// older one only before it or refused as stale, and usage is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_satellite_count_usage_once() {
    for ((backend, up, _d1), (_, down, _d2)) in each_backend().await.into_iter().zip(each_backend().await) {
        satellite(&*down).await;
        let (sat, lab) = cloud(&*up).await;
        for n in 0..200 {
            register(&*down, &format!("FCW{n:03}")).await;
            use_licenses(&*down, &format!("FCW{n:03}"), 1).await;
        }
        let (first, parts) = request(&down, true).await;
        let (second, _) = request(&down, true).await;
        let apply = |draft: SyncDraft| {
            let (up, sync) = (up.clone(), sync_of(&sat, &draft, true, parts.iter().cloned().map(Ok).collect()));
            tokio::spawn(async move { up.apply_satellite_sync(sync, T0).await })
        };
        let (older, newer) = (apply(first), apply(second));
        let (older, newer) = (older.await.unwrap(), newer.await.unwrap());
        assert_eq!(newer.unwrap().satellite.sync_sequence, 2, "{backend}");
        assert!(matches!(&older, Ok(_) | Err(StoreError::Conflict(_))), "{backend}: {older:?}");
        assert_eq!(up.satellite(sat.id).await.unwrap().unwrap().sync_sequence, 2, "{backend}");
        assert_eq!(up.satellite_instances(sat.id).await.unwrap(), parts, "{backend}");
        assert_eq!(in_use(&up.pool_counts(lab.id, T0).await.unwrap()), 200, "{backend}");
        assert!(up.check_counters(T0).await.unwrap().is_empty(), "{backend}");
    }
}
