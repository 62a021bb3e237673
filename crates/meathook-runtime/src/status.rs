//! The status page: what an operator who opens the metrics listener in a
//! browser sees (`/` and `/status`). Per pipeline: its state, the last poll
//! and its outcome, the last error with its causes, records collected and
//! delivered in the last hour with a chart of records per minute, the
//! spool's backlog and the age of its oldest undelivered record; and a
//! pipeline × hour grid of the windows the catalog recorded as delivered
//! over the last day, where a missing hour stands out as a gap.
//!
//! Plain server-rendered HTML with inline SVG and CSS: no script, no
//! external asset, so it renders from a pod's port-forward or an air-gapped
//! host. The board keeps a fixed amount per pipeline (60 minutes of counts,
//! the delivered hours of the last day), whatever the job's age.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use meathook_core::{Deliveries, Delivery, DeliveryLog, DeliveryLogError};
use time::OffsetDateTime;

use crate::health::PipelineState;

/// Minutes of counts kept per pipeline (the chart's width).
const MINUTES: usize = 60;
/// Hours the delivery grid shows, the current one last.
const HOURS: i64 = 24;

/// How the last poll went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned this many records.
    Records(usize),
    /// It failed; the error and its causes.
    Failed(String),
}

/// The spool's figures after the last tick.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Backlog {
    pub(crate) spooled_bytes: u64,
    pub(crate) oldest_age: Option<Duration>,
    pub(crate) utilisation: f64,
    pub(crate) next_close: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
struct Entry {
    last_poll: Option<(OffsetDateTime, Outcome)>,
    last_error: Option<(OffsetDateTime, String)>,
    /// (minute since the epoch, collected, delivered), oldest first.
    minutes: VecDeque<(i64, u64, u64)>,
    /// Starts of delivered windows, as hours since the epoch.
    delivered_hours: BTreeSet<i64>,
    backlog: Backlog,
}

impl Entry {
    fn minute(&mut self, at: OffsetDateTime) -> &mut (i64, u64, u64) {
        let minute = at.unix_timestamp().div_euclid(60);
        if self.minutes.back().is_none_or(|m| m.0 != minute) {
            self.minutes.push_back((minute, 0, 0));
            while self.minutes.len() > MINUTES {
                self.minutes.pop_front();
            }
        }
        // Just pushed or already there.
        let last = self.minutes.len() - 1;
        &mut self.minutes[last]
    }
}

/// What the status page shows, shared by the pipelines (which report to
/// it) and the listener (which renders it).
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusBoard(Arc<Mutex<BTreeMap<String, Entry>>>);

impl StatusBoard {
    fn with<T>(&self, pipeline: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut board = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Every poll reports here: no new key once the pipeline has one.
        if !board.contains_key(pipeline) {
            board.insert(pipeline.to_owned(), Entry::default());
        }
        f(board
            .get_mut(pipeline)
            .unwrap_or_else(|| unreachable!("inserted above")))
    }

    /// A poll of `pipeline` at `at` ended with `outcome`.
    pub(crate) fn polled(&self, pipeline: &str, at: OffsetDateTime, outcome: Outcome) {
        self.with(pipeline, |e| {
            if let Outcome::Records(n) = &outcome {
                e.minute(at).1 += *n as u64;
            }
            if let Outcome::Failed(why) = &outcome {
                e.last_error = Some((at, why.clone()));
            }
            e.last_poll = Some((at, outcome));
        });
    }

    /// The stack of `pipeline` delivered `records` more, and holds
    /// `backlog`, at `at`.
    pub(crate) fn delivered(
        &self,
        pipeline: &str,
        at: OffsetDateTime,
        records: u64,
        backlog: Backlog,
    ) {
        self.with(pipeline, |e| {
            if records > 0 {
                e.minute(at).2 += records;
            }
            e.backlog = backlog;
        });
    }

    /// The catalog recorded `delivery`: its window's hours are filled in.
    fn recorded(&self, delivery: &Delivery) {
        // A compacted file's window is the day its parts covered, delivered
        // or not: the grid keeps what the parts said.
        if !delivery.replaces.is_empty() {
            return;
        }
        self.window(
            &delivery.pipeline,
            delivery.window_start,
            delivery.window_end,
        );
    }

    /// A window of `pipeline` from `start` to `end` was delivered: its
    /// hours are filled in.
    pub(crate) fn window(&self, pipeline: &str, start: OffsetDateTime, end: OffsetDateTime) {
        let first = start.unix_timestamp().div_euclid(3600);
        let last = (end.unix_timestamp() - 1).div_euclid(3600).max(first);
        self.with(pipeline, |e| {
            // A daily window fills its day's hours; never more than a grid.
            e.delivered_hours.extend(first..=last.min(first + HOURS));
            let keep_from = OffsetDateTime::now_utc().unix_timestamp().div_euclid(3600) - HOURS;
            e.delivered_hours.retain(|h| *h >= keep_from);
        });
    }

    /// The page, as of `now`, with each pipeline's supervisor state.
    pub(crate) fn render(
        &self,
        now: OffsetDateTime,
        states: &BTreeMap<String, PipelineState>,
        problems: &[String],
    ) -> String {
        let board = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let names: BTreeSet<&String> = board.keys().chain(states.keys()).collect();
        let mut html = String::from(HEAD);
        let _ = write!(
            html,
            "<h1>meathook</h1><p class=\"when\">{:02}:{:02}:{:02} UTC &middot; {} pipelines &middot; {}</p>",
            now.hour(),
            now.minute(),
            now.second(),
            names.len(),
            if problems.is_empty() {
                "<span class=\"ok\">healthy</span>".to_owned()
            } else {
                format!(
                    "<span class=\"bad\">unhealthy</span>: {}",
                    escape(&problems.join("; "))
                )
            }
        );
        html.push_str(
            "<table><tr><th>pipeline</th><th>state</th><th>last poll</th><th>last error</th>\
             <th>collected, 1 h</th><th>delivered, 1 h</th><th>records per minute, 1 h</th>\
             <th>spooled</th><th>oldest undelivered</th><th>next window closes</th></tr>",
        );
        let empty = Entry::default();
        let this_minute = now.unix_timestamp().div_euclid(60);
        for name in &names {
            let e = board.get(*name).unwrap_or(&empty);
            let state = states
                .get(*name)
                .map_or_else(|| "-".to_owned(), |s| format!("{s:?}"));
            let recent = e
                .minutes
                .iter()
                .filter(|m| this_minute - m.0 < MINUTES as i64);
            let (collected, delivered) =
                recent.clone().fold((0, 0), |(c, d), m| (c + m.1, d + m.2));
            let _ = write!(
                html,
                "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td>\
                 <td class=\"n\">{collected}</td><td class=\"n\">{delivered}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(name),
                escape(&state),
                last_poll(e, now),
                e.last_error.as_ref().map_or_else(String::new, |(at, why)| {
                    format!("{} ago: {}", ago(now - *at), escape(why))
                }),
                sparkline(recent, this_minute),
                spooled(&e.backlog),
                e.backlog.oldest_age.map_or_else(|| "-".to_owned(), ago_std),
                e.backlog
                    .next_close
                    .map_or_else(|| "-".to_owned(), |at| format!("in {}", ago(at - now))),
            );
        }
        html.push_str("</table>");
        html.push_str(&grid(&board, &names, now));
        html.push_str("</body></html>\n");
        html
    }
}

/// Terminal sinks report here (through [`Telemetry::deliveries`](crate::Telemetry::deliveries)):
/// the status page notes the window, then the catalog records it.
#[derive(Debug)]
struct Noted {
    board: StatusBoard,
    inner: Deliveries,
}

impl DeliveryLog for Noted {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        self.inner.record(delivery)?;
        self.board.recorded(delivery);
        Ok(())
    }
}

/// `inner`, with every delivery it records also shown on `board`'s grid.
pub(crate) fn noting(board: &StatusBoard, inner: Deliveries) -> Deliveries {
    Deliveries::new(Noted {
        board: board.clone(),
        inner,
    })
}

const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"30\"><title>meathook status</title><style>\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{font-size:1.3em;margin:0}.when{color:#555;margin:.2em 0 1em}.ok{color:#17803d}.bad{color:#b42318}\
table{border-collapse:collapse;margin-bottom:1.5em}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
th{font-weight:600;color:#444}td{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}\
td.name{font-weight:600}td.error{color:#b42318;max-width:28em;white-space:normal}\
svg .bar{fill:#2563eb}svg .hit{fill:#17803d}svg .gap{fill:#fff;stroke:#b42318;stroke-width:1}svg .open{fill:#e5e7eb}\
svg text{font:11px system-ui,sans-serif;fill:#444}\
</style></head><body>";

fn last_poll(e: &Entry, now: OffsetDateTime) -> String {
    match &e.last_poll {
        None => "-".to_owned(),
        Some((at, Outcome::Records(n))) => format!(
            "{} ago: {n} record{}",
            ago(now - *at),
            if *n == 1 { "" } else { "s" }
        ),
        Some((at, Outcome::Failed(_))) => {
            format!("{} ago: <span class=\"bad\">failed</span>", ago(now - *at))
        }
    }
}

/// Records per minute over the last hour, one bar a minute, the current
/// minute at the right.
fn sparkline<'a>(minutes: impl Iterator<Item = &'a (i64, u64, u64)> + Clone, now: i64) -> String {
    const W: i64 = 2;
    const H: u64 = 24;
    let most = minutes.clone().map(|m| m.1).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg width=\"{}\" height=\"{H}\" role=\"img\" aria-label=\"records per minute\">",
        MINUTES as i64 * W
    );
    for (minute, collected, _) in minutes {
        let x = (MINUTES as i64 - 1 - (now - minute)) * W;
        let h = (collected * H).div_ceil(most);
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h}\"/>",
            H - h,
            W - 1
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Pipelines × the last 24 hours: a filled cell for an hour with a
/// delivered window, an outlined one for a gap, a grey one for the hour in
/// progress while nothing of it was delivered yet.
fn grid(board: &BTreeMap<String, Entry>, names: &BTreeSet<&String>, now: OffsetDateTime) -> String {
    const CELL: i64 = 14;
    const LEFT: i64 = 160;
    const TOP: i64 = 18;
    let this_hour = now.unix_timestamp().div_euclid(3600);
    let rows = i64::try_from(names.len()).unwrap_or(i64::MAX);
    let mut svg = format!(
        "<h2>Delivered windows, last {HOURS} hours (UTC)</h2>\
         <svg class=\"grid\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"delivered windows per pipeline and hour\">",
        LEFT + HOURS * CELL,
        TOP + rows * CELL + 4
    );
    for column in 0..HOURS {
        let hour = this_hour - (HOURS - 1 - column);
        if hour.rem_euclid(6) == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"12\">{:02}</text>",
                LEFT + column * CELL,
                hour.rem_euclid(24)
            );
        }
    }
    let empty = Entry::default();
    for (row, name) in names.iter().enumerate() {
        let y = TOP + i64::try_from(row).unwrap_or(0) * CELL;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + CELL - 3,
            escape(name)
        );
        let e = board.get(*name).unwrap_or(&empty);
        for column in 0..HOURS {
            let hour = this_hour - (HOURS - 1 - column);
            // The hour in progress has not had its chance yet.
            let class = if e.delivered_hours.contains(&hour) {
                "hit"
            } else if hour == this_hour {
                "open"
            } else {
                "gap"
            };
            let _ = write!(
                svg,
                "<rect class=\"{class}\" data-pipeline=\"{}\" data-hour=\"{}\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\"/>",
                escape(name),
                hour * 3600,
                LEFT + column * CELL,
                CELL - 2,
                CELL - 2
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn ago(d: time::Duration) -> String {
    ago_std(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

fn ago_std(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{:.1} h", d.as_secs_f64() / 3600.0),
        _ => format!("{:.1} d", d.as_secs_f64() / 86_400.0),
    }
}

/// The spool's size and how full the fullest tier is.
fn spooled(b: &Backlog) -> String {
    format!(
        "{} ({:.0}% full)",
        bytes(b.spooled_bytes),
        b.utilisation * 100.0
    )
}

#[allow(clippy::cast_precision_loss)] // a size to read, not to compute with
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn delivery(pipeline: &str, start: OffsetDateTime, len: time::Duration) -> Delivery {
        let len = Duration::try_from(len).unwrap();
        let window = meathook_core::WindowMeta::containing(pipeline, start, len);
        Delivery::new(&window, "d", "p".to_owned(), 1, 1, [0; 32])
    }

    #[test]
    fn the_page_shows_polls_errors_counts_and_a_gap_in_the_grid() {
        let board = StatusBoard::default();
        let now = OffsetDateTime::now_utc();
        let hour = |back: i64| {
            let h = now.unix_timestamp().div_euclid(3600) - back;
            OffsetDateTime::from_unix_timestamp(h * 3600).unwrap()
        };
        board.polled(
            "air <temp>",
            now - time::Duration::seconds(70),
            Outcome::Records(12),
        );
        board.polled(
            "air <temp>",
            now - time::Duration::seconds(5),
            Outcome::Failed("poll failed: dns error: no such host".into()),
        );
        board.delivered(
            "air <temp>",
            now,
            9,
            Backlog {
                spooled_bytes: 4096,
                oldest_age: Some(Duration::from_secs(600)),
                utilisation: 0.1,
                next_close: Some(now + time::Duration::seconds(23 * 60 + 30)),
            },
        );
        // Hours 3 and 1 ago delivered; 2 ago is the gap.
        for back in [3, 1] {
            board.recorded(&delivery(
                "air <temp>",
                hour(back),
                time::Duration::hours(1),
            ));
        }
        let states = BTreeMap::from([("air <temp>".to_owned(), PipelineState::Up)]);
        let html = board.render(now, &states, &[]);
        assert!(html.contains("air &lt;temp&gt;"), "names are escaped");
        assert!(!html.contains("<temp>"));
        assert!(
            html.contains("poll failed: dns error: no such host"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"n\">12</td><td class=\"n\">9</td>"),
            "{html}"
        );
        assert!(
            html.contains("4.0 KiB (10% full)") && html.contains("10 min"),
            "{html}"
        );
        assert!(
            html.contains("in 23 min"),
            "the next window's close: {html}"
        );
        assert!(html.contains("healthy"));
        let cell = |back: i64| {
            let h = hour(back).unix_timestamp();
            let at = html
                .find(&format!("data-hour=\"{h}\""))
                .unwrap_or_else(|| panic!("no cell for {back} h ago"));
            let start = html[..at].rfind("<rect").unwrap();
            html[start..at].to_owned()
        };
        assert!(cell(3).contains("class=\"hit\""), "{}", cell(3));
        assert!(cell(2).contains("class=\"gap\""), "{}", cell(2));
        assert!(cell(1).contains("class=\"hit\""), "{}", cell(1));
        assert!(
            cell(0).contains("class=\"open\""),
            "the hour in progress is no gap: {}",
            cell(0)
        );
        assert!(!html.contains("<script"), "no script");
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "no external asset"
        );
    }

    #[test]
    fn a_daily_window_fills_its_hours_and_old_hours_leave_the_grid() {
        let board = StatusBoard::default();
        let day = OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
        board.recorded(&delivery(
            "rain",
            day - time::Duration::days(3),
            time::Duration::days(1),
        ));
        board.recorded(&delivery("rain", day, time::Duration::days(1)));
        let hours = board.with("rain", |e| e.delivered_hours.clone());
        let first = day.unix_timestamp() / 3600;
        assert!(hours.contains(&first) && hours.contains(&(first + 23)));
        assert!(
            hours.iter().all(|h| *h >= first - HOURS),
            "hours older than the grid are dropped: {hours:?}"
        );
    }

    #[test]
    fn counts_keep_an_hour_of_minutes() {
        let board = StatusBoard::default();
        let t0 = datetime!(2026-12-05 00:00 UTC);
        for m in 0..90 {
            board.polled("p", t0 + time::Duration::minutes(m), Outcome::Records(1));
        }
        let minutes = board.with("p", |e| e.minutes.len());
        assert_eq!(minutes, MINUTES);
    }
}
