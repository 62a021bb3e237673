//! Where layers and pipelines read the time from.

use std::fmt;

use time::OffsetDateTime;
use tokio::time::Instant;

/// A source of UTC time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that starts at a given UTC time and advances with tokio's clock.
///
/// Under a paused tokio runtime (`tokio::time::pause`, or
/// `#[tokio::test(start_paused = true)]`) it moves only when tokio's time
/// does, which makes timing logic testable without sleeping.
#[derive(Clone, Copy)]
pub struct TokioClock {
    origin: OffsetDateTime,
    anchor: Instant,
}

impl TokioClock {
    /// A clock reading `origin` now.
    pub fn starting_at(origin: OffsetDateTime) -> Self {
        Self {
            origin,
            anchor: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        let elapsed = Instant::now().saturating_duration_since(self.anchor);
        self.origin
            .saturating_add(time::Duration::try_from(elapsed).unwrap_or(time::Duration::MAX))
    }
}

impl fmt::Debug for TokioClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioClock")
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-11-23 10:00 UTC));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), datetime!(2026-11-23 10:01:30 UTC));
    }
}
