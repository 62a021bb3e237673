//! `inspect --records FILE`: one segment's records as JSON lines, decoded
//! without knowing their type ([`Json`]). One line per record, in order:
//!
//! ```text
//! {"pipeline":"air","window_start":"2026-11-23T10:00:00Z","window_end":"2026-11-23T11:00:00Z",
//!  "incarnation":"0123456789abcdef","frame":{"first_seq":40,"index":0,"count":5},
//!  "seq":40,"index":0,"record":{"station":"S109","value":21.5}}
//! ```
//!
//! (one line in the output). `pipeline` and the window come from the
//! segment's header; `incarnation` (16 hex digits; `null` in format-version-1
//! segments) and the sequence numbers name the batch the segment is
//! delivered as (`incarnation-first_seq-last_seq`); `frame` is the frame the
//! record was appended in (one `ingest` writes one or more frames); `index`
//! counts records within the segment. A record that does not decode has
//! `"error"` in place of `"record"`. Damage (frames lost, a torn tail) is
//! reported on standard error after the records.

use std::io::{self, Write};
use std::path::Path;

use meathook_spool::{SegmentRecords, StdFs};
use serde::Serialize;
use serde_json::Value;

use crate::Failure;
use crate::report::rfc3339;
use crate::value::Json;

#[derive(Debug, Serialize)]
struct Line<'a> {
    pipeline: &'a str,
    window_start: &'a str,
    window_end: &'a str,
    incarnation: Option<&'a str>,
    frame: Frame,
    seq: u64,
    index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Frame {
    first_seq: u64,
    index: u64,
    count: u32,
}

/// Prints the records of the segment at `file` to `out`, then its damage
/// to standard error.
pub(crate) fn print(out: &mut impl Write, file: &Path) -> Result<(), Failure> {
    let mut segment = SegmentRecords::open(&StdFs, file)
        .map_err(|e| Failure::Input(format!("cannot read segment file {}: {e}", file.display())))?;
    let window = segment.window().clone();
    let (start, end) = (rfc3339(window.start), rfc3339(window.end));
    let incarnation = segment.incarnation().map(|i| format!("{i:016x}"));
    loop {
        let frame = segment.next_frame::<Json>().map_err(|e| {
            Failure::Input(format!(
                "reading segment file {} failed: {e}",
                file.display()
            ))
        })?;
        let Some(frame) = frame else { break };
        let meta = Frame {
            first_seq: frame.first_seq,
            index: frame.index,
            count: frame.count,
        };
        for (i, record) in (0u64..).zip(&frame.records) {
            let line = Line {
                pipeline: &window.pipeline,
                window_start: &start,
                window_end: &end,
                incarnation: incarnation.as_deref(),
                frame: meta,
                seq: frame.first_seq.saturating_add(i),
                index: frame.index.saturating_add(i),
                record: record.as_ref().ok().map(|Json(v)| v),
                error: record.as_ref().err().map(String::as_str),
            };
            serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    for problem in segment.problems() {
        eprintln!("meathook-spool: {}: {problem}", file.display());
    }
    if segment.lost() > 0 {
        eprintln!(
            "meathook-spool: {}: {} records lost to damage",
            file.display(),
            segment.lost()
        );
    }
    Ok(())
}
