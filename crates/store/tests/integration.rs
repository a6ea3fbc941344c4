//! Every integration test of this crate in one binary: one link instead of one per file, which
//! keeps a clean build small enough for CI's disk and quicker on two cores.

mod common;

mod backends;
mod backup;
mod credentials;
mod device_conversion;
mod portal_search;
#[cfg(feature = "postgres")]
mod postgres_replicas;
mod replica_settings;
mod satellite_records;
mod satellite_sync;
#[macro_use]
mod sqlite;
mod stored_values;
// After `sqlite`, whose `on_each_backend!` it uses.
mod instance_pages;
mod pak_conversion;
mod silent_instances;
// After `sqlite`, whose `on_each_backend!` it uses.
mod racing_waves;
