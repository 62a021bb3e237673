//! One pipeline's metric handles, and the collection of its sink stack's
//! figures into them after every tick.
//!
//! The stack reports cumulative counts (`StackStats`); the counters gain
//! what each count grew by since the last tick, and the gauges take the
//! stack's current figures and the pipeline's own memory state. The health
//! board hears of each tick twice: as it starts (its lateness) and as it
//! ends (the stack's figures).

use std::sync::Arc;
use std::time::Duration;

use meathook_core::StackStats;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::health::{HealthBoard, Published};
use crate::metric_families::{ErrorLabel, Families, PipelineLabel};
use crate::status::{Backlog, Outcome, StatusBoard};

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
    pub(crate) tick_lateness_seconds: TickLateness,
    last: StackStats,
    health: HealthBoard,
    status: StatusBoard,
}

/// The tick-lateness histogram of one pipeline; observing it also tells
/// the health board that a tick started, and how late.
#[derive(Debug)]
pub(crate) struct TickLateness {
    histogram: Histogram,
    name: String,
    health: HealthBoard,
}

impl TickLateness {
    /// A tick started `seconds` behind its schedule, now.
    pub(crate) fn observe(&self, seconds: f64) {
        self.histogram.observe(seconds);
        let lateness = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO);
        self.health.tick_started(&self.name, lateness);
    }
}

/// Adds to `counter` what a cumulative figure gained since `before`. A stack
/// rebuilt after a restart starts again from zero: all of `now` is new.
fn add_delta(counter: &Counter, before: u64, now: u64) {
    counter.inc_by(if now >= before { now - before } else { now });
}

impl PipelineMetrics {
    /// The handles of pipeline `name` in `families`.
    pub(crate) fn new(
        name: &str,
        families: Arc<Families>,
        health: HealthBoard,
        status: StatusBoard,
    ) -> Self {
        let label = PipelineLabel {
            pipeline: name.to_owned(),
        };
        let f = &families;
        let collected = f.collected.get_or_create(&label).clone();
        let deduped = f.deduped.get_or_create(&label).clone();
        let accepted = f.accepted.get_or_create(&label).clone();
        let ingest_seconds = f.ingest_seconds.get_or_create(&label).clone();
        let tick_lateness_seconds = TickLateness {
            histogram: f.tick_lateness_seconds.get_or_create(&label).clone(),
            name: name.to_owned(),
            health: health.clone(),
        };
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
            status,
        }
    }

    /// A poll at `at` returned `records` records, or failed because of
    /// `Err(why)` (with its causes): for the status page.
    pub(crate) fn polled(&self, at: time::OffsetDateTime, outcome: Result<usize, String>) {
        let outcome = match outcome {
            Ok(n) => Outcome::Records(n),
            Err(why) => Outcome::Failed(why),
        };
        self.status.polled(&self.name, at, outcome);
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
        let oldest_age = stats
            .oldest_undelivered
            .map(|at| Duration::try_from(now - at).unwrap_or(Duration::ZERO));
        f.oldest_undelivered_age
            .get_or_create(l)
            .set(oldest_age.map_or(0.0, |age| age.as_secs_f64()));
        f.utilisation.get_or_create(l).set(stats.utilisation);
        f.poll_stretch.get_or_create(l).set(stretch);
        self.status.delivered(
            &self.name,
            now,
            stats
                .delivered_records
                .checked_sub(last.delivered_records)
                .unwrap_or(stats.delivered_records),
            Backlog {
                spooled_bytes: stats.spooled_bytes,
                oldest_age,
                utilisation: stats.utilisation,
                next_close: stats.next_close,
            },
        );
        self.health.tick_ended(
            &self.name,
            Published {
                utilisation: stats.utilisation,
                spooled_bytes: stats.spooled_bytes,
                held_bytes,
                oldest_age,
                delivered: stats.delivered_records,
                failed: stats.failed_attempts,
            },
        );
        self.last = stats.clone();
    }
}
