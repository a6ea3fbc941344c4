//! The device side of smartlic: a device identity and signed exchanges with the manager.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod device;
pub mod identity;
pub mod persist;
pub mod reservation;
pub mod running_config;
pub mod session;
pub mod show;
pub mod tls;
