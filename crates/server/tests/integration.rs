//! Every integration test of this crate in one binary: one link instead of one per file, which
//! keeps a clean build small enough for CI's disk and quicker on two cores.

mod common;

mod agent;
mod agent_daemon;
mod agent_failures;
mod arithmetic;
mod availability;
mod batches;
mod credentials;
mod device_conversion;
mod device_protocol;
mod errors;
mod fuzz_regressions;
mod gateway;
mod legacy_api;
mod listings;
mod openapi_contract;
mod operations;
mod pak_conversion;
mod portal;
mod portal_admin;
mod portal_browser;
mod proxy;
mod pypi_client;
mod replicas;
mod reservation;
mod rest_api;
mod satellite;
mod satellite_api;
#[cfg(feature = "postgres")]
mod satellite_postgres;
mod schemathesis;
mod sync;
mod sync_auth;
mod sync_down;
mod sync_stream;
mod tenancy;
mod tls;
mod trustpoints;
