//! The integration tests: one module per file, all linked into one test
//! binary, so the crate's tests cost one link instead of one per file. Run
//! one file's tests with `cargo test --test it <file>::`.

mod support;

mod backpressure;
mod hung_sink;
mod metrics_flood;
mod metrics_http;
mod pipeline_dedupe;
mod pipeline_schedule;
mod satay_hostile;
mod satay_nea;
mod signals;
mod slow_destination;
mod supervisor;
mod try_once;
