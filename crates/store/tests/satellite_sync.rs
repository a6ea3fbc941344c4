//! A satellite's synchronisation request read from a real SQLite file: a part at a time from
//! one snapshot on a reader, so that devices keep registering while a long export runs.

use crate::common;
use smartlic_core::Timestamp;
use smartlic_store::satellite::{LocalApproval, MirroredPool, PoolInstances, SatelliteStore, SYNC_PART};
use smartlic_store::*;
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_800_000_000_000);

/// A satellite's store with an approved local account serving Lab, and a token of Lab.
async fn satellite() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("satellite.db")).await.unwrap();
    store.create_local_account("Plant", "example.com", "op", T0).await.unwrap();
    let approval = LocalApproval {
        local_account: "Plant".into(),
        cloud_satellite_id: 1,
        smart_account_name: "Example".into(),
        certificate: "certificate".into(),
        certificate_expires_at: T0.plus_days(365),
        cloud_ca: "ca".into(),
        pools: vec![MirroredPool { name: "Lab".into(), description: String::new(), licenses: Vec::new() }],
    };
    store.approve_local_account(approval, "op", T0).await.unwrap();
    let account = store.account("example.com").await.unwrap().unwrap();
    let lab = store.virtual_account(account.id, "Lab").await.unwrap().unwrap();
    common::token_in(&store, lab.id, "token-hash", None, T0).await;
    (dir, Arc::new(store))
}

async fn register(store: &SqliteStore, sn: String) {
    let new = NewInstance {
        id: format!("id-{sn}"),
        token_hash: "token-hash".into(),
        udi_pid: "C9300-48P".into(),
        udi_sn: sn.clone(),
        hostname: "sw".into(),
        force: false,
        certificate: CertificateFacts {
            serial: sn.clone(),
            expires_at: T0.plus_days(365),
            key_algorithm: "ed25519".into(),
            public_key: format!("key-of-{sn}"),
        },
        evaluation_used_ms: None,
    };
    store.register_instance(new, T0).await.map_err(|e| e.to_string()).unwrap();
}

/// The next part the read sends, waited for off the async threads.
async fn next_part(parts: &Arc<std::sync::Mutex<std::sync::mpsc::Receiver<PoolInstances>>>) -> Option<PoolInstances> {
    let parts = parts.clone();
    tokio::task::spawn_blocking(move || parts.lock().unwrap().recv().ok()).await.unwrap()
}

/// The read of a full request is held inside its snapshot (it waits for its second part to be
/// taken): a device registers meanwhile, and the request carries the instances as they were
/// when the read began.
#[tokio::test]
async fn a_device_registers_while_a_full_request_is_being_read() {
    let (_dir, store) = satellite().await;
    let mut registering = tokio::task::JoinSet::new();
    for n in 0..=SYNC_PART {
        let store = store.clone();
        registering.spawn(async move { register(&store, format!("FCW{n:05}")).await });
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
    assert_eq!((first.pool.as_str(), first.instances.len()), ("Lab", SYNC_PART));

    // The read is under way (its second part not taken): a registration completes.
    register(&store, "FCWZZZZZ".into()).await;
    assert!(!reading.is_finished(), "the read ended before its last part was taken");

    let second = next_part(&parts).await.expect("a second part");
    let sns: Vec<&str> = second.instances.iter().map(|i| i.sn.as_str()).collect();
    assert_eq!(sns, [format!("FCW{SYNC_PART:05}")], "the snapshot of when the read began");
    assert!(next_part(&parts).await.is_none());
    reading.await.unwrap().unwrap();
}
