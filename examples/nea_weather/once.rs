//! `nea_weather --once [N]`: polls each configured collector N times (one
//! interval apart, as the pipeline would) and prints what each poll
//! returned, with the window the spool files the batch in and the path it
//! will land at. Nothing is written: no spool, no dataset file, no dedupe
//! journal, no catalog entry.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use meathook::contracts::ErrorChain;
use meathook::runtime::Trial;
use meathook::{Pipeline, WindowMeta};
use time::format_description::well_known::Rfc3339;

use crate::reading::Reading;

/// How `--once` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A table per batch, for reading.
    Table,
    /// One JSON object per record, for tools.
    Jsonl,
}

/// One collector to try: its pipeline (whose sink stack is never opened),
/// and its poll interval.
pub(crate) struct Target<C: meathook::Collector<Record = Reading>> {
    pub(crate) pipeline: Pipeline<C, meathook::BoxSink<Reading>>,
    pub(crate) interval: Duration,
}

/// Where files land and how long a spool window is.
pub(crate) struct Landing {
    /// The destination's URL or directory, to put before a file's path.
    pub(crate) destination: String,
    /// The spool's window length.
    pub(crate) window: Duration,
}

impl Landing {
    /// The spool window a batch collected in `stamped` is filed in.
    fn window(&self, stamped: &WindowMeta) -> WindowMeta {
        WindowMeta::containing(stamped.pipeline.clone(), stamped.start, self.window)
    }

    /// The path its file lands at; the spool names the batch when it is
    /// written, so its identity is shown as a pattern.
    fn path(&self, window: &WindowMeta) -> String {
        format!(
            "{}/{}b<spool>-<first>-<last>.parquet",
            self.destination.trim_end_matches('/'),
            meathook::files::layout::window_prefix(window)
        )
    }
}

/// Polls every target `polls` times and prints each batch; exit status 1
/// if any poll failed.
pub(crate) async fn run<C>(
    targets: Vec<Target<C>>,
    landing: &Landing,
    polls: u32,
    format: Format,
) -> ExitCode
where
    C: meathook::Collector<Record = Reading>,
{
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for mut target in targets {
        for poll in 1..=polls {
            if poll > 1 {
                tokio::time::sleep(target.interval).await;
            }
            let name = target.pipeline.name().to_owned();
            let text = match target.pipeline.try_once().await {
                Ok(trial) => match format {
                    Format::Table => table(&name, poll, &trial, landing),
                    Format::Jsonl => json_lines(&name, poll, &trial, landing),
                },
                Err(e) => {
                    failed = true;
                    eprintln!("nea_weather: {name}: poll {poll}: {}", ErrorChain(&e));
                    continue;
                }
            };
            if let Err(e) = std::io::Write::write_all(&mut out, text.as_bytes()) {
                // A closed pipe (`| head`) ends the output quietly.
                return if e.kind() == std::io::ErrorKind::BrokenPipe {
                    ExitCode::SUCCESS
                } else {
                    eprintln!("nea_weather: cannot write the output: {e}");
                    ExitCode::FAILURE
                };
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `t` in UTC, as RFC 3339 (what the dataset stores).
fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// A heading for the batch, then one row per record.
fn table(name: &str, poll: u32, trial: &Trial<Reading>, landing: &Landing) -> String {
    let window = landing.window(&trial.window);
    let mut text = format!(
        "{name}, poll {poll}: {} records ({} repeated within the poll dropped) in {:.2?}\n  window {} .. {}\n  lands at {}\n",
        trial.records.len(),
        trial.deduped,
        trial.took,
        rfc3339(window.start),
        rfc3339(window.end),
        landing.path(&window),
    );
    if trial.records.is_empty() {
        return text;
    }
    let _ = writeln!(
        text,
        "  {:<12} {:<20} {:>10}  unit",
        "station_id", "timestamp", "value"
    );
    for r in &trial.records {
        let _ = writeln!(
            text,
            "  {:<12} {:<20} {:>10}  {}",
            r.station_id,
            rfc3339(r.timestamp),
            r.value,
            r.unit
        );
    }
    text
}

/// One JSON object per record: the record's fields, and where it goes.
fn json_lines(name: &str, poll: u32, trial: &Trial<Reading>, landing: &Landing) -> String {
    let window = landing.window(&trial.window);
    let path = landing.path(&window);
    let mut text = String::new();
    for r in &trial.records {
        let line = serde_json::json!({
            "pipeline": name,
            "poll": poll,
            "window_start": rfc3339(window.start),
            "window_end": rfc3339(window.end),
            "path": path,
            "record": r,
        });
        let _ = writeln!(text, "{line}");
    }
    text
}
