//! The integration tests: one module per file, all linked into one test
//! binary, so the crate's tests cost one link instead of one per file. Run
//! one file's tests with `cargo test --test it <file>::`.

mod support;

mod compaction;
mod conformance;
mod interop;
mod local_sink;
mod roundtrip;
mod s3;
mod streaming;
mod text_formats;
