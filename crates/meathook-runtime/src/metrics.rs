//! Metrics in OpenMetrics text, and the health the `/healthz` route reports.
//!
//! One [`Telemetry`] per runtime holds a `prometheus-client` registry with a
//! family per figure, labelled by pipeline. Each pipeline task updates its
//! own handles after every tick; nothing here runs on its own.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use meathook_core::{CatalogStats, StackStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabel {
    pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    pipeline: String,
    kind: String,
}

type Counters = Family<PipelineLabel, Counter>;
type Gauges = Family<PipelineLabel, Gauge>;
type FloatGauges = Family<PipelineLabel, Gauge<f64, AtomicU64>>;
type Histograms = Family<PipelineLabel, Histogram, fn() -> Histogram>;

/// Where a pipeline stands, as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineState {
    /// Polling.
    Up,
    /// Failed; waiting to be rebuilt from its factory.
    Restarting,
    /// Failed too often; no longer restarted.
    GivenUp,
    /// Stopped at shutdown.
    Stopped,
}

#[derive(Debug)]
struct Families {
    collected: Counters,
    deduped: Counters,
    accepted: Counters,
    delivered: Counters,
    rejected: Counters,
    dropped: Counters,
    quarantined: Counters,
    dead_lettered: Counters,
    delivery_failures: Counters,
    delivery_retries: Counters,
    collect_errors: Family<ErrorLabel, Counter>,
    restarts: Counters,
    up: Gauges,
    spool_bytes: Gauges,
    held_bytes: Gauges,
    credits_bytes: Gauges,
    oldest_undelivered_age: FloatGauges,
    utilisation: FloatGauges,
    poll_stretch: FloatGauges,
    ingest_seconds: Histograms,
    tick_lateness_seconds: Histograms,
    delivery_latency_seconds: Histograms,
}

fn delivery_histogram() -> Histogram {
    // 1 s to about 18 h: windows are minutes to hours long.
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The runtime's metrics registry and health; cheap to clone.
#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Arc<Registry>,
    families: Arc<Families>,
    health: Arc<Mutex<BTreeMap<String, Health>>>,
    catalogs: Catalogs,
}

/// The delivery catalogs whose figures are exported, read at each scrape.
#[derive(Debug, Clone, Default)]
struct Catalogs(Arc<Mutex<Vec<CatalogStats>>>);

impl Collector for Catalogs {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let catalogs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if catalogs.is_empty() {
            return Ok(());
        }
        let mut sum = [0u64; 6];
        let mut up = true;
        let mut database = false;
        for c in catalogs.iter() {
            let s = c.snapshot();
            database |= s.database;
            let figures = [
                s.manifest_writes,
                s.manifest_failures,
                s.database_writes,
                s.database_failures,
                s.backlog,
                s.database_rejected,
            ];
            for (total, v) in sum.iter_mut().zip(figures) {
                *total = total.saturating_add(v);
            }
            up &= s.database_up || !s.database;
        }
        drop(catalogs);
        let counters = [
            (
                "catalog_manifest_writes",
                "Delivery records appended and synced to the manifest",
                sum[0],
            ),
            (
                "catalog_manifest_failures",
                "Delivery records the manifest failed to keep (the batch is retried)",
                sum[1],
            ),
            (
                "catalog_database_writes",
                "Delivery records upserted into the catalog database",
                sum[2],
            ),
            (
                "catalog_database_failures",
                "Failed attempts to reach or write the catalog database",
                sum[3],
            ),
            (
                "catalog_database_rejected",
                "Delivery records the catalog database refused, set aside in <manifest>.rejected",
                sum[5],
            ),
        ];
        // The database figures only where a database is fed.
        let shown = if database { 5 } else { 2 };
        for (name, help, value) in counters.into_iter().take(shown) {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "catalog_backfill_backlog",
                "Delivery records in the manifest not yet in the database",
                i64::try_from(sum[4]).unwrap_or(i64::MAX),
            ),
            (
                "catalog_database_up",
                "1 while the last back-fill pass reached the database",
                i64::from(up),
            ),
        ];
        for (name, help, value) in gauges.into_iter().filter(|_| database) {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Health {
    state: PipelineState,
    full: bool,
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
        let families = Families {
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
            "buffer_utilisation",
            "Fill of the fullest buffer (0 to 1)",
            f.utilisation.clone(),
        );
        registry.register(
            "poll_stretch",
            "Factor by which backpressure stretches the poll interval (0 = paused)",
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
        let catalogs = Catalogs::default();
        registry.register_collector(Box::new(catalogs.clone()));
        Self {
            registry: Arc::new(registry),
            families: Arc::new(families),
            health: Arc::new(Mutex::new(BTreeMap::new())),
            catalogs,
        }
    }

    /// Exports a delivery catalog's figures (`meathook_catalog_*`): manifest
    /// and database writes and failures, the back-fill backlog, and whether
    /// the database was reached. Several catalogs are summed.
    pub fn watch_catalog(&self, stats: CatalogStats) {
        self.catalogs
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stats);
    }

    /// The registry in OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The handles of one pipeline.
    pub(crate) fn pipeline(&self, name: &str) -> PipelineMetrics {
        let label = PipelineLabel {
            pipeline: name.to_owned(),
        };
        let f = &self.families;
        PipelineMetrics {
            name: name.to_owned(),
            families: Arc::clone(&self.families),
            collected: f.collected.get_or_create(&label).clone(),
            deduped: f.deduped.get_or_create(&label).clone(),
            accepted: f.accepted.get_or_create(&label).clone(),
            ingest_seconds: f.ingest_seconds.get_or_create(&label).clone(),
            tick_lateness_seconds: f.tick_lateness_seconds.get_or_create(&label).clone(),
            last: StackStats::default(),
            health: Arc::clone(&self.health),
            label,
        }
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
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health
            .entry(pipeline.to_owned())
            .or_insert(Health { state, full: false })
            .state = state;
    }

    /// Whether every pipeline is up and no buffer is full, and if not, why.
    pub fn health(&self) -> Result<(), Vec<String>> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let problems: Vec<String> = health
            .iter()
            .filter_map(|(name, h)| match (h.state, h.full) {
                (PipelineState::Up, false) => None,
                (PipelineState::Up, true) => Some(format!("{name}: buffer or spool full")),
                (state, _) => Some(format!("{name}: {state:?}")),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The state of each pipeline.
    pub fn states(&self) -> BTreeMap<String, PipelineState> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.iter().map(|(k, v)| (k.clone(), v.state)).collect()
    }
}

/// One pipeline's metric handles.
#[derive(Debug)]
pub(crate) struct PipelineMetrics {
    name: String,
    label: PipelineLabel,
    families: Arc<Families>,
    pub(crate) collected: Counter,
    pub(crate) deduped: Counter,
    pub(crate) accepted: Counter,
    pub(crate) ingest_seconds: Histogram,
    pub(crate) tick_lateness_seconds: Histogram,
    last: StackStats,
    health: Arc<Mutex<BTreeMap<String, Health>>>,
}

/// Adds to `counter` what a cumulative figure gained since `before`. A stack
/// rebuilt after a restart starts again from zero: all of `now` is new.
fn add_delta(counter: &Counter, before: u64, now: u64) {
    counter.inc_by(if now >= before { now - before } else { now });
}

impl PipelineMetrics {
    pub(crate) fn collect_error(&self, kind: &str) {
        let label = ErrorLabel {
            pipeline: self.name.clone(),
            kind: kind.to_owned(),
        };
        self.families.collect_errors.get_or_create(&label).inc();
    }

    /// Publishes a stack's figures, and the pipeline's own memory state.
    #[allow(clippy::cast_precision_loss)] // ages and byte counts as f64 gauges
    pub(crate) fn publish(
        &mut self,
        stats: &StackStats,
        now: time::OffsetDateTime,
        held_bytes: u64,
        credits: u64,
        stretch: f64,
    ) {
        let f = &self.families;
        let l = &self.label;
        let last = &self.last;
        let cumulative = [
            (
                &f.delivered,
                last.delivered_records,
                stats.delivered_records,
            ),
            (&f.rejected, last.rejected_records, stats.rejected_records),
            (&f.dropped, last.dropped_records, stats.dropped_records),
            (
                &f.quarantined,
                last.quarantined_records,
                stats.quarantined_records,
            ),
            (
                &f.dead_lettered,
                last.dead_lettered_records,
                stats.dead_lettered_records,
            ),
            (
                &f.delivery_failures,
                last.failed_attempts,
                stats.failed_attempts,
            ),
            (&f.delivery_retries, last.retries, stats.retries),
        ];
        for (family, before, now) in cumulative {
            add_delta(&family.get_or_create(l), before, now);
        }
        // Records were delivered since the last tick: the oldest of them was
        // the oldest undelivered record then.
        if stats.delivered_records != last.delivered_records
            && let Some(oldest) = last.oldest_undelivered
        {
            let age = (now - oldest).as_seconds_f64().max(0.0);
            f.delivery_latency_seconds.get_or_create(l).observe(age);
        }
        f.spool_bytes
            .get_or_create(l)
            .set(i64::try_from(stats.spooled_bytes).unwrap_or(i64::MAX));
        f.held_bytes
            .get_or_create(l)
            .set(i64::try_from(held_bytes).unwrap_or(i64::MAX));
        f.credits_bytes
            .get_or_create(l)
            .set(i64::try_from(credits).unwrap_or(i64::MAX));
        let age = stats
            .oldest_undelivered
            .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        f.oldest_undelivered_age.get_or_create(l).set(age);
        f.utilisation.get_or_create(l).set(stats.utilisation);
        f.poll_stretch.get_or_create(l).set(stretch);
        let full = stats.utilisation >= 1.0;
        if let Some(h) = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&self.name)
        {
            h.full = full;
        }
        self.last = stats.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "meathook_catalog_backfill_backlog 3",
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
            text.contains("meathook_catalog_backfill_backlog 0"),
            "{text}"
        );
        assert!(text.contains("meathook_catalog_database_up 1"), "{text}");
    }
}
