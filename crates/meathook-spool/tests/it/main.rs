//! The integration tests: one module per file, all linked into one test
//! binary, so the crate's tests cost one link instead of one per file. Run
//! one file's tests with `cargo test --test it <file>::`.

mod support;

mod basic;
mod cli;
mod conformance;
mod delivery;
mod faults;
mod format_v1;
mod fuzz_corpus;
mod hostile_dir;
mod limits;
mod model;
mod outage;
mod recovery;
mod sigkill_soak;
