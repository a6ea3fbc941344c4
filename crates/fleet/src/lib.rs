//! The fleet orchestrator (seed 002, SPEC F-1..F-5): a service provider's customers, their
//! application clusters of nodes (each node a device running the smart agent), licensed against
//! one or more managers through their REST APIs.
//!
//! The seed's vocabulary lives in pure modules with no I/O ([`codes`], [`cluster_status`],
//! [`report`]); the orchestrator's database ([`db`]), manager and node clients ([`manager`],
//! [`node`]), jobs ([`jobs`], [`ops`]) and REST API ([`api`], [`server`]) build on them.

pub mod api;
pub mod api_reports;
pub mod cluster_status;
pub mod codes;
pub mod db;
pub mod jobs;
pub mod manager;
pub mod model;
pub mod node;
pub mod openapi;
pub mod ops;
pub mod report;
pub mod server;
