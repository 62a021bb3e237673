//! The `hub_answers` fuzz target's saved inputs, replayed as an ordinary
//! test: every file in `fuzz/corpus/hub_answers` (real Hub answers) and
//! `fuzz/fixtures/hub_answers` (inputs that once failed) goes through the
//! same harness the fuzzer runs (`fuzz/harness/hub.rs`), so CI checks them
//! without cargo-fuzz. `cargo xtask fuzz` finds new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

#[path = "../../../../fuzz/harness/hub.rs"]
mod harness;

#[test]
fn saved_fuzz_inputs_keep_the_decoders_invariants() {
    meathook_testkit::fuzz::replay("hub_answers", 10, |data| {
        harness::run(data);
        None
    });
}

#[test]
fn the_harness_reads_answers_as_the_seeds_write_them() {
    let (status, headers, body) =
        harness::parse(b"429\r\nretry-after: 7\r\nbad header\r\n\r\n{\"error\":\"x\"}");
    assert_eq!(status, http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers.len(), 1);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(body, b"{\"error\":\"x\"}");
    let (status, headers, body) = harness::parse(b"not a status\n\nbody");
    assert_eq!(status, http::StatusCode::OK);
    assert!(headers.is_empty());
    assert_eq!(body, b"body");
}
