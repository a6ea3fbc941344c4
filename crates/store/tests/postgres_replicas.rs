//! Two stores on one PostgreSQL database, each with its own pool of connections, as two
//! `smartlic server` replicas have: what one accepts the other sees, and concurrent changes
//! split across them add up exactly. Ignored with the reason when PostgreSQL is not installed,
//! unless `SMARTLIC_REQUIRE_POSTGRES` is set.

use crate::sqlite::{deposit, device, fixture_on, ledger_check, report, reserved, reserving, token, Backend, Fixture};
use smartlic_core::Timestamp;
use smartlic_store::*;
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_800_000_000_000);

/// A fixture on PostgreSQL and a second replica's store on its database, opened while the
/// first is open (its migrations find nothing left to do), or None when PostgreSQL is missing.
async fn replicas() -> Option<(Fixture, Arc<dyn Store>)> {
    let f = fixture_on(Backend::Postgres).await?;
    let other = open(&f.url).await.unwrap();
    Some((f, other))
}

/// Each of `n` tasks runs `job` on one replica or the other in turn; answers their results.
async fn split<T: Send + 'static, F>(
    stores: [&Arc<dyn Store>; 2],
    n: usize,
    job: impl Fn(Arc<dyn Store>, usize) -> F,
) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(job(stores[i % 2].clone(), i))).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_registrations_across_two_replicas_on_a_five_use_token_register_exactly_five() {
    let Some((f, other)) = replicas().await else { return };
    token(&f, "five", Some(5)).await;
    let results = split([&f.store, &other], 50, |store, i| async move {
        store.register_instance(device(&format!("i{i}"), &format!("SN{i}"), "five", false), T0).await
    })
    .await;
    let mut registered = 0;
    for r in results {
        match r {
            Ok(_) => registered += 1,
            Err(RegisterRefusal::InvalidToken) => {}
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    assert_eq!(registered, 5);
    assert_eq!(other.tokens(f.pool.id).await.unwrap()[0].uses, 5);
    assert_eq!(f.store.instance_count().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_across_two_replicas_never_exceed_the_pool() {
    let Some((f, other)) = replicas().await else { return };
    let adv = deposit(&f, &f.pool, "ACI Advantage", 5).await;
    let pool = f.pool.id;
    let results = split([&f.store, &other], 16, |store, i| {
        let adv = adv.clone();
        async move {
            store
                .create_reservations(pool, vec![reserving(&format!("SN{i}"), &[(&adv, 1)])], ledger_check(), "op", T0)
                .await
        }
    })
    .await;
    let mut granted = 0;
    for r in results {
        match r {
            Ok(_) => granted += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(granted, 5);
    assert_eq!(reserved(&other.pool_counts(pool, T0).await.unwrap(), "ACI Advantage"), 5);
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_accepted_by_one_replica_is_refused_by_the_other_and_counters_add_up() {
    let Some((f, other)) = replicas().await else { return };
    token(&f, "t", None).await;
    for i in 0..20 {
        f.store.register_instance(device(&format!("i{i}"), &format!("SN{i}"), "t", false), T0).await.unwrap();
    }
    let first = report("i0", &[("adv", 1)], T0);
    f.store.report_usage(first.clone(), T0).await.unwrap();
    let replay = other.report_usage(UsageReport { usage: [("adv".to_string(), 7)].into(), ..first }, T0).await;
    assert!(matches!(replay, Err(StoreError::Replay)), "{replay:?}");
    assert!(other.consume_nonce("s", "n", T0.plus_days(1)).await.unwrap());
    assert!(!f.store.consume_nonce("s", "n", T0.plus_days(1)).await.unwrap());
    // Twenty devices report 2 each at once, half through each replica: the pool counts 40.
    let results = split([&f.store, &other], 20, |store, i| async move {
        store.report_usage(report(&format!("i{i}"), &[("adv", 2)], T0), T0).await
    })
    .await;
    results.into_iter().for_each(|r| drop(r.unwrap()));
    assert_eq!(other.pool_counts(f.pool.id, T0).await.unwrap().in_use["adv"], 40);
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_a_new_database_once() {
    let Some(cluster) = smartlic_store::postgres::PrivateCluster::shared() else { return };
    let url = DatabaseUrl::Postgres(cluster.fresh_database().unwrap());
    let (a, b) = tokio::join!(open(&url), open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let account = a.create_account("example.com", "Example", "op", T0).await.unwrap();
    assert_eq!(b.account("example.com").await.unwrap(), Some(account));
}
