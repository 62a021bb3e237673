//! Project automation: `cargo xtask <command>`.
//!
//! - `ci [STEP]`: every check CI runs, or one of them.
//! - `bench [NAME]`: release-mode benchmarks, a table and JSON figures.
//! - `soak [--seconds N | --minutes N | --kills N]`: the spool's long model and SIGKILL runs.
//! - `fuzz [TARGET] [--seconds N]`: libFuzzer runs of the spool's recovery and the Hub decoders.
//! - `fake-hub [ARGS]`: the fake HuggingFace Hub as a standalone server.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its interface

mod bench;
mod browser;
mod ci;
mod cmd;
mod demo;
mod fake_hub;
mod fuzz;
mod postgres;
mod promtool;
mod python;
mod soak;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci [STEP]       run every CI step, or one: fmt, clippy, python, promtool, postgres, test, doc, features, deny
  demo            run the NEA example offline for 20 s and show what it wrote
  bench [NAME]    run release benchmarks (all, or benches/NAME.rs); figures in target/meathook-bench/
  soak [--seconds N | --minutes N | --kills N]
                  long durability runs of the spool: the model test, then the SIGKILL soak
                  for that long (500 kills by default); prints kills, acknowledged, delivered,
                  lost and duplicated records
  fuzz [TARGET] [--seconds N]
                  libFuzzer on spool_recovery and hub_answers (or one), N s each (60);
                  installs cargo-fuzz if missing; crashes are saved in fuzz/fixtures/TARGET
  fake-hub [ARGS] the fake HuggingFace Hub on 127.0.0.1 until ctrl-c
                  (--port N, --data DIR, --token T, --read-token T, --multipart-mib N, --chunk-mib N, --no-verify)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(args.get(1).map(String::as_str)),
        Some("bench") => bench::run(args.get(1).map(String::as_str)),
        Some("demo") => demo::run(),
        Some("soak") => soak::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("fake-hub") => fake_hub::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
