//! `cargo xtask soak`: the spool's long durability runs — the model test
//! with thousands of random sequences and the SIGKILL soak with hundreds of
//! kills — which CI runs only in small sizes.
//!
//! `MEATHOOK_MODEL_CASES` and `MEATHOOK_SOAK_KILLS` override the sizes.

use crate::cmd::{cargo, run as sh};

const MODEL_CASES: &str = "5000";
const KILLS: &str = "500";

pub(crate) fn run() -> Result<(), String> {
    let cases = std::env::var("MEATHOOK_MODEL_CASES").unwrap_or_else(|_| MODEL_CASES.into());
    let kills = std::env::var("MEATHOOK_SOAK_KILLS").unwrap_or_else(|_| KILLS.into());
    eprintln!("== soak: model test, {cases} cases per property");
    let mut model = cargo([
        "test",
        "--locked",
        "--release",
        "-p",
        "meathook-spool",
        "--test",
        "model",
    ]);
    model.env("MEATHOOK_MODEL_CASES", &cases);
    sh(
        model,
        "the failing sequence is printed above; add it as a regression case in crates/meathook-spool/tests/model.rs",
    )?;
    eprintln!("== soak: SIGKILL soak, {kills} kills");
    let mut soak = cargo([
        "test",
        "--locked",
        "--release",
        "-p",
        "meathook-spool",
        "--test",
        "sigkill_soak",
        "sigkill_soak_loses",
    ]);
    soak.env("MEATHOOK_SOAK_KILLS", &kills);
    sh(
        soak,
        "rerun with the same MEATHOOK_SOAK_KILLS; the message names missing or duplicated ids",
    )
}
