//! What every benchmark shares: reporting figures to `cargo xtask bench`, and
//! reading the process's peak memory.
#![allow(dead_code, clippy::print_stdout)] // each bench uses a part; stdout is the report channel
#![allow(clippy::expect_used)] // a benchmark aborts on a broken set-up

use std::time::{Duration, Instant};

pub(crate) mod readings;

/// Reports one figure: `cargo xtask bench` collects these lines.
pub(crate) fn figure(key: &str, value: f64, unit: &str, target: &str) {
    println!("figure\t{key}\t{value}\t{unit}\t{target}");
}

/// Reports the spread of repeated runs of one figure as `KEY_min`,
/// `KEY_median` and `KEY_max`; the target is the median's. NaN runs (a run
/// that reported nothing) are left out; none at all reports NaN.
pub(crate) fn spread(key: &str, runs: &[f64], unit: &str, target: &str) {
    let mut v: Vec<f64> = runs.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let at = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    let (min, median, max) = (at(0), at(v.len() / 2), at(v.len().saturating_sub(1)));
    figure(&format!("{key}_min"), min, unit, "");
    figure(&format!("{key}_median"), median, unit, target);
    figure(&format!("{key}_max"), max, unit, "");
}

/// Peak resident set size of this process so far, in bytes (`VmHWM`), or
/// `None` where `/proc` is not available.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `f` `rounds` times and returns the fastest time: the least disturbed
/// by other work on a shared machine.
pub(crate) fn best_of<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let out = f();
        let took = started.elapsed();
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, out));
        }
    }
    best.expect("at least one round")
}

/// CPU seconds (user + system) this process has used, or 0 where `/proc`
/// is not available.
pub(crate) fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}
