//! The `spool_recovery` fuzz target's saved inputs, replayed as an ordinary
//! test: every file in `fuzz/corpus/spool_recovery` (seeds) and
//! `fuzz/fixtures/spool_recovery` (inputs that once failed) goes through
//! the same harness the fuzzer runs (`fuzz/harness/spool.rs`), so CI checks
//! them without cargo-fuzz. `cargo xtask fuzz` finds new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

#[path = "../../../../fuzz/harness/spool.rs"]
mod harness;

#[test]
fn saved_fuzz_inputs_keep_the_spool_invariants() {
    let (mut delivered, mut lost) = (0, 0);
    meathook_testkit::fuzz::replay("spool_recovery", 5, |data| {
        let outcome = harness::run(data);
        delivered += outcome.delivered;
        lost += outcome.lost;
        (outcome.recovered > 0 && !outcome.flushed)
            .then(|| "recovered records were not flushed".to_owned())
    });
    // The seeds hold valid segments and damaged ones: the harness must have
    // seen both, or it is not testing what it claims.
    assert!(delivered > 0, "no seed delivered a record");
    assert!(lost > 0, "no seed lost a record to damage");
}
