//! Satellites' registrations and local accounts' records, on every backend (see `backends`):
//! a registration repeated with its key is the same one, with another key a conflict; a pool
//! has one satellite; local accounts keep their synchronisation settings and failures.

use crate::backends::each_backend;
use smartlic_core::Timestamp;
use smartlic_store::satellite::*;
use smartlic_store::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn registration(account_id: i64, key: &str) -> NewSatellite {
    NewSatellite {
        account_id,
        name: "sat-1".into(),
        local_account: "lab".into(),
        manager_id: "m-1".into(),
        key_algorithm: "ed25519".into(),
        public_key: key.into(),
        csr: "csr".into(),
    }
}

#[tokio::test]
async fn a_satellite_registers_once_per_key_and_serves_its_pools_alone() {
    for (backend, store, _dir) in each_backend().await {
        let account = store.create_account("example.com", "Example", "op", T0).await.unwrap();
        let pool = store.virtual_account(account.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
        let sat = store.create_satellite(registration(account.id, "k1"), "op", T0).await.unwrap();
        assert_eq!(sat.status(), "pending", "{backend}");
        let again = store.create_satellite(registration(account.id, "k1"), "op", T0).await.unwrap();
        assert_eq!(again, sat, "{backend}: the same registration answers the same record");
        let other_key = store.create_satellite(registration(account.id, "k2"), "op", T0).await;
        assert!(matches!(other_key, Err(StoreError::Conflict(_))), "{backend}: {other_key:?}");

        let approval = |satellite_id| SatelliteApproval {
            satellite_id,
            virtual_account_ids: vec![pool.id],
            certificate_expires_at: T0.plus_days(365),
            answer: "{}".into(),
        };
        let approved = store.approve_satellite(approval(sat.id), "op", T0).await.unwrap();
        assert_eq!((approved.pools.as_slice(), approved.status()), (&["Default".to_string()][..], "approved"));
        let twice = store.approve_satellite(approval(sat.id), "op", T0).await;
        assert!(matches!(twice, Err(StoreError::Conflict(_))), "{backend}: {twice:?}");
        assert_eq!(store.satellite_serving_pool(pool.id).await.unwrap().map(|s| s.id), Some(sat.id), "{backend}");
        assert_eq!(store.satellites().await.unwrap(), std::slice::from_ref(&approved), "{backend}");
        assert_eq!(store.satellite(sat.id).await.unwrap(), Some(approved), "{backend}");
    }
}

#[tokio::test]
async fn local_accounts_keep_where_they_were_sent_their_settings_and_failures() {
    for (backend, store, _dir) in each_backend().await {
        let local = store.create_local_account("lab", "example.com", "op", T0).await.unwrap();
        assert_eq!(local.status(), "not registered", "{backend}");
        let dup = store.create_local_account("lab", "other.com", "op", T0).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{backend}: {dup:?}");
        let sent = store.local_account_sent("lab", 7, "https://cloud.example", "op", T0).await.unwrap();
        assert_eq!((sent.status(), sent.cloud_satellite_id), ("registration sent", Some(7)), "{backend}");
        let settings = SyncSettings { interval_days: Some(7), cloud_url: None };
        assert_eq!(store.set_sync_settings("lab", settings, "op", T0).await.unwrap().sync_interval_days, 7);
        let failed = store.record_sync_failure("lab", "cloud unreachable", "op", T0).await.unwrap();
        assert_eq!((failed.last_attempt_at, failed.last_sync_error.as_deref()), (Some(T0), Some("cloud unreachable")));
        assert_eq!(store.local_accounts().await.unwrap(), std::slice::from_ref(&failed), "{backend}");
        assert_eq!(store.local_account("lab").await.unwrap(), Some(failed), "{backend}");
        assert_eq!(store.released_pool(1).await.unwrap(), None, "{backend}");
        assert_eq!(store.released_pool_of_token("nope").await.unwrap(), None, "{backend}");
    }
}
