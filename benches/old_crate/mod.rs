//! The predecessor crate's figures, for the benches that set ours beside
//! them: `benches/baseline` (a project of its own, outside the workspace)
//! measures `meathook-rs` 0.4.2 on the same inputs. `cargo xtask bench
//! parquet` and `cargo xtask bench spool` build it and name the binary in
//! [`BIN`]; without it (run directly, or the baseline did not build) the
//! bench still runs and reports why those figures are missing.
#![allow(dead_code)] // each bench uses a part

use std::process::Command;

use crate::support::figure;

/// The environment variable naming the baseline program.
pub(crate) const BIN: &str = "MEATHOOK_BASELINE_BIN";

/// The prefix of the baseline's figures in our report.
pub(crate) const PREFIX: &str = "old_crate_";

/// Figures the baseline reported, by their own key (without [`PREFIX`]).
#[derive(Debug, Default)]
pub(crate) struct Figures(Vec<(String, f64)>);

impl Figures {
    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Reports `ours / old` for the baseline's `key`; NaN if it did not
    /// report `key`.
    pub(crate) fn ratio(&self, name: &str, ours: f64, key: &str, target: &str) {
        let old = self.get(key).unwrap_or(f64::NAN);
        figure(name, ours / old, "x", target);
    }
}

/// Runs the baseline with `args`, reports its figures with [`PREFIX`] and
/// returns them; `None` (and a NaN figure `old_crate_baseline` whose target
/// says why) when there is no baseline to run or it failed.
pub(crate) fn run(args: &[&str]) -> Option<Figures> {
    match try_run(args) {
        Ok(figures) => {
            for (key, value, unit, target) in &figures {
                figure(&format!("{PREFIX}{key}"), *value, unit, target);
            }
            Some(Figures(
                figures.into_iter().map(|(k, v, _, _)| (k, v)).collect(),
            ))
        }
        Err(why) => {
            eprintln!("no figures of the old crate: {why}");
            figure(
                &format!("{PREFIX}baseline"),
                f64::NAN,
                "",
                &format!("not measured: {why}"),
            );
            None
        }
    }
}

type Line = (String, f64, String, String);

fn try_run(args: &[&str]) -> Result<Vec<Line>, String> {
    let Some(bin) = std::env::var_os(BIN) else {
        return Err(format!(
            "{BIN} is not set (`cargo xtask bench` sets it when benches/baseline builds)"
        ));
    };
    let out = Command::new(&bin)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", bin.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "the baseline {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let lines: Vec<Line> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            if parts.next()? != "figure" {
                return None;
            }
            let key = parts.next()?.to_owned();
            let value = parts.next()?.parse().ok()?;
            let unit = parts.next().unwrap_or("").to_owned();
            let target = parts.next().unwrap_or("").to_owned();
            Some((key, value, unit, target))
        })
        .collect();
    if lines.is_empty() {
        return Err(format!("the baseline {args:?} printed no figures"));
    }
    Ok(lines)
}
