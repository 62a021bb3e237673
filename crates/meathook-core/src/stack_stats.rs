//! `StackStats`: the figures a sink stack reports through
//! [`Sink::observe`](crate::Sink::observe), and the one copy of the rules by
//! which the figures of several layers combine.

use time::OffsetDateTime;

/// What a sink stack holds and has done, gathered by [`Sink::observe`](crate::Sink::observe).
///
/// Figures that describe what is held (`held_*`, `spooled_bytes`, the
/// `*_records` losses) add up across layers; `utilisation` is the fullest
/// layer's; `oldest_undelivered` and `next_close` are the earliest of any
/// layer. Delivery figures
/// (`delivered_records`, `failed_attempts`, `retries`) are those of the
/// deepest layer that delivers: each layer sets them, then the layer below
/// overwrites them if it delivers too. Across the two branches of a fan-out,
/// held figures add up and the delivery figures are the lagging branch's.
///
/// These rules are written once, as methods: [`add_held`](Self::add_held),
/// [`set_delivery`](Self::set_delivery), [`merge_below`](Self::merge_below)
/// and [`merge_branches`](Self::merge_branches). A layer that gathers the
/// figures of the stack below it by itself (a durable layer whose worker owns
/// the inner sink, a fan-out) merges them with these rather than by hand.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct StackStats {
    /// Records held in memory.
    pub held_records: u64,
    /// Bytes held in memory, as weighed.
    pub held_bytes: u64,
    /// The fullest layer's fill, from 0.0 to 1.0.
    pub utilisation: f64,
    /// Bytes held on disk by durable layers.
    pub spooled_bytes: u64,
    /// Collection time of the oldest record not yet delivered.
    pub oldest_undelivered: Option<OffsetDateTime>,
    /// When the window a windowing layer is filling now closes (and is
    /// handed on), the earliest of any layer.
    pub next_close: Option<OffsetDateTime>,
    /// Records the deepest delivering layer handed on successfully.
    pub delivered_records: u64,
    /// Delivery attempts refused below the deepest delivering layer.
    pub failed_attempts: u64,
    /// Delivery attempts made after a refusal.
    pub retries: u64,
    /// Records rejected on their own (unserialisable, unrepresentable).
    pub rejected_records: u64,
    /// Records dropped by a full-disk policy that drops.
    pub dropped_records: u64,
    /// Records lost to corruption and kept aside in quarantine.
    pub quarantined_records: u64,
    /// Records kept aside after a destination refused them permanently.
    pub dead_lettered_records: u64,
}

impl StackStats {
    /// Raises `utilisation` to `value` if it is higher.
    pub fn note_utilisation(&mut self, value: f64) {
        if value > self.utilisation {
            self.utilisation = value.min(1.0);
        }
    }

    /// Lowers `oldest_undelivered` to `at` if it is older.
    pub fn note_undelivered(&mut self, at: OffsetDateTime) {
        if self.oldest_undelivered.is_none_or(|old| at < old) {
            self.oldest_undelivered = Some(at);
        }
    }

    /// Adds `other`'s figures of what is held and what was lost: the
    /// counts (`held_*`, `spooled_bytes`, the `*_records` losses) add up,
    /// `utilisation` rises to `other`'s if that is higher and
    /// `oldest_undelivered` falls to `other`'s if that is older. The
    /// delivery figures are left as they are.
    pub fn add_held(&mut self, other: &StackStats) {
        self.held_records += other.held_records;
        self.held_bytes += other.held_bytes;
        self.spooled_bytes += other.spooled_bytes;
        self.rejected_records += other.rejected_records;
        self.dropped_records += other.dropped_records;
        self.quarantined_records += other.quarantined_records;
        self.dead_lettered_records += other.dead_lettered_records;
        self.note_utilisation(other.utilisation);
        if let Some(at) = other.oldest_undelivered {
            self.note_undelivered(at);
        }
        if let Some(at) = other.next_close {
            self.note_close(at);
        }
    }

    /// Lowers `next_close` to `at` if it is earlier.
    pub fn note_close(&mut self, at: OffsetDateTime) {
        if self.next_close.is_none_or(|close| at < close) {
            self.next_close = Some(at);
        }
    }

    /// Replaces the delivery figures (`delivered_records`,
    /// `failed_attempts`, `retries`) with `from`'s: what a delivering layer
    /// does, since the deepest layer that delivers has the last word.
    pub fn set_delivery(&mut self, from: &StackStats) {
        self.delivered_records = from.delivered_records;
        self.failed_attempts = from.failed_attempts;
        self.retries = from.retries;
    }

    /// Whether any delivery figure is set: a layer that reports none
    /// delivers nothing of its own, or has not delivered yet.
    pub fn reports_delivery(&self) -> bool {
        self.delivered_records > 0 || self.failed_attempts > 0 || self.retries > 0
    }

    /// Adds the figures `below` gathered from the stack under a layer, as
    /// its `observe` would have added them: held and lost figures with
    /// [`add_held`](Self::add_held), and the delivery figures replaced by
    /// `below`'s when it [reports any](Self::reports_delivery), so a stack
    /// below that delivers nothing leaves the layer's own.
    pub fn merge_below(&mut self, below: &StackStats) {
        self.add_held(below);
        if below.reports_delivery() {
            self.set_delivery(below);
        }
    }

    /// Adds the figures of two stacks side by side (the branches of a
    /// fan-out): the held and lost figures of both add up, and the delivery
    /// figures are those of the branch that has delivered fewer records
    /// (the left one on a tie), the one a user waits on.
    pub fn merge_branches(&mut self, left: &StackStats, right: &StackStats) {
        let lagging = if left.delivered_records <= right.delivered_records {
            left
        } else {
            right
        };
        self.set_delivery(lagging);
        self.add_held(left);
        self.add_held(right);
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    /// Every figure set, each to a different value.
    fn figures(base: u64, utilisation: f64, oldest: OffsetDateTime) -> StackStats {
        StackStats {
            held_records: base,
            held_bytes: base + 1,
            utilisation,
            spooled_bytes: base + 2,
            oldest_undelivered: Some(oldest),
            next_close: Some(oldest + Duration::hours(1)),
            delivered_records: base + 3,
            failed_attempts: base + 4,
            retries: base + 5,
            rejected_records: base + 6,
            dropped_records: base + 7,
            quarantined_records: base + 8,
            dead_lettered_records: base + 9,
        }
    }

    const EARLY: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn late() -> OffsetDateTime {
        EARLY + Duration::hours(5)
    }

    #[test]
    fn add_held_adds_counts_raises_utilisation_lowers_oldest_and_keeps_delivery() {
        let mut stats = figures(100, 0.2, late());
        stats.add_held(&figures(10, 0.7, EARLY));
        assert_eq!(
            (
                stats.held_records,
                stats.held_bytes,
                stats.spooled_bytes,
                stats.rejected_records,
                stats.dropped_records,
                stats.quarantined_records,
                stats.dead_lettered_records,
            ),
            (110, 112, 114, 122, 124, 126, 128)
        );
        assert!((stats.utilisation - 0.7).abs() < 1e-9);
        assert_eq!(stats.oldest_undelivered, Some(EARLY));
        assert_eq!(
            stats.next_close,
            Some(EARLY + Duration::hours(1)),
            "the earliest close"
        );
        assert_eq!(
            (
                stats.delivered_records,
                stats.failed_attempts,
                stats.retries
            ),
            (103, 104, 105),
            "delivery figures are not summed"
        );

        // A lower utilisation and a later instant change neither.
        stats.add_held(&figures(0, 0.1, late()));
        assert!((stats.utilisation - 0.7).abs() < 1e-9);
        assert_eq!(stats.oldest_undelivered, Some(EARLY));
        // Nothing undelivered below leaves the oldest as it is.
        stats.add_held(&StackStats::default());
        assert_eq!(stats.oldest_undelivered, Some(EARLY));
    }

    #[test]
    fn utilisation_never_exceeds_one() {
        let mut stats = StackStats::default();
        stats.add_held(&StackStats {
            utilisation: 3.0,
            ..StackStats::default()
        });
        assert!((stats.utilisation - 1.0).abs() < 1e-9);
    }

    #[test]
    fn merge_below_takes_delivery_figures_only_from_a_delivering_stack() {
        let mut stats = figures(100, 0.5, late());
        stats.merge_below(&StackStats {
            held_records: 1,
            ..StackStats::default()
        });
        assert_eq!(stats.held_records, 101);
        assert_eq!(
            (
                stats.delivered_records,
                stats.failed_attempts,
                stats.retries
            ),
            (103, 104, 105),
            "a stack that delivers nothing leaves the layer's own figures"
        );

        for below in [
            StackStats {
                retries: 2,
                ..StackStats::default()
            },
            figures(1, 0.0, late()),
        ] {
            let mut stats = figures(100, 0.5, late());
            stats.merge_below(&below);
            assert_eq!(
                (
                    stats.delivered_records,
                    stats.failed_attempts,
                    stats.retries
                ),
                (
                    below.delivered_records,
                    below.failed_attempts,
                    below.retries
                ),
                "the deepest delivering layer has the last word"
            );
        }
    }

    #[test]
    fn merge_branches_adds_both_and_reports_the_lagging_branch() {
        let left = figures(10, 0.3, late());
        let right = figures(20, 0.6, EARLY);
        let mut stats = StackStats::default();
        stats.merge_branches(&left, &right);
        assert_eq!(stats.held_records, 30);
        assert_eq!(stats.dead_lettered_records, 19 + 29);
        assert!((stats.utilisation - 0.6).abs() < 1e-9);
        assert_eq!(stats.oldest_undelivered, Some(EARLY));
        assert_eq!(stats.delivered_records, 13, "left delivered fewer");
        assert_eq!((stats.failed_attempts, stats.retries), (14, 15));

        let mut swapped = StackStats::default();
        swapped.merge_branches(&right, &left);
        assert_eq!(swapped.delivered_records, 13, "whichever side lags");
        assert_eq!(swapped.held_records, 30);

        let mut tie = StackStats::default();
        let other = StackStats {
            delivered_records: 13,
            retries: 99,
            ..StackStats::default()
        };
        tie.merge_branches(&left, &other);
        assert_eq!(tie.retries, 15, "the left branch on a tie");
    }
}
