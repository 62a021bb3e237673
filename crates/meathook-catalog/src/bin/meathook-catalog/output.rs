//! The answers as printed: tab-separated lines with a header, or one JSON
//! document (`--json`). The JSON shapes are part of the command's
//! interface: fields may be added, none is renamed or removed without a
//! major release.
//!
//! ```text
//! list    {"pipeline": "air", "from": "…", "to": "…", "deliveries": [<manifest line>, …]}
//! gaps    {"pipeline": "air", "from": "…", "to": "…", "window_seconds": 3600,
//!          "gaps": [{"window_start": "…", "window_end": "…"}, …]}
//! totals  {"pipeline": null, "from": "…", "to": "…",
//!          "totals": [{"pipeline": "air", "day": "2026-12-01", "files": 24, "rows": 1440, "bytes": 80210}, …]}
//! backfill {"manifest": "spool/deliveries.jsonl", "written": 120}
//! ```
//!
//! Times are RFC 3339 in UTC; a delivery is the manifest's record as it is
//! stored (`"v"` its format version).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use meathook_catalog::DeliveryRecord;
use meathook_catalog::query::{DayTotal, Gap};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::args::show_len;

/// What a subcommand found.
#[derive(Debug)]
pub(crate) enum Answer {
    List {
        pipeline: String,
        from: OffsetDateTime,
        to: OffsetDateTime,
        deliveries: Vec<DeliveryRecord>,
    },
    Gaps {
        pipeline: String,
        from: OffsetDateTime,
        to: OffsetDateTime,
        window: Duration,
        gaps: Vec<Gap>,
    },
    Totals {
        pipeline: Option<String>,
        from: OffsetDateTime,
        to: OffsetDateTime,
        totals: Vec<DayTotal>,
    },
    Backfill {
        manifest: PathBuf,
        written: u64,
    },
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[derive(Serialize)]
struct ListJson<'a> {
    pipeline: &'a str,
    from: String,
    to: String,
    deliveries: &'a [DeliveryRecord],
}

#[derive(Serialize)]
struct GapsJson<'a> {
    pipeline: &'a str,
    from: String,
    to: String,
    window_seconds: u64,
    gaps: Vec<GapJson>,
}

#[derive(Serialize)]
struct GapJson {
    window_start: String,
    window_end: String,
}

#[derive(Serialize)]
struct TotalsJson<'a> {
    pipeline: Option<&'a str>,
    from: String,
    to: String,
    totals: Vec<TotalJson<'a>>,
}

#[derive(Serialize)]
struct TotalJson<'a> {
    pipeline: &'a str,
    day: String,
    files: u64,
    rows: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct BackfillJson {
    manifest: String,
    written: u64,
}

fn json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

impl Answer {
    /// Prints the answer to `out`, and a summary of gaps and back-fills to
    /// standard error in text mode.
    pub(crate) fn print(&self, out: &mut impl Write, as_json: bool) -> io::Result<()> {
        match self {
            Self::List {
                pipeline,
                from,
                to,
                deliveries,
            } => {
                if as_json {
                    return json(
                        out,
                        &ListJson {
                            pipeline,
                            from: rfc3339(*from),
                            to: rfc3339(*to),
                            deliveries,
                        },
                    );
                }
                writeln!(
                    out,
                    "window_start\twindow_end\tpipeline\tdestination\tpath\trows\tbytes\tsha256\tcommit\tdelivered_at\tattempts\tcompacted_into"
                )?;
                for r in deliveries {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        rfc3339(r.window_start),
                        rfc3339(r.window_end),
                        r.pipeline,
                        r.destination,
                        r.path,
                        r.rows,
                        r.bytes,
                        r.sha256,
                        r.commit.as_deref().unwrap_or("-"),
                        rfc3339(r.delivered_at),
                        r.attempts,
                        r.compacted_into.as_deref().unwrap_or("-")
                    )?;
                }
            }
            Self::Gaps {
                pipeline,
                from,
                to,
                window,
                gaps,
            } => {
                if as_json {
                    let gaps = gaps
                        .iter()
                        .map(|g| GapJson {
                            window_start: rfc3339(g.start),
                            window_end: rfc3339(g.end),
                        })
                        .collect();
                    return json(
                        out,
                        &GapsJson {
                            pipeline,
                            from: rfc3339(*from),
                            to: rfc3339(*to),
                            window_seconds: window.as_secs(),
                            gaps,
                        },
                    );
                }
                writeln!(out, "window_start\twindow_end")?;
                for g in gaps {
                    writeln!(out, "{}\t{}", rfc3339(g.start), rfc3339(g.end))?;
                }
                out.flush()?;
                eprintln!(
                    "{} window(s) of {} without a delivery of {pipeline}",
                    gaps.len(),
                    show_len(*window)
                );
            }
            Self::Totals {
                pipeline,
                from,
                to,
                totals,
            } => {
                if as_json {
                    let totals = totals
                        .iter()
                        .map(|t| TotalJson {
                            pipeline: &t.pipeline,
                            day: t.day.to_string(),
                            files: t.files,
                            rows: t.rows,
                            bytes: t.bytes,
                        })
                        .collect();
                    return json(
                        out,
                        &TotalsJson {
                            pipeline: pipeline.as_deref(),
                            from: rfc3339(*from),
                            to: rfc3339(*to),
                            totals,
                        },
                    );
                }
                writeln!(out, "pipeline\tday\tfiles\trows\tbytes")?;
                for t in totals {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        t.pipeline, t.day, t.files, t.rows, t.bytes
                    )?;
                }
            }
            Self::Backfill { manifest, written } => {
                if as_json {
                    return json(
                        out,
                        &BackfillJson {
                            manifest: manifest.to_string_lossy().into_owned(),
                            written: *written,
                        },
                    );
                }
                eprintln!("back-filled {written} delivery records");
            }
        }
        Ok(())
    }
}
