//! The command line: subcommands, flags, and the parsers of times and
//! window lengths.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const EXIT_STATUS: &str = "\
Exit status:
  0  answered
  1  the question could not be answered: no manifest, an unreadable manifest,
     the database unreachable or refusing, a failed back-fill
  2  usage error: an unknown flag, a bad value, --from not before --to,
     no --pipeline where the manifest does not name one pipeline

A closed pipe (| head) ends the output quietly with status 0.";

/// The questions users ask of the delivery catalog, answered from the
/// manifest or from PostgreSQL: tab-separated lines with a header, or one
/// JSON document with --json.
#[derive(Debug, Parser)]
#[command(name = "meathook-catalog", version, after_help = EXIT_STATUS)]
pub(crate) struct Cli {
    /// Print one JSON document instead of tab-separated lines
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Deliveries of a pipeline whose window starts in [--from, --to)
    #[command(after_help = EXIT_STATUS)]
    List(Query),
    /// Windows in [--from, --to) with no delivery of a pipeline
    #[command(after_help = EXIT_STATUS)]
    Gaps {
        #[command(flatten)]
        query: Query,
        /// The window length: 90s, 5m, 1h, 1d [default: the length of the
        /// pipeline's latest window in the manifest, else 1h]
        #[arg(long, value_name = "LEN", value_parser = parse_len)]
        window: Option<Duration>,
    },
    /// Files, rows and bytes per pipeline and UTC day of window start
    #[command(after_help = EXIT_STATUS)]
    Totals(Query),
    /// Copy the manifest into PostgreSQL once (needs the postgres feature)
    #[command(after_help = EXIT_STATUS)]
    Backfill {
        /// The JSON-lines manifest
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// PostgreSQL connection string [default: $DATABASE_URL]
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// The catalog's schema in PostgreSQL [default: meathook]
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
    },
}

// Where the answers come from, and which deliveries a question is about.
#[derive(Debug, Args)]
pub(crate) struct Query {
    /// The JSON-lines manifest [default: ./deliveries.jsonl, unless a
    /// database is given]
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: Option<PathBuf>,
    /// PostgreSQL connection string [default: $DATABASE_URL when no
    /// --manifest is given]
    #[arg(long, value_name = "URL")]
    pub(crate) database: Option<String>,
    /// The catalog's schema in PostgreSQL [default: meathook]
    #[arg(long, value_name = "NAME")]
    pub(crate) schema: Option<String>,
    /// The pipeline [default for list and gaps: the manifest's pipeline, if
    /// it records one only; totals: every pipeline]
    #[arg(long, value_name = "NAME")]
    pub(crate) pipeline: Option<String>,
    /// RFC 3339 (2026-12-01T10:00:00Z) or a UTC date (2026-12-01)
    /// [default: 24 hours before --to]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) from: Option<OffsetDateTime>,
    /// The same forms [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) to: Option<OffsetDateTime>,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, date_format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            format!("{text:?} is not a time: use RFC 3339 (2026-12-01T10:00:00Z) or a UTC date (2026-12-01)")
        })
}

fn parse_len(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a window length: use a whole number with s, m, h or d (90s, 5m, 1h, 1d)"
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(bad()),
    }
}

/// A window length as `--window` takes it: `90s`, `5m`, `1h`, `1d`.
pub(crate) fn show_len(len: Duration) -> String {
    let secs = len.as_secs();
    for (unit, scale) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lengths_parse_and_print_back() {
        for text in ["90s", "5m", "1h", "36h", "1d"] {
            let len = parse_len(text).unwrap();
            assert_eq!(parse_len(&show_len(len)).unwrap(), len, "{text}");
        }
        assert_eq!(show_len(Duration::from_secs(7200)), "2h");
        assert_eq!(show_len(Duration::from_secs(90)), "90s");
        for bad in ["", "h", "0h", "5", "5w", "-1h", "99999999999999999999d"] {
            assert!(parse_len(bad).is_err(), "{bad:?}");
        }
    }
}
