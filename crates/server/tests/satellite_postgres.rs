//! A satellite and a cloud each on its own PostgreSQL database (issue 15, part A): the
//! satellite registers a device and synchronises with the cloud over loopback HTTPS, online,
//! as on SQLite (`sync.rs`). Ignored, saying why, when PostgreSQL is not installed, unless
//! `SMARTLIC_REQUIRE_POSTGRES` is set.

use crate::common;

use common::satellite::{approved, cloud_over, consistent, device, in_use, satellite_over, sync_now, TAG};
use common::usage;
use smartlic_proto::wire::AuthorizationStatus;
use smartlic_server::data_key::DataKey;
use smartlic_server::DatabaseConfig;
use smartlic_store::postgres::PrivateCluster;
use smartlic_store::DatabaseUrl;

/// A fresh database of the private PostgreSQL server, with the data key PostgreSQL requires.
fn postgres() -> Option<DatabaseConfig> {
    let url = DatabaseUrl::Postgres(PrivateCluster::shared()?.fresh_database().unwrap());
    let data_key = Some(DataKey::from_secret("satellite-test-data-key-0123456789abcdef").unwrap());
    Some(DatabaseConfig { url: Some(url), data_key })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_satellite_on_postgres_registers_a_device_and_syncs_with_the_cloud() {
    let (Some(cloud_db), Some(sat_db)) = (postgres(), postgres()) else { return };
    let cloud = cloud_over(cloud_db).await;
    let sat = satellite_over(sat_db).await;
    let id = approved(&cloud, &sat, "Lab").await;
    let (client, identity) = device(&sat, &cloud, "FCH0001", 3).await;

    // A full then a standard synchronisation: usage goes up once, and what changes in between.
    let synced = sync_now(&sat, &cloud, true).await;
    assert_eq!((synced["requests_made"].as_i64(), synced["responses_applied"].as_i64()), (Some(1), Some(1)));
    let mirrored = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    assert_eq!(
        (mirrored["instances"][0]["sn"].as_str(), mirrored["instances"][0]["usage"][TAG].as_i64()),
        (Some("FCH0001"), Some(3))
    );
    assert_eq!(in_use(&cloud, "Lab").await, 3);

    let auth = client.authorize(&identity, &usage(&[(TAG, 5)]), sat.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);
    let synced = sync_now(&sat, &cloud, false).await;
    assert_eq!((synced["responses_applied"].as_i64(), synced["last_error"].as_str()), (Some(2), None), "{synced}");
    assert_eq!(in_use(&cloud, "Lab").await, 5, "the standard synchronisation carried the change");
    consistent(&cloud).await;
    consistent(&sat).await;
}
