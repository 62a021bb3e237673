//! The `spool_recovery` fuzz target's saved inputs, replayed as an ordinary
//! test: every file in `fuzz/corpus/spool_recovery` (seeds) and
//! `fuzz/fixtures/spool_recovery` (inputs that once failed) goes through
//! the same harness the fuzzer runs (`fuzz/harness/spool.rs`), so CI checks
//! them without cargo-fuzz. `cargo xtask fuzz` finds new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

#[path = "../../../fuzz/harness/spool.rs"]
mod harness;

use std::path::PathBuf;

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("spool_recovery");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    files.sort();
    files
}

#[test]
fn saved_fuzz_inputs_keep_the_spool_invariants() {
    let seeds = inputs("corpus");
    assert!(seeds.len() >= 5, "the seed corpus is missing: {seeds:?}");
    let mut failed = Vec::new();
    let mut delivered = 0;
    let mut lost = 0;
    for file in seeds.iter().chain(&inputs("fixtures")) {
        let data = std::fs::read(file).unwrap();
        match std::panic::catch_unwind(|| harness::run(&data)) {
            Ok(outcome) => {
                delivered += outcome.delivered;
                lost += outcome.lost;
                if outcome.recovered > 0 && !outcome.flushed {
                    failed.push(format!(
                        "{}: recovered records were not flushed",
                        file.display()
                    ));
                }
            }
            Err(_) => failed.push(file.display().to_string()),
        }
    }
    assert!(
        failed.is_empty(),
        "inputs that break the harness: {failed:#?}"
    );
    // The seeds hold valid segments and damaged ones: the harness must have
    // seen both, or it is not testing what it claims.
    assert!(delivered > 0, "no seed delivered a record");
    assert!(lost > 0, "no seed lost a record to damage");
}
