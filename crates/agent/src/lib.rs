//! The device side of smartlic: a device identity and signed exchanges with the manager.

pub mod client;
pub mod identity;
pub mod tls;
