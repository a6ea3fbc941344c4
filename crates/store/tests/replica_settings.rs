//! What replicas share through the store (issue 15), on every backend: the CA stored once,
//! the simulated clock's offset with its version, and the jobs lease.

use crate::backends::each_backend;
use smartlic_core::Timestamp;
use smartlic_store::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

#[tokio::test]
async fn the_first_ca_stored_is_the_one_every_replica_gets() {
    for (backend, store, _dir) in each_backend().await {
        assert_eq!(store.stored_ca().await.unwrap(), None, "{backend}");
        let first = StoredCa { cert_pem: "cert one".into(), sealed_key: vec![1, 0, 255] };
        let second = StoredCa { cert_pem: "cert two".into(), sealed_key: vec![2] };
        assert_eq!(store.store_ca(first.clone()).await.unwrap(), first, "{backend}");
        assert_eq!(store.store_ca(second).await.unwrap(), first, "{backend}: the later candidate loses");
        assert_eq!(store.stored_ca().await.unwrap(), Some(first), "{backend}");
    }
}

#[tokio::test]
async fn each_clock_setting_has_a_newer_version() {
    for (backend, store, _dir) in each_backend().await {
        assert_eq!(store.clock_offset().await.unwrap(), None, "{backend}");
        assert_eq!(
            store.set_clock_offset(86_400_000).await.unwrap(),
            ClockOffset { offset_ms: 86_400_000, version: 1 }
        );
        assert_eq!(store.set_clock_offset(-5).await.unwrap(), ClockOffset { offset_ms: -5, version: 2 });
        assert_eq!(store.clock_offset().await.unwrap(), Some(ClockOffset { offset_ms: -5, version: 2 }), "{backend}");
    }
}

#[tokio::test]
async fn a_lease_is_held_by_one_holder_until_it_expires() {
    const TTL: i64 = 60_000;
    for (backend, store, _dir) in each_backend().await {
        assert_eq!(store.lease("jobs").await.unwrap(), None, "{backend}");
        assert!(store.try_lease("jobs", "a", T0, TTL).await.unwrap(), "{backend}: a new lease is taken");
        assert!(!store.try_lease("jobs", "b", T0.plus_ms(TTL - 1), TTL).await.unwrap(), "{backend}: held by a");
        // The holder renews it: it now lasts from the renewal.
        assert!(store.try_lease("jobs", "a", T0.plus_ms(TTL - 1), TTL).await.unwrap(), "{backend}");
        let held = Lease { name: "jobs".into(), holder: "a".into(), expires_at: T0.plus_ms(2 * TTL - 1) };
        assert_eq!(store.lease("jobs").await.unwrap(), Some(held), "{backend}");
        assert!(!store.try_lease("jobs", "b", T0.plus_ms(2 * TTL - 2), TTL).await.unwrap(), "{backend}");
        // Expired: the next one takes it, and the former holder cannot take it back.
        assert!(store.try_lease("jobs", "b", T0.plus_ms(2 * TTL - 1), TTL).await.unwrap(), "{backend}");
        assert!(!store.try_lease("jobs", "a", T0.plus_ms(2 * TTL), TTL).await.unwrap(), "{backend}");
        assert_eq!(store.lease("jobs").await.unwrap().unwrap().holder, "b", "{backend}");
        // Leases of other names are apart.
        assert!(store.try_lease("other", "a", T0, TTL).await.unwrap(), "{backend}");
    }
}
