//! Every integration test of this crate in one binary: one link instead of one per file, which
//! keeps a clean build small enough for CI's disk and quicker on two cores.

mod common;

mod backup;
mod credentials;
mod sqlite;
mod stored_values;
