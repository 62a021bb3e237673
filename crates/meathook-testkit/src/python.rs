//! The Python interpreter of the venv `cargo xtask ci python` makes
//! (`target/venv`: pyarrow, moto, prometheus-client, huggingface_hub), for
//! the tests that check our output with readers nobody here wrote.

use std::path::{Path, PathBuf};

/// The venv's interpreter (`MEATHOOK_PYTHON`, else `target/venv` of the
/// workspace), or `None` with a message when it is missing. Under
/// `cargo xtask ci`, which sets `MEATHOOK_REQUIRE_PYTHON`, a missing
/// interpreter panics: the interop tests fail instead of skipping.
pub fn interpreter() -> Option<PathBuf> {
    let candidate = std::env::var_os("MEATHOOK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python")
        });
    if candidate.is_file() {
        return Some(candidate);
    }
    let hint = format!(
        "no Python venv at {}: run `cargo xtask ci python` to create it",
        candidate.display()
    );
    assert!(
        std::env::var_os("MEATHOOK_REQUIRE_PYTHON").is_none(),
        "{hint}"
    );
    eprintln!("SKIPPED: {hint}");
    None
}
