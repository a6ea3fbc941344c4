//! The licensing domain of smartlic, free of I/O: time passes in as a value, storage and
//! transport live in other crates. Everything here can be tested in microseconds.

pub mod agent;
pub mod catalog;
pub mod compliance;
pub mod csv;
pub mod license;
pub mod role;
pub mod time;
pub mod token;
pub mod validate;

pub use catalog::{Catalog, CatalogError};
pub use compliance::{Ledger, TagBalance};
pub use license::{LicenseKind, LicenseTerm};
pub use role::Role;
pub use time::{Clock, SimulatedClock, SystemClock, Timestamp};
pub use token::{TokenFacts, TokenStatus};
pub use validate::Invalid;
