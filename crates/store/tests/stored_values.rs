//! Values of a closed set (principal, reservation and alert kinds, severities, statuses) are
//! stored as text and read back typed: text no version of smartlic wrote is corrupt data, an
//! error naming the column and the value, never read as some default.

use smartlic_core::{Role, Timestamp};
use smartlic_store::*;

use crate::backends::{each_database, tamper};

const T0: Timestamp = Timestamp(1_800_000_000_000);

/// The message of a `Corrupt` error; any other outcome fails the test.
fn corrupt<T: std::fmt::Debug>(read: Result<T>) -> String {
    match read {
        Err(StoreError::Corrupt(why)) => why,
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

#[tokio::test]
async fn a_corrupt_stored_value_is_an_error_naming_its_column_and_value() {
    for (backend, url, _dir) in each_database().await {
        eprintln!("on {backend}");
        let store = open(&url).await.unwrap();
        let account = store.create_account("example.com", "Example", "op", T0).await.unwrap();
        let pool = store.virtual_account(account.id, DEFAULT_VIRTUAL_ACCOUNT).await.unwrap().unwrap();
        let user = NewPrincipal {
            kind: PrincipalKind::User,
            name: "ada".into(),
            login: "ada@example.com".into(),
            secret_hash: None,
            role: Role::SmartAccountAdmin,
            account_id: Some(account.id),
            virtual_account_id: None,
        };
        let user = store.create_principal(user, "op", T0).await.unwrap();
        let universal = NewReservation {
            request_code: "CU-ZC9300:S1-AK9A6sMTr-00".into(),
            kind: ReservationKind::Universal,
            udi_pid: "C9300".into(),
            udi_sn: "S1".into(),
            piid: "piid-S1".into(),
            authorization_code: "<universalPLR>S1</universalPLR>".into(),
            authorization_digest: "digest-S1".into(),
            confirmation_code: "17488c1f".into(),
            licenses: Vec::new(),
        };
        store.create_reservations(pool.id, vec![universal], Box::new(|_, _| Ok(())), "op", T0).await.unwrap();
        let alert = NewAlert {
            kind: AlertKind::InstanceSilent,
            severity: AlertSeverity::Minor,
            account_id: account.id,
            virtual_account_id: Some(pool.id),
            object: "PID:C9300,SN:S1".into(),
            message: "silent".into(),
        };
        store.sync_alerts(vec![alert.clone()], T0).await.unwrap();

        // Read back as written, typed.
        assert_eq!(store.principal_by_id(user.id).await.unwrap().unwrap().kind, PrincipalKind::User);
        let reserved = store.reservations(ReservationFilter::VirtualAccount(pool.id)).await.unwrap();
        assert_eq!((reserved[0].kind, reserved[0].status), (ReservationKind::Universal, ReservationStatus::Reserved));
        let raised = store.alerts(account.id).await.unwrap();
        assert_eq!((raised[0].kind, raised[0].severity), (alert.kind, alert.severity));

        tamper(&url, "UPDATE principals SET kind = 'robot'");
        let why = corrupt(store.principal_by_id(user.id).await);
        assert_eq!(why, "column principals.kind holds 'robot': unknown principal kind 'robot'");
        // Listings refuse as well: nothing is skipped or shown as another kind.
        corrupt(store.principals(Some(account.id)).await);

        tamper(&url, "UPDATE reservations SET kind = 'partial'");
        let why = corrupt(store.reservations(ReservationFilter::Account(account.id)).await);
        assert_eq!(why, "column reservations.kind holds 'partial': unknown reservation kind 'partial'");
        tamper(&url, "UPDATE reservations SET kind = 'universal', status = 'lost'");
        let why = corrupt(store.reservation_by_digest("digest-S1").await);
        assert_eq!(why, "column reservations.status holds 'lost': unknown reservation status 'lost'");

        tamper(&url, "UPDATE alerts SET severity = 'Minor'");
        let why = corrupt(store.alerts(account.id).await);
        assert_eq!(why, "column alerts.severity holds 'Minor': unknown alert severity 'Minor'");
        tamper(&url, "UPDATE alerts SET severity = 'minor', kind = 'disk-full'");
        let why = corrupt(store.alerts(account.id).await);
        assert_eq!(why, "column alerts.kind holds 'disk-full': unknown alert kind 'disk-full'");
        // A write that must read the alerts first changes nothing on corrupt data.
        corrupt(store.sync_alerts(Vec::new(), T0).await);
        let events = store.events(Some(account.id), 100).await.unwrap();
        assert!(!events.iter().any(|e| e.kind == "alert.cleared"), "{events:?}");

        tamper(&url, "UPDATE principals SET kind = 'user', role = 'emperor'");
        let why = corrupt(store.principal("ada@example.com").await);
        assert_eq!(why, "column principals.role holds 'emperor': unknown role");
    }
}

#[test]
fn every_kind_reads_back_from_its_text_and_nothing_else() {
    fn round_trip<T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr>(
        all: &[T],
        text: impl Fn(T) -> &'static str,
    ) where
        T::Err: std::fmt::Display,
    {
        for &value in all {
            assert_eq!(text(value).parse::<T>().ok(), Some(value));
            // Stored text is exact: another spelling is not the same value.
            assert!(text(value).to_uppercase().parse::<T>().is_err());
        }
    }
    round_trip(&[PrincipalKind::User, PrincipalKind::ApiClient], PrincipalKind::as_str);
    round_trip(&[ReservationStatus::Reserved, ReservationStatus::Returned], ReservationStatus::as_str);
    round_trip(&[ReservationKind::Specific, ReservationKind::Universal], ReservationKind::as_str);
    round_trip(&[AlertSeverity::Critical, AlertSeverity::Major, AlertSeverity::Minor], AlertSeverity::as_str);
    let kinds = [
        AlertKind::CountersDrifted,
        AlertKind::PoolOutOfCompliance,
        AlertKind::LicensesExpiring,
        AlertKind::InstanceSilent,
        AlertKind::SynchronizationOverdue,
    ];
    round_trip(&kinds, AlertKind::as_str);
    assert_eq!("".parse::<AlertKind>().unwrap_err().to_string(), "unknown alert kind ''");
}
