//! The integration tests: one module per file, all linked into one test
//! binary, so the crate's tests cost one link instead of one per file. Run
//! one file's tests with `cargo test --test it <file>::`.

#[cfg(feature = "postgres")]
mod support;

mod catalog;
#[cfg(feature = "cli")]
mod cli;
mod format_v1;
mod manifest;
