//! Replaying the fuzz targets' saved inputs as ordinary tests.
//!
//! Every file in `fuzz/corpus/TARGET` (seeds) and `fuzz/fixtures/TARGET`
//! (inputs that once failed) goes through the target's harness, so CI checks
//! them without cargo-fuzz; `cargo xtask fuzz` finds new ones.

use std::path::{Path, PathBuf};

/// The files of `fuzz/{kind}/{target}`, sorted; none if the folder is
/// missing.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    files.sort();
    files
}

/// Runs `check` on every saved input of `target` (at least `min_seeds`
/// seeds must be there). `check` returns why an input broke an invariant;
/// a panic counts as broken too. Panics naming every broken input.
pub fn replay(target: &str, min_seeds: usize, mut check: impl FnMut(&[u8]) -> Option<String>) {
    let seeds = inputs("corpus", target);
    assert!(
        seeds.len() >= min_seeds,
        "the seed corpus of {target} is missing: {seeds:?}"
    );
    let mut failed = Vec::new();
    for file in seeds.iter().chain(&inputs("fixtures", target)) {
        let data =
            std::fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data))) {
            Ok(None) => {}
            Ok(Some(why)) => failed.push(format!("{}: {why}", file.display())),
            Err(_) => failed.push(format!("{}: panicked", file.display())),
        }
    }
    assert!(
        failed.is_empty(),
        "inputs that break the harness: {failed:#?}"
    );
}
