//! The integration tests: one module per file, all linked into one test
//! binary, so the crate's tests cost one link instead of one per file. Run
//! one file's tests with `cargo test --test it <file>::`.

mod compact_cli;
mod deploy;
mod fresh_spool;
mod nea_example;
mod nea_once;
mod status_page;
