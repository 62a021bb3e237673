//! `cargo xtask soak [--seconds N | --minutes N | --kills N]`: the spool's
//! long durability runs — the model test with thousands of random sequences,
//! then the SIGKILL soak, for a number of kills (500 by default) or for a
//! time — which CI runs only in small sizes. The soak prints its figures:
//! spools, kills, records acknowledged, delivered, lost, duplicated and
//! delivered through another spool.
//!
//! `MEATHOOK_MODEL_CASES` sets the model test's size; `MEATHOOK_SOAK_KILLS`
//! and `MEATHOOK_SOAK_SECONDS` the soak's, as the flags do;
//! `MEATHOOK_SOAK_SPOOLS` the number of spools the soak runs at once under
//! one root and one writer pool (8 by default, 1 for a single spool).

use crate::cmd::{cargo, run as sh};

const MODEL_CASES: &str = "5000";
const KILLS: &str = "500";

/// How long the SIGKILL soak runs.
enum Length {
    Kills(String),
    Seconds(u64),
}

fn parse(args: &[String]) -> Result<Option<Length>, String> {
    let mut length = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = || {
            it.clone()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{arg} needs a whole number"))
        };
        length = Some(match arg.as_str() {
            "--seconds" => Length::Seconds(value()?),
            "--minutes" => Length::Seconds(value()? * 60),
            "--kills" => Length::Kills(value()?.to_string()),
            other => {
                return Err(format!(
                    "unknown soak argument {other:?}; use --seconds N, --minutes N or --kills N"
                ));
            }
        });
        it.next();
    }
    Ok(length)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let length = match parse(args)? {
        Some(length) => length,
        None => match std::env::var("MEATHOOK_SOAK_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(secs) => Length::Seconds(secs),
            None => {
                Length::Kills(std::env::var("MEATHOOK_SOAK_KILLS").unwrap_or_else(|_| KILLS.into()))
            }
        },
    };
    let cases = std::env::var("MEATHOOK_MODEL_CASES").unwrap_or_else(|_| MODEL_CASES.into());
    eprintln!("== soak: model test, {cases} cases per property");
    let mut model = cargo([
        "test",
        "--locked",
        "--release",
        "-p",
        "meathook-spool",
        "--test",
        "it",
        "model::",
    ]);
    model.env("MEATHOOK_MODEL_CASES", &cases);
    sh(
        model,
        "the failing sequence is printed above; add it as a regression case in crates/meathook-spool/tests/it/model.rs",
    )?;
    let mut soak = cargo([
        "test",
        "--locked",
        "--release",
        "-p",
        "meathook-spool",
        "--test",
        "it",
        "sigkill_soak::sigkill_soak_loses",
        "--",
        "--nocapture",
    ]);
    soak.env_remove("MEATHOOK_SOAK_KILLS")
        .env_remove("MEATHOOK_SOAK_SECONDS");
    match &length {
        Length::Kills(kills) => {
            eprintln!("== soak: SIGKILL soak, {kills} kills");
            soak.env("MEATHOOK_SOAK_KILLS", kills);
        }
        Length::Seconds(secs) => {
            eprintln!("== soak: SIGKILL soak, {secs} s of kills");
            soak.env("MEATHOOK_SOAK_SECONDS", secs.to_string());
        }
    }
    sh(
        soak,
        "rerun with the same length; the message names missing or duplicated ids",
    )
}
