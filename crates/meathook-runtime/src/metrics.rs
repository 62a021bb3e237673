//! `Telemetry`: the runtime's metrics in OpenMetrics or Prometheus text,
//! and the health the `/healthz` route reports.
//!
//! One [`Telemetry`] per runtime holds a `prometheus-client` registry with a
//! family per figure (`metric_families`), labelled by pipeline, the watched
//! delivery catalogs (`catalog_metrics`) and the pipelines' health
//! (`health`). Each pipeline task updates its own handles
//! (`pipeline_metrics`) as each tick starts and ends; nothing here runs on
//! its own. The registry writes OpenMetrics; `exposition` makes the
//! Prometheus text format from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use meathook_core::{CatalogStats, Deliveries};
use prometheus_client::registry::Registry;

use crate::catalog_metrics::Catalogs;
use crate::exposition::{MetricsFormat, to_prometheus_text};
use crate::health::{HealthBoard, HealthBounds, PipelineState};
use crate::metric_families::{DatasetLabel, Families, FolderLabel, PipelineLabel, TaskLabel};
use crate::pipeline_metrics::PipelineMetrics;
use crate::status::StatusBoard;

/// A scheduled task's figures.
#[derive(Debug)]
pub(crate) struct TaskMetrics {
    runs: prometheus_client::metrics::counter::Counter,
    failures: prometheus_client::metrics::counter::Counter,
    last_success: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl TaskMetrics {
    pub(crate) fn succeeded(&self) {
        self.runs.inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.set(now);
    }

    pub(crate) fn failed(&self) {
        self.runs.inc();
        self.failures.inc();
    }
}

/// The runtime's metrics registry and health; cheap to clone.
#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Arc<Registry>,
    families: Arc<Families>,
    health: HealthBoard,
    catalogs: Catalogs,
    status: StatusBoard,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// An empty registry with every meathook family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("meathook");
        let families = Families::register(&mut registry);
        let catalogs = Catalogs::default();
        registry.register_collector(Box::new(catalogs.clone()));
        Self {
            registry: Arc::new(registry),
            families: Arc::new(families),
            health: HealthBoard::default(),
            catalogs,
            status: StatusBoard::default(),
        }
    }

    /// Exports a delivery catalog's figures (`meathook_catalog_*`): manifest
    /// and database writes and failures, the back-fill backlog, and whether
    /// the database was reached. Several catalogs are summed.
    pub fn watch_catalog(&self, stats: CatalogStats) {
        self.catalogs.watch(stats);
    }

    /// The registry in OpenMetrics text (see [`encode_as`](Self::encode_as)
    /// for the Prometheus text format).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The registry in `format`: OpenMetrics text as [`encode`](Self::encode)
    /// writes it, or the Prometheus text format 0.0.4 (what node_exporter's
    /// textfile collector reads: counters typed `counter` under their
    /// `_total` names, no `# EOF`).
    pub fn encode_as(&self, format: MetricsFormat) -> String {
        match format {
            MetricsFormat::OpenMetrics => self.encode(),
            MetricsFormat::PrometheusText => to_prometheus_text(&self.encode()),
        }
    }

    /// The handles of one pipeline, for a run that is about to start.
    pub(crate) fn pipeline(&self, name: &str) -> PipelineMetrics {
        self.health.starting(name);
        PipelineMetrics::new(
            name,
            Arc::clone(&self.families),
            self.health.clone(),
            self.status.clone(),
        )
    }

    /// The handles of a scheduled task.
    pub(crate) fn task(&self, name: &str) -> TaskMetrics {
        let label = TaskLabel {
            task: name.to_owned(),
        };
        let f = &self.families;
        TaskMetrics {
            runs: f.task_runs.get_or_create(&label).clone(),
            failures: f.task_failures.get_or_create(&label).clone(),
            last_success: f.task_last_success.get_or_create(&label).clone(),
        }
    }

    /// Shows how many files the dataset at `destination` holds
    /// (`meathook_dataset_files`), under each pipeline's folder
    /// (`meathook_dataset_folder_files{folder}`, `by_folder`), and how many
    /// entries its fullest folder has (`meathook_dataset_folder_entries_max`):
    /// what a compaction task counts after its run.
    pub fn note_dataset_files(
        &self,
        destination: &str,
        files: u64,
        by_folder: &[(String, u64)],
        fullest_folder_entries: u64,
    ) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let label = DatasetLabel {
            destination: destination.to_owned(),
        };
        let f = &self.families;
        f.dataset_files.get_or_create(&label).set(gauge(files));
        f.dataset_folder_entries_max
            .get_or_create(&label)
            .set(gauge(fullest_folder_entries));
        for (folder, n) in by_folder {
            f.dataset_folder_files
                .get_or_create(&FolderLabel {
                    destination: destination.to_owned(),
                    folder: folder.clone(),
                })
                .set(gauge(*n));
        }
    }

    /// `inner` (the catalog's hook, given to the terminal sinks), with every
    /// delivery it records also shown on the status page's grid of
    /// delivered windows.
    pub fn deliveries(&self, inner: Deliveries) -> Deliveries {
        crate::status::noting(&self.status, inner)
    }

    /// Shows on the status page's grid a window of `pipeline` from `start`
    /// to `end` delivered before this process started, read back from the
    /// catalog (the grid covers the last day).
    pub fn note_delivered_window(
        &self,
        pipeline: &str,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
    ) {
        self.status.window(pipeline, start, end);
    }

    /// The status page (`/` and `/status` on the metrics listener), as
    /// HTML: each pipeline's last poll and error, its records in the last
    /// hour, its spool's backlog, and its delivered windows of the last day.
    pub fn status_page(&self) -> String {
        let problems = self.health().err().unwrap_or_default();
        self.status
            .render(time::OffsetDateTime::now_utc(), &self.states(), &problems)
    }

    /// The bounds past which [`health`](Self::health) reports a pipeline.
    pub(crate) fn set_health_bounds(&self, bounds: HealthBounds) {
        self.health.set_bounds(bounds);
    }

    /// Records a pipeline's state.
    pub(crate) fn set_state(&self, pipeline: &str, state: PipelineState) {
        let label = PipelineLabel {
            pipeline: pipeline.to_owned(),
        };
        self.families
            .up
            .get_or_create(&label)
            .set(i64::from(state == PipelineState::Up));
        if state == PipelineState::Restarting {
            self.families.restarts.get_or_create(&label).inc();
        }
        self.health.set_state(pipeline, state);
    }

    /// Whether every pipeline is up, keeps its schedule, delivers and has
    /// room; if not, one line per failing pipeline saying why (its name,
    /// what, and how late, how long or how full), as `/healthz` shows
    /// them. The bounds are the builder's `with_health_*` settings.
    pub fn health(&self) -> Result<(), Vec<String>> {
        self.health.check()
    }

    /// The state of each pipeline.
    pub fn states(&self) -> BTreeMap<String, PipelineState> {
        self.health.states()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_file_counts_are_exported_by_destination_and_folder() {
        let telemetry = Telemetry::new();
        telemetry.note_dataset_files(
            "hf://datasets/o/d",
            1_234,
            &[
                ("data/air".to_owned(), 1_000),
                ("data/rain".to_owned(), 230),
            ],
            365,
        );
        let text = telemetry.encode();
        for line in [
            r#"meathook_dataset_files{destination="hf://datasets/o/d"} 1234"#,
            r#"meathook_dataset_folder_files{destination="hf://datasets/o/d",folder="data/air"} 1000"#,
            r#"meathook_dataset_folder_files{destination="hf://datasets/o/d",folder="data/rain"} 230"#,
            r#"meathook_dataset_folder_entries_max{destination="hf://datasets/o/d"} 365"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn catalog_figures_are_exported_once_a_catalog_is_watched() {
        let telemetry = Telemetry::new();
        assert!(
            !telemetry.encode().contains("catalog_"),
            "nothing before a catalog is watched"
        );
        let stats = CatalogStats::default();
        telemetry.watch_catalog(stats.clone());
        stats.manifest_written();
        let manifest_only = telemetry.encode();
        assert!(
            manifest_only.contains("meathook_catalog_manifest_writes_total 1"),
            "{manifest_only}"
        );
        assert!(
            !manifest_only.contains("catalog_database") && !manifest_only.contains("backlog"),
            "no database figures without a database:\n{manifest_only}"
        );
        stats.database_configured();
        for _ in 0..2 {
            stats.manifest_written();
        }
        stats.database_failed();
        stats.set_backlog(3);
        let text = telemetry.encode();
        for line in [
            "meathook_catalog_manifest_writes_total 3",
            "meathook_catalog_manifest_failures_total 0",
            "meathook_catalog_database_writes_total 0",
            "meathook_catalog_database_failures_total 1",
            "meathook_catalog_database_rejected_total 0",
            "meathook_catalog_backfill_backlog_records 3",
            "meathook_catalog_database_up 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        stats.database_reached();
        stats.database_written(3);
        stats.set_backlog(0);
        let text = telemetry.encode();
        assert!(
            text.contains("meathook_catalog_database_writes_total 3"),
            "{text}"
        );
        assert!(
            text.contains("meathook_catalog_backfill_backlog_records 0"),
            "{text}"
        );
        assert!(text.contains("meathook_catalog_database_up 1"), "{text}");
    }
}
