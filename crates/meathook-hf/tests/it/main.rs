//! The integration tests: one module per file, all linked into one test
//! binary, so the crate's tests cost one link instead of one per file. Run
//! one file's tests with `cargo test --test it <file>::`.

mod support;
mod year;

mod budget;
mod compaction;
mod conflict;
mod conformance;
mod faults;
mod fuzz_corpus;
mod hostile;
mod interop;
mod kill;
mod permanent;
mod squash;
