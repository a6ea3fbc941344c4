//! Device-led conversion in the store (V-1), on every backend: refused where it is not enabled
//! (nothing changes), deposited once per device in one transaction with its event, and
//! "already converted" for the device ever after, even registered again.

use crate::sqlite::{device, fixture_on, token, Backend, Fixture};
use smartlic_core::Timestamp;
use smartlic_store::conversion::*;
use smartlic_store::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn backends() -> Vec<Backend> {
    #[allow(unused_mut)] // added to only when built with PostgreSQL
    let mut all = vec![Backend::Sqlite];
    #[cfg(feature = "postgres")]
    all.push(Backend::Postgres);
    all
}

fn leaf(count: i64) -> ConvertedItem {
    ConvertedItem { legacy: "ACI-LEAF-ADV".into(), count, tag: "ACI Advantage".into(), quantity: count }
}

fn conversion(instance: &str) -> DeviceConversion {
    DeviceConversion { instance_id: instance.into(), items: vec![leaf(2)], unknown: vec!["OLD-THING".into()] }
}

async fn converted_events(f: &Fixture) -> Vec<Event> {
    let events = f.store.events(Some(f.account.id), 100).await.unwrap();
    events.into_iter().filter(|e| e.kind == "license.converted").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_converts_once_where_conversion_is_enabled() {
    for backend in backends() {
        let Some(f) = fixture_on(backend).await else { continue };
        token(&f, "t", None).await;
        f.store.register_instance(device("i1", "A", "t", false), T0).await.unwrap();
        assert_eq!(f.store.conversion_settings(f.account.id).await.unwrap(), ConversionSettings::default());

        // Off by default: refused, nothing deposited, nothing spent.
        let refused = f.store.convert_device(conversion("i1"), T0).await.unwrap();
        assert_eq!(refused, ConversionOutcome::NotEnabled);
        assert!(f.store.licenses(f.pool.id).await.unwrap().is_empty());
        assert!(converted_events(&f).await.is_empty());

        // Enabled for the device's pool: deposited with the marker, one event, counts follow.
        let on = f.store.set_conversion_enabled(f.account.id, Some(f.pool.id), true, "admin", T0).await.unwrap();
        assert!(on.allows(f.pool.id) && !on.account);
        let done = f.store.convert_device(conversion("i1"), T0).await.unwrap();
        let ConversionOutcome::Converted { virtual_account_id, licenses } = done else { panic!("{done:?}") };
        assert_eq!(virtual_account_id, f.pool.id);
        assert_eq!(f.store.licenses(f.pool.id).await.unwrap(), licenses);
        assert_eq!((licenses[0].sku.as_str(), licenses[0].quantity), ("DLC:ACI-LEAF-ADV", 2));
        assert_eq!(f.store.pool_counts(f.pool.id, T0).await.unwrap().purchased["ACI Advantage"], 2);
        let events = converted_events(&f).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].object, "PID:C9500-32C,SN:A");
        assert!(
            events[0].detail.contains("2 ACI-LEAF-ADV -> 2 ACI Advantage") && events[0].detail.contains("OLD-THING")
        );

        // Once per device in its lifetime: again, or registered again under a new instance.
        let later = T0.plus_days(1);
        assert_eq!(
            f.store.convert_device(conversion("i1"), later).await.unwrap(),
            ConversionOutcome::AlreadyConverted { at: T0 }
        );
        f.store.register_instance(device("i2", "A", "t", true), later).await.unwrap();
        assert_eq!(
            f.store.convert_device(conversion("i2"), later).await.unwrap(),
            ConversionOutcome::AlreadyConverted { at: T0 }
        );
        assert_eq!(f.store.licenses(f.pool.id).await.unwrap().len(), 1);
        assert_eq!(converted_events(&f).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_setting_covers_every_pool_and_a_foreign_pool_is_not_found() {
    for backend in backends() {
        let Some(f) = fixture_on(backend).await else { continue };
        let lab = f.store.create_virtual_account(&f.account, "Lab", "", "op", T0).await.unwrap();
        token(&f, "t", None).await;
        f.store.register_instance(device("i1", "A", "t", false), T0).await.unwrap();
        let on = f.store.set_conversion_enabled(f.account.id, None, true, "admin", T0).await.unwrap();
        assert!(on.account && on.allows(lab.id) && on.allows(f.pool.id));
        assert!(matches!(
            f.store.convert_device(conversion("i1"), T0).await.unwrap(),
            ConversionOutcome::Converted { .. }
        ));

        let other = f.store.create_account("other.com", "Other", "op", T0).await.unwrap();
        let foreign = f.store.set_conversion_enabled(other.id, Some(lab.id), true, "admin", T0).await;
        assert!(matches!(foreign, Err(StoreError::NotFound(_))), "{foreign:?}");
        assert_eq!(f.store.conversion_settings(other.id).await.unwrap(), ConversionSettings::default());
        let unknown = f.store.convert_device(conversion("nope"), T0).await;
        assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
        // Each change is on record.
        let settings = f.store.events(Some(f.account.id), 100).await.unwrap();
        assert!(settings.iter().any(|e| e.kind == "conversion.setting" && e.detail == "device-led conversion enabled"));
    }
}

/// A device whose answer was lost asks again while its first request is still being served:
/// of eight requests at once exactly one converts, the others find it already converted, and
/// the licenses are deposited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_one_device_racing_convert_once() {
    for backend in backends() {
        let Some(f) = fixture_on(backend).await else { continue };
        token(&f, "t", None).await;
        f.store.register_instance(device("i1", "A", "t", false), T0).await.unwrap();
        f.store.set_conversion_enabled(f.account.id, None, true, "admin", T0).await.unwrap();
        let racing: Vec<_> = (0..8)
            .map(|_| {
                let store = f.store.clone();
                tokio::spawn(async move { store.convert_device(conversion("i1"), T0).await.unwrap() })
            })
            .collect();
        let mut converted = 0;
        for r in racing {
            match r.await.unwrap() {
                ConversionOutcome::Converted { .. } => converted += 1,
                ConversionOutcome::AlreadyConverted { at } => assert_eq!(at, T0),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(converted, 1);
        assert_eq!(f.store.licenses(f.pool.id).await.unwrap().len(), 1);
        assert_eq!(f.store.pool_counts(f.pool.id, T0).await.unwrap().purchased["ACI Advantage"], 2);
        assert_eq!(converted_events(&f).await.len(), 1);
    }
}
