//! What replicas share through the store (issue 15), on every backend: the CA stored once,
//! the simulated clock's offset with its version, the jobs lease and its run lock.

use crate::backends::{each_backend, each_database, tamper};
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

#[tokio::test]
async fn a_run_lock_is_held_by_one_replica_at_a_time() {
    for (backend, url, _dir) in each_database().await {
        let (a, b) = (open(&url).await.unwrap(), open(&url).await.unwrap());
        let held = a.try_run_lock("jobs").await.unwrap().expect(backend);
        assert!(b.try_run_lock("jobs").await.unwrap().is_none(), "{backend}: held by the other replica");
        assert!(a.try_run_lock("jobs").await.unwrap().is_none(), "{backend}: held by this replica's other run");
        let other = b.try_run_lock("other").await.unwrap().expect("locks of other names are apart");
        other.release().await.unwrap();
        // Given back: the next holder takes it at once.
        held.release().await.unwrap();
        let held = b.try_run_lock("jobs").await.unwrap().expect(backend);
        // Dropped without a word (a run cancelled, a process killed), it is released all the
        // same, by the kernel at once or by PostgreSQL when it sees the session end.
        drop(held);
        let held = eventually(|| a.try_run_lock("jobs")).await.expect(backend);
        if backend == "postgres" {
            // The holder's connection ends from the database's side (a host gone and its
            // connection timed out): the lock goes with the session.
            tamper(
                &url,
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            );
            eventually(|| b.try_run_lock("jobs")).await.expect("the lock of a terminated session was not released");
        }
        drop(held);
    }
}

/// The lock `take` answers within ten seconds of asking again, if any.
async fn eventually<F: std::future::Future<Output = Result<Option<RunLock>>>>(take: impl Fn() -> F) -> Option<RunLock> {
    let taken = async {
        loop {
            if let Some(lock) = take().await.unwrap() {
                break lock;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), taken).await.ok()
}
