//! Every integration test of this crate in one binary: one link instead of one per file, which
//! keeps a clean build small enough for CI's disk and quicker on two cores.

mod crash;
mod daemon;
mod fuzz_regressions;
mod reservation;
