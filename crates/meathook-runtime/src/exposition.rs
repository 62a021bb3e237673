//! The two text formats the metrics are written in, which one an HTTP
//! client asked for, and the Prometheus text format made from the
//! registry's OpenMetrics text.
//!
//! prometheus-client (0.25) encodes OpenMetrics text only (and, behind a
//! feature, protobuf), but node_exporter's textfile collector and
//! Prometheus' `promtool` parse the Prometheus text exposition format
//! 0.0.4. The two differ in these ways, which [`to_prometheus_text`]
//! handles:
//!
//! - a counter family is named without `_total` in OpenMetrics
//!   (`# TYPE x counter`, samples `x_total`); in the Prometheus format the
//!   `# HELP` and `# TYPE` lines name the sample, `x_total`, or the family
//!   arrives `untyped`. An info family (`x`, samples `x_info`) becomes the
//!   gauge `x_info`, a state set a gauge, an `unknown` family `untyped`;
//! - `_created` samples (a counter's, histogram's or summary's start time)
//!   do not exist in the Prometheus format and are left out;
//! - `# UNIT` lines do not exist either: the unit is already the name's
//!   suffix (`x_seconds`), so the line is dropped;
//! - `# HELP` text escapes `\\`, `\n` and `\"` in OpenMetrics but only `\\`
//!   and `\n` in the Prometheus format;
//! - exemplars (` # {..} v` after a sample) and OpenMetrics timestamps (in
//!   seconds; the Prometheus format counts milliseconds) are left out;
//! - there is no `# EOF` line.
//!
//! Sample names, label sets (escaped alike in both formats) and values are
//! copied as written.

/// A text format of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsFormat {
    /// OpenMetrics 1.0 text, ending in `# EOF`: what Prometheus asks for
    /// first when it scrapes.
    OpenMetrics,
    /// The Prometheus text exposition format 0.0.4: what node_exporter's
    /// textfile collector, `promtool` and clients that do not ask for
    /// OpenMetrics read.
    PrometheusText,
}

impl MetricsFormat {
    /// The HTTP `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format an HTTP `Accept` header asks for: OpenMetrics when it
    /// lists `application/openmetrics-text` with a quality above zero and
    /// no lower than that of `text/plain` (or `text/*`, `*/*`), otherwise
    /// the Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut openmetrics, mut text) = (0u16, 0u16);
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let quality = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1000), |(_, v)| quality(v.trim()));
            let Some(quality) = quality else { continue };
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(quality);
            } else if ["text/plain", "text/*", "*/*"]
                .iter()
                .any(|m| media.eq_ignore_ascii_case(m))
            {
                text = text.max(quality);
            }
        }
        if openmetrics > 0 && openmetrics >= text {
            Self::OpenMetrics
        } else {
            Self::PrometheusText
        }
    }
}

/// An HTTP quality value (`0` to `1`, at most three decimals) in
/// thousandths; `None` if it is not one.
fn quality(value: &str) -> Option<u16> {
    let q: f64 = value.parse().ok()?;
    // Rounded to thousandths, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..=1.0)
        .contains(&q)
        .then(|| (q * 1000.0).round() as u16)
}

/// One family of the OpenMetrics text, as read.
struct Family<'a> {
    name: &'a str,
    help: Option<&'a str>,
    kind: Option<&'a str>,
    samples: Vec<&'a str>,
}

/// The Prometheus text format 0.0.4 of `openmetrics`, OpenMetrics text as
/// prometheus-client writes it (`# HELP`, `# TYPE`, `# UNIT`, then the
/// samples of each family).
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut family: Option<Family<'_>> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            write_family(&mut out, family.take());
            family = Some(Family {
                name,
                help: Some(help),
                kind: None,
                samples: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            match family.as_mut() {
                Some(f) if f.name == name && f.kind.is_none() => f.kind = Some(kind),
                _ => {
                    write_family(&mut out, family.take());
                    family = Some(Family {
                        name,
                        help: None,
                        kind: Some(kind),
                        samples: Vec::new(),
                    });
                }
            }
        } else if line.starts_with('#') || line.is_empty() {
            // `# UNIT` (the unit is the name's suffix already), `# EOF`.
        } else {
            match family.as_mut() {
                Some(f) => f.samples.push(line),
                None => write_sample(&mut out, line),
            }
        }
    }
    write_family(&mut out, family);
    out
}

/// Writes one family in the Prometheus format.
fn write_family(out: &mut String, family: Option<Family<'_>>) {
    let Some(family) = family else { return };
    let kind = family.kind.unwrap_or("unknown");
    let (suffix, prometheus_kind) = match kind {
        "counter" => ("_total", "counter"),
        "info" => ("_info", "gauge"),
        "gauge" | "stateset" => ("", "gauge"),
        "histogram" => ("", "histogram"),
        "summary" => ("", "summary"),
        _ => ("", "untyped"),
    };
    let name = family.name;
    if let Some(help) = family.help {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push_str(suffix);
        out.push(' ');
        escape_help(out, help);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push_str(suffix);
    out.push(' ');
    out.push_str(prometheus_kind);
    out.push('\n');
    let created = matches!(kind, "counter" | "histogram" | "summary");
    for sample in family.samples {
        if created && sample_name(sample).strip_prefix(name) == Some("_created") {
            continue;
        }
        write_sample(out, sample);
    }
}

/// Re-escapes OpenMetrics help text (`\\`, `\n`, `\"`) for the Prometheus
/// format (`\\`, `\n`): a backslash that starts no escape is a backslash.
fn escape_help(out: &mut String, help: &str) {
    let mut chars = help.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.peek() {
                Some('\\') => {
                    chars.next();
                    '\\'
                }
                Some('n') => {
                    chars.next();
                    '\n'
                }
                Some('"') => {
                    chars.next();
                    '"'
                }
                _ => '\\',
            },
            other => other,
        };
        match literal {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

/// The metric name of a sample line.
fn sample_name(line: &str) -> &str {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    &line[..end]
}

/// Writes a sample's name, labels and value; an exemplar or timestamp
/// after the value is left out.
fn write_sample(out: &mut String, line: &str) {
    let series_end = series_end(line);
    let (series, rest) = line.split_at(series_end);
    match rest.split_whitespace().next() {
        Some(value) => {
            out.push_str(series);
            out.push(' ');
            out.push_str(value);
        }
        // Not a sample prometheus-client writes: copied for the parser
        // downstream to judge.
        None => out.push_str(line),
    }
    out.push('\n');
}

/// Where a sample's name and label set end: at the first space outside
/// the label set's quoted values.
fn series_end(line: &str) -> usize {
    let mut in_labels = false;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' if in_labels => quoted = !quoted,
            '{' if !quoted => in_labels = true,
            '}' if !quoted => in_labels = false,
            ' ' if !in_labels => return i,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::exemplar::CounterWithExemplar;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::metrics::info::Info;
    use prometheus_client::registry::{Registry, Unit};

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Label {
        pipeline: String,
    }

    /// Every kind of family prometheus-client writes, one of each with a
    /// unit, an exemplar, awkward label values and awkward help.
    fn registry() -> Registry {
        let mut registry = Registry::with_prefix("t");
        let counters = Family::<Label, Counter>::default();
        counters
            .get_or_create(&Label {
                pipeline: "a \"quoted\" {odd} # name\\with\nnewline".into(),
            })
            .inc_by(3);
        registry.register("records", "Records \"seen\" \\ so far", counters);
        let seconds = Counter::<u64>::default();
        seconds.inc();
        registry.register_with_unit("busy", "Busy time", Unit::Seconds, seconds);
        let exemplar = CounterWithExemplar::<Label>::default();
        exemplar.inc_by(
            2,
            Some(Label {
                pipeline: "x".into(),
            }),
            None,
        );
        registry.register("sampled", "With an exemplar", exemplar);
        let gauge = Gauge::<i64>::default();
        gauge.set(-4);
        registry.register("level", "A gauge", gauge);
        let histogram = Histogram::new([0.5, 1.0]);
        histogram.observe(0.7);
        registry.register_with_unit("wait", "A histogram", Unit::Seconds, histogram);
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", "1.2")]),
        );
        registry
    }

    #[test]
    fn openmetrics_text_becomes_the_prometheus_text_format() {
        let mut openmetrics = String::new();
        prometheus_client::encoding::text::encode(&mut openmetrics, &registry()).unwrap();
        let text = to_prometheus_text(&openmetrics);
        let expected = [
            "# HELP t_records_total Records \"seen\" \\\\ so far.",
            "# TYPE t_records_total counter",
            "t_records_total{pipeline=\"a \\\"quoted\\\" {odd} # name\\\\with\\nnewline\"} 3",
            "# HELP t_busy_seconds_total Busy time.",
            "# TYPE t_busy_seconds_total counter",
            "t_busy_seconds_total 1",
            "# HELP t_sampled_total With an exemplar.",
            "# TYPE t_sampled_total counter",
            "t_sampled_total 2",
            "# HELP t_level A gauge.",
            "# TYPE t_level gauge",
            "t_level -4",
            "# HELP t_wait_seconds A histogram.",
            "# TYPE t_wait_seconds histogram",
            "t_wait_seconds_sum 0.7",
            "t_wait_seconds_count 1",
            "t_wait_seconds_bucket{le=\"0.5\"} 0",
            "t_wait_seconds_bucket{le=\"1.0\"} 1",
            "t_wait_seconds_bucket{le=\"+Inf\"} 1",
            "# HELP t_build_info Build information.",
            "# TYPE t_build_info gauge",
            "t_build_info{version=\"1.2\"} 1",
        ]
        .join("\n")
            + "\n";
        assert_eq!(text, expected, "from\n{openmetrics}");
    }

    #[test]
    fn created_samples_timestamps_and_units_are_left_out() {
        let openmetrics = "# HELP x Things\n# TYPE x counter\n# UNIT x_bytes bytes\n\
                           x_total{a=\"1\"} 5 1700000000.5 # {t=\"1\"} 1.0\n\
                           x_created{a=\"1\"} 1700000000.0\n\
                           # TYPE y unknown\ny 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(openmetrics),
            "# HELP x_total Things\n# TYPE x_total counter\nx_total{a=\"1\"} 5\n\
             # TYPE y untyped\ny 2\n"
        );
    }

    #[test]
    fn help_escapes_are_rewritten_for_the_prometheus_format() {
        let mut out = String::new();
        escape_help(&mut out, r#"a \"b\" c\nd \\ e \x"#);
        assert_eq!(out, r#"a "b" c\nd \\ e \\x"#);
    }

    #[test]
    fn the_accept_header_chooses_the_format() {
        use MetricsFormat::{OpenMetrics, PrometheusText};
        for (accept, format) in [
            (None, PrometheusText),
            (Some(""), PrometheusText),
            (Some("*/*"), PrometheusText),
            (Some("text/plain; version=0.0.4"), PrometheusText),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; version=1.0.0"),
                OpenMetrics,
            ),
            // Prometheus 2.x's own scrape header.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            // A scraper configured to prefer the Prometheus text format.
            (
                Some(
                    "text/plain;version=0.0.4;q=1.0,application/openmetrics-text;version=1.0.0;q=0.5",
                ),
                PrometheusText,
            ),
            (Some("application/openmetrics-text;q=0"), PrometheusText),
            (
                Some("application/openmetrics-text;q=banana"),
                PrometheusText,
            ),
            (Some("application/json, text/html"), PrometheusText),
        ] {
            assert_eq!(MetricsFormat::negotiate(accept), format, "{accept:?}");
        }
    }
}
