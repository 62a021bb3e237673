//! `cargo xtask bench [NAME]`: release-mode benchmarks.
//!
//! Each benchmark is a `harness = false` bench target in the facade's
//! `benches/` directory. It prints one line per figure,
//! `figure<TAB>key<TAB>value<TAB>unit<TAB>target`, and measures its own
//! baseline in the same run so ratios survive a noisy machine. This command
//! runs it, prints a table and writes
//! `target/meathook-bench/NAME.json` = `{"name": .., "figures": {key: {"value", "unit", "target"}}}`
//! (in cargo's target directory, wherever `CARGO_TARGET_DIR` puts it).
//!
//! `parquet` and `spool` also measure the predecessor crate, `meathook-rs`
//! 0.4.2: its baseline program (`benches/baseline`, a project outside the
//! workspace) is built into the same target directory first and named to
//! the bench in `MEATHOOK_BASELINE_BIN`. If it does not build (it needs
//! crates.io or a filled cargo cache), the bench runs without it and says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cmd::{cargo, output, root, target_dir};

struct Figure {
    key: String,
    value: f64,
    unit: String,
    target: String,
}

pub(crate) fn run(name: Option<&str>) -> Result<(), String> {
    let names = match name {
        Some(name) => vec![name.to_owned()],
        None => all_benches()?,
    };
    if names.is_empty() {
        return Err("no benchmarks in benches/".into());
    }
    let target = target_dir()?;
    let out_dir = target.join("meathook-bench");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    for name in &names {
        let path = root().join("benches").join(format!("{name}.rs"));
        if !path.is_file() {
            return Err(format!(
                "no benchmark {name:?}: {} does not exist; have: {}",
                path.display(),
                all_benches()?.join(", ")
            ));
        }
        eprintln!("== bench: {name}");
        if name == "runtime" {
            // It measures the NEA example as a separate process.
            crate::cmd::run(
                cargo([
                    "build",
                    "--release",
                    "--locked",
                    "--all-features",
                    "--example",
                    "nea_weather",
                ]),
                "the example must build: `cargo build --release --example nea_weather`",
            )?;
        }
        if name == "hf" {
            // The fake Hub runs as its own process, so its memory is not
            // counted as the sink's.
            crate::cmd::run(
                cargo([
                    "build",
                    "--release",
                    "--locked",
                    "-p",
                    "meathook-testkit",
                    "--bin",
                    "fake-hub",
                ]),
                "the fake Hub must build: `cargo build --release -p meathook-testkit --bin fake-hub`",
            )?;
        }
        let mut bench = cargo([
            "bench",
            "--locked",
            "--all-features",
            "--bench",
            name.as_str(),
        ]);
        // The predecessor crate's figures beside ours.
        match matches!(name.as_str(), "parquet" | "spool")
            .then(|| baseline(&target))
            .flatten()
        {
            Some(bin) => bench.env(BASELINE_BIN, bin),
            None => bench.env_remove(BASELINE_BIN),
        };
        let stdout = output(bench)?;
        let figures = parse(&stdout);
        if figures.is_empty() {
            return Err(format!("benchmark {name} printed no figures:\n{stdout}"));
        }
        print_table(name, &figures);
        let json_path = out_dir.join(format!("{name}.json"));
        std::fs::write(&json_path, to_json(name, &figures))
            .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
        eprintln!("   figures written to {}", relative(&json_path));
    }
    Ok(())
}

/// Names the predecessor crate's baseline program to the benches that run it.
const BASELINE_BIN: &str = "MEATHOOK_BASELINE_BIN";

/// Builds the baseline program (release, into `target`); its path, or
/// `None` with a note when it does not build.
fn baseline(target: &Path) -> Option<PathBuf> {
    let mut build = cargo([
        "build",
        "--release",
        "--locked",
        "--manifest-path",
        "benches/baseline/Cargo.toml",
        "--target-dir",
    ]);
    build.arg(target);
    match crate::cmd::run(
        build,
        "it needs meathook-rs 0.4.2 and its dependencies from crates.io (the network, or a filled cargo cache)",
    ) {
        Ok(()) => Some(
            target
                .join("release")
                .join(format!("meathook-baseline{}", std::env::consts::EXE_SUFFIX)),
        ),
        Err(e) => {
            eprintln!("   no figures of the old crate this run: {e}");
            None
        }
    }
}

fn all_benches() -> Result<Vec<String>, String> {
    let dir = root().join("benches");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    Ok(names)
}

fn parse(stdout: &str) -> Vec<Figure> {
    stdout
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
            Some(Figure {
                key,
                value,
                unit,
                target,
            })
        })
        .collect()
}

fn print_table(name: &str, figures: &[Figure]) {
    let width = figures
        .iter()
        .map(|f| f.key.len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!("\n{name}");
    println!(
        "{:<width$}  {:>14}  {:<10}  target",
        "figure", "value", "unit"
    );
    for f in figures {
        println!(
            "{:<width$}  {:>14}  {:<10}  {}",
            f.key,
            format_value(f.value),
            f.unit,
            f.target
        );
    }
    println!();
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn to_json(name: &str, figures: &[Figure]) -> String {
    let mut s = format!("{{\"name\":{},\"figures\":{{", quote(name));
    for (i, f) in figures.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let value = if f.value.is_finite() {
            f.value.to_string()
        } else {
            "null".into()
        };
        let _ = write!(
            s,
            "{}:{{\"value\":{value},\"unit\":{},\"target\":{}}}",
            quote(&f.key),
            quote(&f.unit),
            quote(&f.target)
        );
    }
    s.push_str("}}\n");
    s
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_parsed_and_written_as_json() {
        let out = "warming up\nfigure\tops\t1234.5\trecords/s\t>= 1000\nfigure\tratio\t0.93\tx\t\nnoise\n";
        let figures = parse(out);
        assert_eq!(figures.len(), 2);
        assert_eq!(
            to_json("b\"x", &figures),
            "{\"name\":\"b\\\"x\",\"figures\":{\"ops\":{\"value\":1234.5,\"unit\":\"records/s\",\"target\":\">= 1000\"},\
             \"ratio\":{\"value\":0.93,\"unit\":\"x\",\"target\":\"\"}}}\n"
        );
    }
}
