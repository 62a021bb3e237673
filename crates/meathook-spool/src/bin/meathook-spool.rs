//! `meathook-spool inspect DIR` and `meathook-spool verify DIR`: print a
//! spool directory's segments, windows, record counts, bytes, oldest age and
//! any damage, without modifying anything. `verify` exits with status 1 if
//! anything is damaged or would stop a spool from starting on the directory.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its interface

use std::path::Path;
use std::process::ExitCode;

use meathook_spool::{StdFs, inspect};

const USAGE: &str = "usage: meathook-spool inspect DIR | meathook-spool verify DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, dir) = match args.as_slice() {
        [c, d] if c == "inspect" || c == "verify" => (c.as_str(), Path::new(d)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match inspect(&StdFs, dir) {
        Ok(found) => {
            print!("{found}");
            if command == "verify" && found.is_damaged() {
                println!("verify: damage found");
                ExitCode::from(1)
            } else {
                if command == "verify" {
                    println!("verify: ok");
                }
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!(
                "meathook-spool: cannot read spool directory {}: {e}",
                dir.display()
            );
            ExitCode::from(2)
        }
    }
}
