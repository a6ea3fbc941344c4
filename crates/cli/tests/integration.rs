//! Every integration test of this crate in one binary: one link instead of one per file, which
//! keeps a clean build small enough for CI's disk and quicker on two cores.

mod common;

mod admin_cli;
mod admin_transfer;
mod agent_config;
mod agent_evaluation;
mod agent_license_status;
mod agent_prompt;
mod agent_registration;
mod agent_walkthrough;
mod backup_restore;
mod bench_replicas;
mod bench_satellite;
mod cli_help;
mod device_conversion_cli;
mod fleet_cli;
mod fleet_reports_cli;
mod gateway;
mod instance_listing;
mod operations;
mod pak_cli;
mod readme_runs;
mod replicas_cli;
mod reservation_walkthrough;
mod satellite_cli;
mod simulate;
mod sync_cli;
mod three_managers;
