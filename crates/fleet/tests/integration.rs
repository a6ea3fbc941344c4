//! The fleet orchestrator's integration tests: one binary, each file a module.

mod common;
mod orchestration;
mod reports;
