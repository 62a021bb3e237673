//! `meathook-spool`: look into a spool directory without changing it.
//!
//! ```text
//! meathook-spool inspect DIR [--json]           segments, windows, records, bytes, oldest age, damage
//! meathook-spool verify DIR [--json]            the same; exit status 1 if anything is damaged
//! meathook-spool inspect --records SEGMENT_FILE one segment's records as JSON lines
//! ```
//!
//! Nothing is modified, no lock is taken (it runs next to a live spool), no
//! symlink is followed and no FIFO waited on. `--json` prints one JSON
//! document (its shape is in `report.rs`); `--records` prints one JSON
//! object per record (`records.rs`), decoded from the spool's self-describing
//! encoding without the record type.
//!
//! Exit status: 0 when done (`inspect` whatever it found, `verify` nothing
//! damaged); 1 when `verify` found damage or something that would stop a
//! spool from starting on the directory; 2 on a usage error or when the
//! directory or segment file cannot be read. A closed pipe (`| head`) ends
//! the output quietly and leaves the status as it would have been.
#![forbid(unsafe_code)]

mod records;
mod report;
mod value;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meathook_spool::{StdFs, inspect};

const EXIT_STATUS: &str = "\
Exit status:
  0  done (inspect: whatever it found; verify: nothing damaged)
  1  verify found damage, or something that would stop a spool from starting there
  2  usage error, or the directory or segment file cannot be read

A closed pipe (| head) ends the output quietly and leaves the status as it would have been.";

/// Inspect and verify meathook spool directories, read-only: nothing is
/// modified, no lock taken, no symlink followed.
#[derive(Debug, Parser)]
#[command(name = "meathook-spool", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a spool directory's segments (state, window, records, bytes,
    /// age, damage), or with --records one segment's records
    #[command(after_help = EXIT_STATUS)]
    Inspect {
        /// The spool directory
        #[arg(required_unless_present = "records", conflicts_with = "records")]
        dir: Option<PathBuf>,
        /// Print this segment file's records as JSON lines (one object per
        /// record, with its pipeline, window, frame and sequence number)
        #[arg(long, value_name = "SEGMENT_FILE")]
        records: Option<PathBuf>,
        /// Print one JSON document instead of text
        #[arg(long)]
        json: bool,
    },
    /// Inspect a spool directory and exit with status 1 if anything is
    /// damaged or would stop a spool from starting on it
    #[command(after_help = EXIT_STATUS)]
    Verify {
        /// The spool directory
        dir: PathBuf,
        /// Print one JSON document instead of text
        #[arg(long)]
        json: bool,
    },
}

/// Why a command stopped early.
#[derive(Debug)]
enum Failure {
    /// Writing the output failed.
    Output(io::Error),
    /// The directory or segment file cannot be read; exit status 2.
    Input(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

fn main() -> ExitCode {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match run(cli, &mut out) {
        Ok(code) => code,
        Err(Failure::Output(e)) => {
            eprintln!("meathook-spool: cannot write the output: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Input(message)) => {
            eprintln!("meathook-spool: {message}");
            ExitCode::from(2)
        }
    }
}

/// `code` once `written` succeeded or hit a closed pipe.
fn quiet_on_closed_pipe(written: Result<(), Failure>, code: ExitCode) -> Result<ExitCode, Failure> {
    match written {
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(e),
        Ok(()) => Ok(code),
    }
}

fn run(cli: Cli, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let (dir, json, verify) = match cli.command {
        Command::Inspect {
            records: Some(file),
            ..
        } => return quiet_on_closed_pipe(records::print(out, &file), ExitCode::SUCCESS),
        Command::Inspect {
            dir: Some(dir),
            json,
            ..
        } => (dir, json, false),
        Command::Inspect { dir: None, .. } => {
            // clap requires DIR unless --records is given.
            return Err(Failure::Input("inspect needs DIR or --records".into()));
        }
        Command::Verify { dir, json } => (dir, json, true),
    };
    let found = inspect(&StdFs, &dir).map_err(|e| {
        Failure::Input(format!(
            "cannot read spool directory {}: {e}",
            dir.display()
        ))
    })?;
    let code = if verify && found.is_damaged() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    let written = print(out, &dir, &found, json, verify);
    quiet_on_closed_pipe(written, code)
}

fn print(
    out: &mut impl Write,
    dir: &Path,
    found: &meathook_spool::Inspection,
    json: bool,
    verify: bool,
) -> Result<(), Failure> {
    if json {
        let report = report::Report::new(dir, found, time::OffsetDateTime::now_utc());
        serde_json::to_writer_pretty(&mut *out, &report).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        write!(out, "{found}")?;
        if verify {
            let verdict = if found.is_damaged() {
                "damage found"
            } else {
                "ok"
            };
            writeln!(out, "verify: {verdict}")?;
        }
    }
    out.flush()?;
    Ok(())
}
