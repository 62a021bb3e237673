//! The metric families: one per figure, labelled by pipeline, registered
//! under the `meathook_` prefix with their names and help texts.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The label of every per-pipeline figure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PipelineLabel {
    pub(crate) pipeline: String,
}

/// The label of failed polls: the pipeline and the kind of failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabel {
    pub(crate) pipeline: String,
    pub(crate) kind: String,
}

/// The label of a scheduled task's figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TaskLabel {
    pub(crate) task: String,
}

/// The label of a dataset's figures: where its files are.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DatasetLabel {
    pub(crate) destination: String,
}

/// The label of a folder of a dataset.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FolderLabel {
    pub(crate) destination: String,
    pub(crate) folder: String,
}

pub(crate) type Counters = Family<PipelineLabel, Counter>;
pub(crate) type Gauges = Family<PipelineLabel, Gauge>;
pub(crate) type FloatGauges = Family<PipelineLabel, Gauge<f64, AtomicU64>>;
pub(crate) type Histograms = Family<PipelineLabel, Histogram, fn() -> Histogram>;

/// Every family the runtime exports; each field is registered under the
/// name given in [`Families::register`].
#[derive(Debug)]
pub(crate) struct Families {
    pub(crate) collected: Counters,
    pub(crate) deduped: Counters,
    pub(crate) accepted: Counters,
    pub(crate) delivered: Counters,
    pub(crate) rejected: Counters,
    pub(crate) dropped: Counters,
    pub(crate) quarantined: Counters,
    pub(crate) dead_lettered: Counters,
    pub(crate) delivery_failures: Counters,
    pub(crate) delivery_retries: Counters,
    pub(crate) collect_errors: Family<ErrorLabel, Counter>,
    pub(crate) restarts: Counters,
    pub(crate) up: Gauges,
    pub(crate) spool_bytes: Gauges,
    pub(crate) held_bytes: Gauges,
    pub(crate) credits_bytes: Gauges,
    pub(crate) oldest_undelivered_age: FloatGauges,
    pub(crate) utilisation: FloatGauges,
    pub(crate) poll_stretch: FloatGauges,
    pub(crate) ingest_seconds: Histograms,
    pub(crate) tick_lateness_seconds: Histograms,
    pub(crate) delivery_latency_seconds: Histograms,
    pub(crate) task_runs: Family<TaskLabel, Counter>,
    pub(crate) task_failures: Family<TaskLabel, Counter>,
    pub(crate) task_last_success: Family<TaskLabel, Gauge<f64, AtomicU64>>,
    pub(crate) dataset_files: Family<DatasetLabel, Gauge>,
    pub(crate) dataset_folder_files: Family<FolderLabel, Gauge>,
    pub(crate) dataset_folder_entries_max: Family<DatasetLabel, Gauge>,
}

fn delivery_histogram() -> Histogram {
    // 1 s to about 18 h: windows are minutes to hours long.
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Families {
    /// Creates every family and registers it in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let families = Self {
            collected: Counters::default(),
            deduped: Counters::default(),
            accepted: Counters::default(),
            delivered: Counters::default(),
            rejected: Counters::default(),
            dropped: Counters::default(),
            quarantined: Counters::default(),
            dead_lettered: Counters::default(),
            delivery_failures: Counters::default(),
            delivery_retries: Counters::default(),
            collect_errors: Family::default(),
            restarts: Counters::default(),
            up: Gauges::default(),
            spool_bytes: Gauges::default(),
            held_bytes: Gauges::default(),
            credits_bytes: Gauges::default(),
            oldest_undelivered_age: FloatGauges::default(),
            utilisation: FloatGauges::default(),
            poll_stretch: FloatGauges::default(),
            ingest_seconds: Family::new_with_constructor(latency_histogram),
            tick_lateness_seconds: Family::new_with_constructor(latency_histogram),
            delivery_latency_seconds: Family::new_with_constructor(delivery_histogram),
            task_runs: Family::default(),
            task_failures: Family::default(),
            task_last_success: Family::default(),
            dataset_files: Family::default(),
            dataset_folder_files: Family::default(),
            dataset_folder_entries_max: Family::default(),
        };
        let f = &families;
        registry.register(
            "records_collected",
            "Records returned by collectors",
            f.collected.clone(),
        );
        registry.register(
            "records_deduped",
            "Records dropped as duplicates of an accepted key",
            f.deduped.clone(),
        );
        registry.register(
            "records_accepted",
            "Records the sink stack accepted",
            f.accepted.clone(),
        );
        registry.register(
            "records_delivered",
            "Records the stack's deepest delivering layer handed on",
            f.delivered.clone(),
        );
        registry.register(
            "records_rejected",
            "Records rejected on their own (unserialisable)",
            f.rejected.clone(),
        );
        registry.register(
            "records_dropped",
            "Records dropped by a full-disk policy that drops",
            f.dropped.clone(),
        );
        registry.register(
            "records_quarantined",
            "Records lost to corruption, kept in quarantine",
            f.quarantined.clone(),
        );
        registry.register(
            "records_dead_lettered",
            "Records kept aside after a permanent refusal",
            f.dead_lettered.clone(),
        );
        registry.register(
            "delivery_failures",
            "Delivery attempts refused by the layer below",
            f.delivery_failures.clone(),
        );
        registry.register(
            "delivery_retries",
            "Delivery attempts made after a refusal",
            f.delivery_retries.clone(),
        );
        registry.register(
            "collect_errors",
            "Failed polls, by kind",
            f.collect_errors.clone(),
        );
        registry.register(
            "pipeline_restarts",
            "Times a pipeline was rebuilt after a failure",
            f.restarts.clone(),
        );
        registry.register(
            "pipeline_up",
            "1 while the pipeline is polling",
            f.up.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes held on disk by durable layers",
            f.spool_bytes.clone(),
        );
        registry.register(
            "memory_held_bytes",
            "Bytes held in memory by the pipeline and its stack",
            f.held_bytes.clone(),
        );
        registry.register(
            "memory_credits_bytes",
            "Bytes the pipeline may still hold before polling pauses",
            f.credits_bytes.clone(),
        );
        registry.register(
            "oldest_undelivered_age_seconds",
            "Age of the oldest record not yet delivered",
            f.oldest_undelivered_age.clone(),
        );
        registry.register(
            "buffer_utilisation_ratio",
            "Fill of the fullest buffer or spool (0 to 1)",
            f.utilisation.clone(),
        );
        registry.register(
            "poll_stretch_ratio",
            "Factor by which backpressure stretches the poll interval (1 = on schedule, 0 = paused)",
            f.poll_stretch.clone(),
        );
        registry.register(
            "ingest_duration_seconds",
            "Time the sink stack took to accept a batch",
            f.ingest_seconds.clone(),
        );
        registry.register(
            "tick_lateness_seconds",
            "How late each poll started against its schedule",
            f.tick_lateness_seconds.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Age of the oldest record of each delivery when the next tick saw it delivered",
            f.delivery_latency_seconds.clone(),
        );
        registry.register(
            "task_runs",
            "Runs of a scheduled task (compaction, clean-ups), failed or not",
            f.task_runs.clone(),
        );
        registry.register(
            "task_failures",
            "Runs of a scheduled task that failed",
            f.task_failures.clone(),
        );
        registry.register(
            "task_last_success_timestamp_seconds",
            "When a scheduled task last ran without failing, in seconds since the epoch",
            f.task_last_success.clone(),
        );
        registry.register(
            "dataset_files",
            "Files in a dataset (a repository on the Hub counts every file; the Hub recommends fewer than 100,000)",
            f.dataset_files.clone(),
        );
        registry.register(
            "dataset_folder_files",
            "Files under each pipeline's folder of a dataset",
            f.dataset_folder_files.clone(),
        );
        registry.register(
            "dataset_folder_entries_max",
            "Entries of a dataset's fullest folder (the Hub allows 10,000 a folder)",
            f.dataset_folder_entries_max.clone(),
        );
        families
    }
}
