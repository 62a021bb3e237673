//! Capped exponential backoff with jitter, shared by every layer that retries.

use std::time::Duration;

/// Delays between retries: `base`, doubling per failure up to `cap`, each
/// drawn uniformly from the upper half (`[d/2, d]`) so that many retrying
/// layers do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff starting at `base` and never above `cap` (a `cap` below
    /// `base` is raised to `base`).
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            failures: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The same backoff with a fixed jitter seed, for reproducible schedules.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// Records a failure and returns how long to wait before the next try.
    pub fn fail(&mut self) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures.min(31)));
        self.failures = self.failures.saturating_add(1);
        let ceiling = exp.min(self.cap);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.rng.u64(0..=spread))
    }

    /// Records a success: the next failure waits `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl Default for Backoff {
    /// One second, doubling up to five minutes.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).with_seed(7);
        let expected_ceilings = [1, 2, 4, 8, 10, 10, 10];
        for ceiling in expected_ceilings {
            let d = b.fail();
            let ceiling = Duration::from_secs(ceiling);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        assert_eq!(b.failures(), 7);
        b.reset();
        assert!(b.fail() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(Duration::from_secs(8), Duration::from_secs(8)).with_seed(1);
        let delays: std::collections::HashSet<_> = (0..20).map(|_| b.fail()).collect();
        assert!(delays.len() > 10, "only {} distinct delays", delays.len());
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(b.fail() <= Duration::from_secs(60));
        }
    }
}
