//! The spool's benchmarks (being written).
#![allow(missing_docs)]
fn main() {}
