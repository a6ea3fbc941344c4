//! Waves of concurrent registrations and first authorizations, on every backend: they funnel
//! through one row each (the token's uses, the pool's in-use counter), and every rule must stay
//! exact while they race (on PostgreSQL they run READ COMMITTED, see `postgres/engine.rs`):
//! a token of M uses admits exactly M, a device registers once, the stored counters equal the
//! records (also while operators move and remove the reporting instances), and each answer
//! counts what committed before it, reservations included.

use crate::sqlite::{deposit, device, fixture_on, ledger_check, report, reserved, reserving, token, Backend, Fixture};
use smartlic_core::Timestamp;
use smartlic_store::*;
use std::future::Future;

const T0: Timestamp = Timestamp(1_800_000_000_000);
const ADV: &str = "ACI Advantage";

/// Runs `job(0)` … `job(n - 1)` at once on the runtime's threads; answers their results in order.
async fn at_once<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
    n: usize,
    job: impl Fn(usize) -> F,
) -> Vec<T> {
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(job(i))).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Registers `n` devices `d0` … with an unlimited token.
async fn registered(f: &Fixture, n: usize) {
    token(f, "many", None).await;
    for i in 0..n {
        f.store.register_instance(device(&format!("d{i}"), &format!("SN{i}"), "many", false), T0).await.unwrap();
    }
}

async fn thirty_registrations_on_a_seven_use_token_register_exactly_seven(f: Fixture) {
    token(&f, "seven", Some(7)).await;
    let store = f.store.clone();
    let results = at_once(30, |i| {
        let store = store.clone();
        async move { store.register_instance(device(&format!("i{i}"), &format!("SN{i}"), "seven", false), T0).await }
    })
    .await;
    let refused = results.iter().filter(|r| matches!(r, Err(RegisterRefusal::InvalidToken))).count();
    let registered = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((registered, refused), (7, 23), "{results:?}");
    assert_eq!(f.store.tokens(f.pool.id).await.unwrap()[0].uses, 7);
    assert_eq!(f.store.instance_count().await.unwrap(), 7);
}

async fn racing_registrations_of_one_device_register_it_once(f: Fixture) {
    token(&f, "t", Some(100)).await;
    let store = f.store.clone();
    // Ten keys claim one UDI: one registers it, the others are told it is registered.
    let results = at_once(10, |i| {
        let store = store.clone();
        async move { store.register_instance(device(&format!("k{i}"), "SAME", "t", false), T0).await }
    })
    .await;
    let refused = results.iter().filter(|r| matches!(r, Err(RegisterRefusal::AlreadyRegistered))).count();
    assert_eq!((results.iter().filter(|r| r.is_ok()).count(), refused), (1, 9), "{results:?}");
    // One key sends its registration ten times at once (answers lost): one instance, one use.
    let results = at_once(10, |_| {
        let store = store.clone();
        async move { store.register_instance(device("again", "OTHER", "t", false), T0).await }
    })
    .await;
    for r in &results {
        assert_eq!(r.as_ref().unwrap().instance.id, "again");
    }
    assert_eq!(f.store.tokens(f.pool.id).await.unwrap()[0].uses, 2);
    assert_eq!(f.store.instance_count().await.unwrap(), 2);
}

async fn racing_first_authorizations_keep_the_counters_equal_to_the_records(f: Fixture) {
    const N: usize = 24;
    registered(&f, N).await;
    let store = f.store.clone();
    // Each device uses 2 Advantage, every third one 1 Essentials too.
    let results = at_once(N, |i| {
        let store = store.clone();
        let usage: &[(&str, i64)] = if i % 3 == 0 { &[(ADV, 2), ("ACI Essentials", 1)] } else { &[(ADV, 2)] };
        let report = report(&format!("d{i}"), usage, T0);
        async move { store.report_usage(report, T0).await }
    })
    .await;
    // Each answer counts the reports committed before it and its own: 2, 4, … 2N, once each.
    let mut seen: Vec<i64> = results.into_iter().map(|r| r.unwrap().in_use[ADV]).collect();
    seen.sort();
    assert_eq!(seen, (1..=N as i64).map(|k| 2 * k).collect::<Vec<_>>());
    let counts = f.store.pool_counts(f.pool.id, T0).await.unwrap();
    assert_eq!((counts.in_use[ADV], counts.in_use["ACI Essentials"]), (2 * N as i64, N as i64 / 3));
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
}

/// What one racer gave: a first authorization's counts, or whether a reservation was granted.
#[derive(Debug)]
enum Raced {
    Authorized(PoolCounts),
    Reserved(bool),
}

async fn racing_reservations_and_first_authorizations_agree_on_the_pool(f: Fixture) {
    const N: usize = 6;
    registered(&f, N).await;
    let adv = deposit(&f, &f.pool, ADV, N as i64).await;
    let (store, pool) = (f.store.clone(), f.pool.id);
    let results = at_once(2 * N, |i| {
        let (store, adv) = (store.clone(), adv.clone());
        async move {
            if i % 2 == 0 {
                Raced::Authorized(
                    store.report_usage(report(&format!("d{}", i / 2), &[(ADV, 1)], T0), T0).await.unwrap(),
                )
            } else {
                let asked = vec![reserving(&format!("R{i}"), &[(&adv, 1)])];
                match store.create_reservations(pool, asked, ledger_check(), "op", T0).await {
                    Ok(_) => Raced::Reserved(true),
                    Err(StoreError::Conflict(_)) => Raced::Reserved(false),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    })
    .await;
    let granted = results.iter().filter(|r| matches!(r, Raced::Reserved(true))).count() as i64;
    let mut answers: Vec<(i64, i64)> = results
        .iter()
        .filter_map(|r| match r {
            Raced::Authorized(c) => Some((c.in_use[ADV], reserved(c, ADV))),
            Raced::Reserved(_) => None,
        })
        .collect();
    answers.sort();
    // The authorizations come one after the other (in use 1 … N), each seeing the
    // reservations granted before it; a reservation granted after the last one would have
    // found the pool full, so the last one saw them all.
    assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), (1..=N as i64).collect::<Vec<_>>(), "{results:?}");
    assert!(answers.windows(2).all(|w| w[0].1 <= w[1].1), "{answers:?}");
    assert_eq!(answers[N - 1].1, granted, "{results:?}");
    assert_eq!(reserved(&f.store.pool_counts(pool, T0).await.unwrap(), ADV), granted);
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
}

async fn usage_reports_racing_moves_and_removals_of_their_instances_keep_the_counters_exact(f: Fixture) {
    const N: usize = 8;
    registered(&f, 2 * N).await;
    for i in 0..2 * N {
        f.store.report_usage(report(&format!("d{i}"), &[(ADV, 1)], T0), T0).await.unwrap();
    }
    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    let store = f.store.clone();
    // Each device reports 3 while an operator moves it to Lab (the first N) or removes it.
    let results = at_once(4 * N, |i| {
        let (store, lab, id) = (store.clone(), lab.id, format!("d{}", i / 2));
        async move {
            match (i % 2, i / 2 < N) {
                (0, _) => store.report_usage(report(&id, &[(ADV, 3)], T0), T0).await.map(drop),
                (_, true) => store.move_instance(&id, lab, "op", T0).await.map(drop),
                (_, false) => store.remove_instance(&id, "removed", "op", T0).await.map(drop),
            }
        }
    })
    .await;
    for (i, r) in results.iter().enumerate() {
        // A report after its instance's removal finds it gone; everything else is done.
        let gone = i % 2 == 0 && i / 2 >= N && matches!(r, Err(StoreError::NotFound(_)));
        assert!(r.is_ok() || gone, "racer {i}: {r:?}");
    }
    let counts = f.store.pool_counts(lab.id, T0).await.unwrap();
    assert_eq!(counts.in_use[ADV], 3 * N as i64);
    assert_eq!(f.store.pool_counts(f.pool.id, T0).await.unwrap().in_use.get(ADV), None);
    assert_eq!(f.store.check_counters(T0).await.unwrap(), []);
}

on_each_backend!(
    usage_reports_racing_moves_and_removals_of_their_instances_keep_the_counters_exact,
    thirty_registrations_on_a_seven_use_token_register_exactly_seven,
    racing_registrations_of_one_device_register_it_once,
    racing_first_authorizations_keep_the_counters_equal_to_the_records,
    racing_reservations_and_first_authorizations_agree_on_the_pool,
);
