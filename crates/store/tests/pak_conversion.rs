//! PAK conversion in the store (V-2), on every backend: an import is all or nothing, a PAK
//! converts in parts only when it allows partial fulfilment, never beyond what it holds (also
//! when conversions race), each conversion with its licenses, its counts and its one event.

use crate::sqlite::{fixture_on, Backend, Fixture};
use smartlic_core::Timestamp;
use smartlic_store::pak::*;
use smartlic_store::*;
use std::collections::BTreeMap;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn line(sku: &str, tag: &str, units: i64, quantity: i64) -> PakLine {
    PakLine { sku: sku.into(), tag: tag.into(), units, quantity, converted: 0 }
}

fn new_pak(pak: &str, partial: bool) -> NewPak {
    NewPak {
        pak: pak.into(),
        order_number: "106386347".into(),
        order_date: "2018-05-07".into(),
        virtual_account_id: None,
        partial_fulfillment: partial,
        lines: vec![
            line("C9500-NW-A", "C9500 Network Advantage", 1, 25),
            line("C9500-DNA-32C-A-10", "C9500 32C DNA Advantage", 10, 2),
        ],
    }
}

fn convert(f: &Fixture, pak: &str, lines: Option<&[(&str, i64)]>) -> ConvertPak {
    let lines = lines.map(|l| l.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>());
    ConvertPak { account_id: f.account.id, pak: pak.into(), virtual_account_id: f.pool.id, lines }
}

fn conflict(e: StoreError) -> String {
    match e {
        StoreError::Conflict(why) => why,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn kinds(f: &Fixture, kind: &str) -> usize {
    f.store.events(Some(f.account.id), 1000).await.unwrap().iter().filter(|e| e.kind == kind).count()
}

async fn an_import_is_all_or_nothing(f: Fixture) {
    let done = f.store.import_paks(f.account.id, vec![new_pak("PAK-A", true)], "op", T0).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status(), PakStatus::NotConverted);
    assert_eq!(done[0].lines.len(), 2);
    // The second batch repeats PAK-A after a new one: refused naming it, the new one not kept.
    let again = vec![new_pak("PAK-B", false), new_pak("PAK-A", false)];
    let why = conflict(f.store.import_paks(f.account.id, again, "op", T0).await.unwrap_err());
    assert!(why.contains("PAK-A") && why.contains("imported already"), "{why}");
    let listed: Vec<String> = f.store.paks(f.account.id).await.unwrap().into_iter().map(|p| p.pak).collect();
    assert_eq!(listed, ["PAK-A"]);
    assert_eq!(kinds(&f, "pak.imported").await, 1);
    // A pool of another smart account is not found, and nothing is imported.
    let other = f.store.create_account("other.example", "Other", "op", T0).await.unwrap();
    let foreign = f.store.virtual_account(other.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
    let mut p = new_pak("PAK-C", true);
    p.virtual_account_id = Some(foreign.id);
    let e = f.store.import_paks(f.account.id, vec![p], "op", T0).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    assert!(f.store.paks(other.id).await.unwrap().is_empty());
    assert_eq!(f.store.paks(f.account.id).await.unwrap().len(), 1);
}

async fn partial_conversions_count_down_and_never_twice(f: Fixture) {
    f.store.import_paks(f.account.id, vec![new_pak("PAK-A", true)], "op", T0).await.unwrap();
    let (first, licenses) =
        f.store.convert_pak(convert(&f, "PAK-A", Some(&[("C9500-NW-A", 10)])), "alice", T0).await.unwrap();
    assert_eq!(
        first.lines,
        [ConvertedLine { sku: "C9500-NW-A".into(), quantity: 10, tag: "C9500 Network Advantage".into(), licenses: 10 }]
    );
    assert_eq!((licenses[0].sku.as_str(), licenses[0].quantity), ("PAK:PAK-A:C9500-NW-A", 10));
    assert_eq!(f.store.licenses(f.pool.id).await.unwrap(), licenses);
    assert_eq!(f.store.pool_counts(f.pool.id, T0).await.unwrap().purchased["C9500 Network Advantage"], 10);
    let pak = f.store.paks(f.account.id).await.unwrap().remove(0);
    assert_eq!(pak.status(), PakStatus::PartiallyConverted);
    assert_eq!(pak.lines.iter().map(PakLine::remaining).collect::<Vec<_>>(), [2, 15]);

    // More than remains: refused naming the SKU and what is left; nothing changes.
    let why = conflict(
        f.store.convert_pak(convert(&f, "PAK-A", Some(&[("C9500-NW-A", 16)])), "alice", T0).await.unwrap_err(),
    );
    assert!(why.contains("'C9500-NW-A' has 15 left") && why.contains("16 asked"), "{why}");
    let why = conflict(f.store.convert_pak(convert(&f, "PAK-A", Some(&[("NOPE", 1)])), "alice", T0).await.unwrap_err());
    assert!(why.contains("no SKU 'NOPE'"), "{why}");
    assert_eq!(f.store.licenses(f.pool.id).await.unwrap().len(), 1);

    // The rest, all at once; then nothing remains and a further conversion is refused.
    let (rest, _) = f.store.convert_pak(convert(&f, "PAK-A", None), "bob", T0.plus_days(1)).await.unwrap();
    assert_eq!(rest.lines.iter().map(|l| (l.quantity, l.licenses)).collect::<Vec<_>>(), [(2, 20), (15, 15)]);
    let counts = f.store.pool_counts(f.pool.id, T0).await.unwrap();
    assert_eq!((counts.purchased["C9500 Network Advantage"], counts.purchased["C9500 32C DNA Advantage"]), (25, 20));
    assert_eq!(f.store.paks(f.account.id).await.unwrap()[0].status(), PakStatus::Converted);
    let why = conflict(f.store.convert_pak(convert(&f, "PAK-A", None), "bob", T0).await.unwrap_err());
    assert!(why.contains("nothing remains"), "{why}");

    // The history, newest first, and one event per conversion.
    let history = f.store.pak_conversions(f.account.id).await.unwrap();
    assert_eq!(
        history.iter().map(|c| (c.actor.as_str(), c.lines.len())).collect::<Vec<_>>(),
        [("bob", 2), ("alice", 1)]
    );
    assert_eq!(history[0].at, T0.plus_days(1));
    assert_eq!(kinds(&f, "pak.converted").await, 2);
}

async fn a_pak_without_partial_fulfilment_converts_whole(f: Fixture) {
    f.store.import_paks(f.account.id, vec![new_pak("PAK-W", false)], "op", T0).await.unwrap();
    let part = convert(&f, "PAK-W", Some(&[("C9500-NW-A", 25)]));
    let why = conflict(f.store.convert_pak(part, "alice", T0).await.unwrap_err());
    assert!(why.contains("partial fulfilment is not allowed"), "{why}");
    assert!(f.store.licenses(f.pool.id).await.unwrap().is_empty());
    assert_eq!(kinds(&f, "pak.converted").await, 0);
    // Every SKU with all it holds is the whole PAK, as is no list at all.
    let whole = convert(&f, "PAK-W", Some(&[("C9500-NW-A", 25), ("C9500-DNA-32C-A-10", 2)]));
    f.store.convert_pak(whole, "alice", T0).await.unwrap();
    assert_eq!(f.store.paks(f.account.id).await.unwrap()[0].status(), PakStatus::Converted);
}

async fn concurrent_conversions_never_exceed_the_pak(f: Fixture) {
    f.store.import_paks(f.account.id, vec![new_pak("PAK-R", true)], "op", T0).await.unwrap();
    // 25 units; eight conversions of 4 race: at most six fit.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = f.store.clone();
            let c = convert(&f, "PAK-R", Some(&[("C9500-NW-A", 4)]));
            tokio::spawn(async move { store.convert_pak(c, &format!("racer{i}"), T0).await })
        })
        .collect();
    let mut done = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => done += 1,
            Err(e) => assert!(conflict(e).contains("left to convert"), "refused for the wrong reason"),
        }
    }
    assert_eq!(done, 6);
    let pak = f.store.paks(f.account.id).await.unwrap().remove(0);
    assert_eq!(pak.lines.iter().find(|l| l.sku == "C9500-NW-A").unwrap().converted, 24);
    assert_eq!(f.store.pool_counts(f.pool.id, T0).await.unwrap().purchased["C9500 Network Advantage"], 24);
    assert_eq!(kinds(&f, "pak.converted").await, 6);
}

on_each_backend!(
    an_import_is_all_or_nothing,
    partial_conversions_count_down_and_never_twice,
    a_pak_without_partial_fulfilment_converts_whole,
    concurrent_conversions_never_exceed_the_pak,
);
