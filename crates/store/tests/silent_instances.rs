//! The jobs' list of silent instances (`InstanceFilter::SilentSince`): those last heard from at
//! or before the cut-off only, in (PID, serial) order, whatever order they registered and were
//! last heard from in. On SQLite the query finds them by contact time, not by walking every
//! instance in (PID, serial) order (BENCHMARKS.md, "Background jobs at 1,000,000 instances").

use crate::sqlite::{device, fixture_on, report, token, Backend, Fixture};
use smartlic_core::Timestamp;
use smartlic_store::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

async fn silent_instances_are_listed_by_udi_and_only_up_to_the_cut_off(f: Fixture) {
    token(&f, "many", None).await;
    // Registered out of serial order; the last one is heard from again later.
    for (id, sn) in [("i3", "SN-C"), ("i1", "SN-A"), ("i4", "SN-D"), ("i2", "SN-B")] {
        f.store.register_instance(device(id, sn, "many", false), T0).await.unwrap();
    }
    f.store.report_usage(report("i2", &[], T0.plus_days(40)), T0.plus_days(40)).await.unwrap();
    let silent = f.store.instances(InstanceFilter::SilentSince(T0.plus_days(30))).await.unwrap();
    let serials: Vec<&str> = silent.iter().map(|i| i.udi_sn.as_str()).collect();
    assert_eq!(serials, ["SN-A", "SN-C", "SN-D"]);
    let none = f.store.instances(InstanceFilter::SilentSince(T0.plus_days(-1))).await.unwrap();
    assert!(none.is_empty(), "{none:?}");
}

on_each_backend!(silent_instances_are_listed_by_udi_and_only_up_to_the_cut_off);
