//! Lists the parquet files of a dataset directory (any record type: the
//! NEA example's, or a pipeline of your own), with their row counts, and
//! prints a few rows read back, one JSON object each.
//!
//! ```sh
//! cargo run --example show_dataset -- target/meathook/dataset [ROWS]
//! ```
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its output

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn parquet_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: show_dataset DIR [ROWS]");
        return ExitCode::from(2);
    };
    let rows_to_show: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let files = match parquet_files(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("show_dataset: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if files.is_empty() {
        println!("no parquet files under {}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut total = 0;
    for path in &files {
        let relative = path.strip_prefix(&dir).unwrap_or(path).display();
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        // The columns decide the fields: any record type reads.
        match meathook::parquet::read_parquet_json(path) {
            Ok(rows) => {
                total += rows.len();
                println!("{relative}  {} rows  {bytes} bytes", rows.len());
                for row in rows.iter().take(rows_to_show) {
                    println!("    {}", serde_json::Value::Object(row.clone()));
                }
            }
            Err(e) => {
                eprintln!("show_dataset: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{} files, {total} rows", files.len());
    ExitCode::SUCCESS
}
