//! `Attempts`: how many times a terminal sink has tried one batch, for
//! [`Delivery::attempts`](crate::Delivery::attempts).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::{BatchId, WindowMeta};

/// Counts a terminal sink's attempts at one batch across retries, for
/// [`Delivery::attempts`](crate::Delivery::attempts): the attempt after `n` failures at the same
/// pipeline, window and batch is attempt `n + 1`; any other batch starts
/// again at 1.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    /// The batch whose last attempt failed, and how many attempts failed.
    failing: Option<(Arc<str>, OffsetDateTime, Option<BatchId>, u32)>,
}

impl Attempts {
    /// The number of the attempt now being made at `window`'s batch.
    pub fn current(&self, window: &WindowMeta) -> u32 {
        match &self.failing {
            Some((pipeline, start, batch, failed))
                if *pipeline == window.pipeline
                    && *start == window.start
                    && *batch == window.batch =>
            {
                failed.saturating_add(1)
            }
            _ => 1,
        }
    }

    /// Records how the attempt at `window`'s batch ended.
    pub fn note(&mut self, window: &WindowMeta, ok: bool) {
        self.failing = if ok {
            None
        } else {
            let failed = self.current(window);
            Some((
                Arc::clone(&window.pipeline),
                window.start,
                window.batch,
                failed,
            ))
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn attempts_count_failures_of_one_batch_only() {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(7200);
        let a = WindowMeta::containing("air", at, Duration::from_secs(3600))
            .with_batch(BatchId::legacy(1, 9));
        let b = a.clone().with_batch(BatchId::legacy(10, 19));
        let mut attempts = Attempts::default();
        assert_eq!(attempts.current(&a), 1);
        attempts.note(&a, false);
        attempts.note(&a, false);
        assert_eq!(attempts.current(&a), 3);
        assert_eq!(attempts.current(&b), 1, "another batch starts at 1");
        attempts.note(&b, false);
        assert_eq!(
            attempts.current(&a),
            1,
            "only the last failing batch counts"
        );
        attempts.note(&b, true);
        assert_eq!(attempts.current(&b), 1, "a success resets the count");
    }
}
