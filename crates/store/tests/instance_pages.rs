//! Keyset pages of instance listings (`Store::instances_page`): the pages cover every instance
//! of the pools asked exactly once, in listing order (pool, then PID and serial), and an
//! instance added or removed between two pages skips or repeats no instance that was there
//! throughout (an `OFFSET` page would shift by one). The event log's pages
//! (`Store::events_before`) likewise, newest first. Pages by position (`Store::instances_at`)
//! follow the same order.

use crate::sqlite::{device, fixture_on, token, Backend, Fixture};
use smartlic_core::Timestamp;
use smartlic_store::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

/// Pages of `limit` instances of `pools`, followed to the end, each page's serials; `between`
/// runs after each page.
async fn pages_of(f: &Fixture, pools: &[i64], limit: i64, mut between: impl AsyncFnMut(usize)) -> Vec<Vec<String>> {
    let (mut pages, mut after) = (Vec::new(), None);
    loop {
        let page = f.store.instances_page(pools.to_vec(), after.clone(), limit).await.unwrap();
        assert!(page.len() as i64 <= limit, "{page:?}");
        let Some(last) = page.last() else { break };
        after = Some(InstanceKey::of(last));
        pages.push(page.iter().map(|i| i.udi_sn.clone()).collect());
        between(pages.len()).await;
    }
    pages
}

async fn pages_cover_every_instance_of_the_pools_once_in_listing_order(f: Fixture) {
    let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
    let other = f.store.create_account("example.org", "Other", "op", T0).await.unwrap();
    token(&f, "many", None).await;
    for (id, sn) in [("i1", "D"), ("i2", "B"), ("i3", "A"), ("i4", "C"), ("i5", "E")] {
        f.store.register_instance(device(id, sn, "many", false), T0).await.unwrap();
    }
    f.store.move_instance("i2", lab.id, "op", T0).await.unwrap();
    f.store.move_instance("i5", lab.id, "op", T0).await.unwrap();
    // The Default pool (created first) then Lab, each by PID and serial.
    let both = [lab.id, f.pool.id];
    for (limit, expected) in [
        (1, vec![vec!["A"], vec!["C"], vec!["D"], vec!["B"], vec!["E"]]),
        (2, vec![vec!["A", "C"], vec!["D", "B"], vec!["E"]]),
        (3, vec![vec!["A", "C", "D"], vec!["B", "E"]]),
        (10, vec![vec!["A", "C", "D", "B", "E"]]),
    ] {
        assert_eq!(pages_of(&f, &both, limit, async |_| {}).await, expected, "limit {limit}");
    }
    assert_eq!(pages_of(&f, &[lab.id], 10, async |_| {}).await, [["B", "E"]]);
    let other_pool = f.store.virtual_accounts(other.id).await.unwrap()[0].id;
    assert!(pages_of(&f, &[other_pool], 10, async |_| {}).await.is_empty());
    assert!(f.store.instances_page(Vec::new(), None, 10).await.unwrap().is_empty());
    // After the last instance: nothing more.
    let last = f.store.instance("i5").await.unwrap().unwrap();
    assert!(f.store.instances_page(both.to_vec(), Some(InstanceKey::of(&last)), 10).await.unwrap().is_empty());
    // By position (the original API's device listing): the same order, and the total.
    let at = async |pools: &[i64], offset, limit| {
        let (total, page) = f.store.instances_at(pools.to_vec(), offset, limit).await.unwrap();
        (total, page.iter().map(|i| i.udi_sn.clone()).collect::<Vec<_>>())
    };
    assert_eq!(at(&both, 0, 10).await, (5, vec!["A".into(), "C".into(), "D".into(), "B".into(), "E".into()]));
    assert_eq!(at(&both, 2, 2).await, (5, vec!["D".into(), "B".into()]));
    assert_eq!(at(&both, 5, 2).await, (5, vec![]));
    assert_eq!(at(&[lab.id], 0, 0).await, (2, vec![]));
    assert_eq!(at(&[], 0, 10).await, (0, vec![]));
}

async fn instances_added_or_removed_between_pages_move_no_other(f: Fixture) {
    token(&f, "many", None).await;
    for n in 0..10 {
        let id = format!("i{n}");
        f.store.register_instance(device(&id, &format!("SN{n:02}"), "many", false), T0).await.unwrap();
    }
    // After each of the first three pages of 3: one instance read already removed, one
    // added before the pages read and one after them.
    let pages = pages_of(&f, &[f.pool.id], 3, async |page| {
        if page > 3 {
            return;
        }
        f.store.remove_instance(&format!("i{}", page * 2 - 2), "removed", "op", T0).await.unwrap();
        let early = device(&format!("early{page}"), &format!("SN00-{page}"), "many", false);
        f.store.register_instance(early, T0).await.unwrap();
        let late = device(&format!("late{page}"), &format!("SN99-{page}"), "many", false);
        f.store.register_instance(late, T0).await.unwrap();
    })
    .await;
    let seen: Vec<String> = pages.concat();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in order, none twice: {pages:?}");
    // Every instance there throughout was listed (i0, i2, i4 were removed after their page),
    // and those added after the pages read.
    for n in 0..10 {
        assert!(seen.contains(&format!("SN{n:02}")), "SN{n:02} skipped: {pages:?}");
    }
    assert!(["SN99-1", "SN99-2", "SN99-3"].iter().all(|sn| seen.contains(&sn.to_string())), "{pages:?}");
    assert!(seen.iter().all(|sn| !sn.starts_with("SN00-")), "added before the pages read: {pages:?}");
}

async fn event_pages_go_back_from_the_newest_each_event_once(f: Fixture) {
    let other = f.store.create_account("example.org", "Other", "op", T0).await.unwrap();
    for n in 0..5 {
        for account in [f.account.id, other.id] {
            let event = NewEvent {
                at: T0.plus_days(n),
                actor: "op".into(),
                kind: "test.event".into(),
                account_id: Some(account),
                virtual_account_id: None,
                object: format!("object-{n}"),
                detail: String::new(),
            };
            f.store.record_event(event).await.unwrap();
        }
    }
    let newest = f.store.events(Some(f.account.id), 1000).await.unwrap();
    let (mut paged, mut before) = (Vec::new(), None);
    loop {
        let page = f.store.events_before(Some(f.account.id), before, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, newest, "every event of the account once, newest first");
    assert!(paged.iter().all(|e| e.account_id == Some(f.account.id)));
    let all = f.store.events_before(None, None, 1000).await.unwrap();
    let older = f.store.events_before(None, Some(all[3].id), 1000).await.unwrap();
    assert_eq!(older, all[4..], "the log of every account, after the fourth newest");
}

on_each_backend!(
    pages_cover_every_instance_of_the_pools_once_in_listing_order,
    instances_added_or_removed_between_pages_move_no_other,
    event_pages_go_back_from_the_newest_each_event_once,
);
