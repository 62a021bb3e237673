//! One pipeline's metric handles, and the collection of its sink stack's
//! figures into them after every tick.
//!
//! The stack reports cumulative counts (`StackStats`); the counters gain
//! what each count grew by since the last tick, and the gauges take the
//! stack's current figures and the pipeline's own memory state.

use std::sync::Arc;

use meathook_core::StackStats;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::health::HealthBoard;
use crate::metric_families::{ErrorLabel, Families, PipelineLabel};

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
    health: HealthBoard,
}

/// Adds to `counter` what a cumulative figure gained since `before`. A stack
/// rebuilt after a restart starts again from zero: all of `now` is new.
fn add_delta(counter: &Counter, before: u64, now: u64) {
    counter.inc_by(if now >= before { now - before } else { now });
}

impl PipelineMetrics {
    /// The handles of pipeline `name` in `families`.
    pub(crate) fn new(name: &str, families: Arc<Families>, health: HealthBoard) -> Self {
        let label = PipelineLabel {
            pipeline: name.to_owned(),
        };
        let f = &families;
        let collected = f.collected.get_or_create(&label).clone();
        let deduped = f.deduped.get_or_create(&label).clone();
        let accepted = f.accepted.get_or_create(&label).clone();
        let ingest_seconds = f.ingest_seconds.get_or_create(&label).clone();
        let tick_lateness_seconds = f.tick_lateness_seconds.get_or_create(&label).clone();
        Self {
            name: name.to_owned(),
            label,
            families,
            collected,
            deduped,
            accepted,
            ingest_seconds,
            tick_lateness_seconds,
            last: StackStats::default(),
            health,
        }
    }

    /// Counts a failed poll of `kind`.
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
        self.health.set_full(&self.name, stats.utilisation >= 1.0);
        self.last = stats.clone();
    }
}
