//! Memory budgets and backpressure.
//!
//! Each pipeline weighs what it holds in memory: the records its sink stack
//! refused (kept for the next offer, never dropped) plus what the stack's
//! memory tiers report through `Sink::observe`. Its utilisation is the
//! highest of that weight against its own budget, the shared
//! [`MemoryBudget`] across all pipelines, and the fullest layer of its
//! stack (a spool near its disk limit counts too). Above the
//! [`Backpressure`] threshold the pipeline stretches its poll interval; at
//! the limit it pauses polling — while still offering what it holds and
//! advancing time — until the buffers drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A memory budget shared by every pipeline of a runtime.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    limit: u64,
    used: Arc<AtomicU64>,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (the runtime refuses zero).
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Bytes held by all pipelines.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Used over limit, from 0.0 up (above 1.0 when over budget).
    #[allow(clippy::cast_precision_loss)] // a ratio
    pub fn utilisation(&self) -> f64 {
        self.used() as f64 / self.limit as f64
    }
}

/// One pipeline's part of a [`MemoryBudget`]; returns it when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    budget: MemoryBudget,
    mine: u64,
}

impl Share {
    pub(crate) fn new(budget: MemoryBudget) -> Self {
        Self { budget, mine: 0 }
    }

    /// Sets this pipeline's weight to `bytes`.
    pub(crate) fn set(&mut self, bytes: u64) {
        if bytes >= self.mine {
            self.budget
                .used
                .fetch_add(bytes - self.mine, Ordering::Relaxed);
        } else {
            self.budget
                .used
                .fetch_sub(self.mine - bytes, Ordering::Relaxed);
        }
        self.mine = bytes;
    }

    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// How utilisation slows polling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backpressure {
    threshold: f64,
    max_stretch: f64,
}

impl Default for Backpressure {
    /// Stretch from 80 % utilisation, up to four times the interval just
    /// below the limit; pause at the limit.
    fn default() -> Self {
        Self {
            threshold: 0.8,
            max_stretch: 4.0,
        }
    }
}

impl Backpressure {
    /// Stretches polling above `threshold` (a utilisation from 0.0, below
    /// 1.0), up to `max_stretch` times the interval (at least 1.0). The
    /// runtime refuses other values when it starts.
    pub fn new(threshold: f64, max_stretch: f64) -> Self {
        Self {
            threshold,
            max_stretch,
        }
    }

    /// Why these values cannot work, if they cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if !(0.0..1.0).contains(&self.threshold) {
            Some(format!(
                "the threshold {} is not a utilisation from 0.0 and below 1.0",
                self.threshold
            ))
        } else if !(self.max_stretch >= 1.0 && self.max_stretch.is_finite()) {
            Some(format!(
                "the stretch {} is not a finite factor of at least 1.0",
                self.max_stretch
            ))
        } else {
            None
        }
    }

    /// The factor to stretch the poll interval by at `utilisation`, or
    /// `None` to pause polling.
    pub fn stretch(&self, utilisation: f64) -> Option<f64> {
        if utilisation >= 1.0 {
            None
        } else if utilisation <= self.threshold {
            Some(1.0)
        } else {
            let over = (utilisation - self.threshold) / (1.0 - self.threshold);
            Some(1.0 + (self.max_stretch - 1.0) * over)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_stretches_above_the_threshold_and_pauses_at_the_limit() {
        let bp = Backpressure::default();
        assert_eq!(bp.stretch(0.5), Some(1.0));
        assert_eq!(bp.stretch(0.8), Some(1.0));
        let mid = bp.stretch(0.9).unwrap();
        assert!((mid - 2.5).abs() < 1e-9, "{mid}");
        assert!(bp.stretch(0.999).unwrap() < 4.0);
        assert_eq!(bp.stretch(1.0), None);
        assert_eq!(bp.stretch(3.0), None);
    }

    #[test]
    fn shares_add_up_and_are_returned_on_drop() {
        let budget = MemoryBudget::new(1000);
        let mut a = Share::new(budget.clone());
        let mut b = Share::new(budget.clone());
        a.set(300);
        b.set(500);
        assert_eq!(budget.used(), 800);
        a.set(100);
        assert_eq!(budget.used(), 600);
        drop(b);
        assert_eq!(budget.used(), 100);
        assert!((budget.utilisation() - 0.1).abs() < 1e-9);
    }
}
