//! The delivery hook: [`DeliveryLog`], which the catalog implements, and
//! [`Deliveries`], the handle terminal sinks report every landed file
//! through.
//!
//! **Architecture invariant:** [`Deliveries::report`] returns only once the
//! record is durable, and runs the log's blocking IO on tokio's blocking
//! pool, never on an executor thread. This module does no IO itself.

use std::fmt;
use std::sync::Arc;

use crate::Delivery;

/// Why a delivery could not be recorded. Every variant is worth a retry: the
/// sink returns a transient error, its batch stays spooled and is delivered
/// and reported again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryLogError {
    /// Appending to or syncing the log failed. What to do: check the
    /// log's directory for free space and permissions.
    #[error("cannot record the delivery of {path} in {log}: {action} failed: {source}")]
    Write {
        /// The log (the manifest's path).
        log: String,
        /// The delivered file's path.
        path: String,
        /// What was being done: opening, appending, syncing.
        action: &'static str,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The record could not be encoded for the log.
    #[error("cannot encode the delivery record of {path}: {reason}")]
    Encode {
        /// The delivered file's path.
        path: String,
        /// What the encoder reported.
        reason: String,
    },
    /// The task that writes the record stopped (a panic, or the runtime
    /// shutting down).
    #[error("recording the delivery of {path} stopped: {reason}")]
    Stopped {
        /// The delivered file's path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Where terminal sinks report deliveries; implemented by the catalog.
///
/// `record` may block on file IO (an append and an fsync): call it from a
/// blocking thread, or through [`Deliveries::report`], which does. It must
/// return only once the record is durable, so that the sink may let the
/// batch go.
pub trait DeliveryLog: Send + Sync + fmt::Debug {
    /// Records `delivery` durably.
    ///
    /// # Errors
    ///
    /// [`DeliveryLogError`] when the record is not durable.
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError>;
}

/// A cloneable handle to a [`DeliveryLog`], held by terminal sinks.
#[derive(Clone)]
pub struct Deliveries(Arc<dyn DeliveryLog>);

impl fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Deliveries").field(&self.0).finish()
    }
}

impl Deliveries {
    /// A handle to `log`.
    pub fn new(log: impl DeliveryLog + 'static) -> Self {
        Self(Arc::new(log))
    }

    /// A handle to a shared log.
    pub fn from_arc(log: Arc<dyn DeliveryLog>) -> Self {
        Self(log)
    }

    /// Records `delivery` on the calling thread (which may block).
    ///
    /// # Errors
    ///
    /// [`DeliveryLogError`] when the record is not durable.
    pub fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        self.0.record(delivery)
    }

    /// Records `delivery` on tokio's blocking pool, so the executor's
    /// threads never wait on the log's fsync. Call it after the file is in
    /// place and before `ingest` returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`DeliveryLogError`] when the record is not durable.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::task::spawn_blocking` does).
    pub async fn report(&self, delivery: Delivery) -> Result<(), DeliveryLogError> {
        let log = Arc::clone(&self.0);
        let path = delivery.path.clone();
        crate::blocking(move || log.record(&delivery))
            .await
            .map_err(|e| DeliveryLogError::Stopped {
                path,
                reason: e.to_string(),
            })?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::*;
    use crate::WindowMeta;

    #[derive(Debug, Default)]
    struct Keep(Mutex<Vec<Delivery>>);

    impl DeliveryLog for Arc<Keep> {
        fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
            self.0
                .lock()
                .map_err(|e| DeliveryLogError::Stopped {
                    path: delivery.path.clone(),
                    reason: e.to_string(),
                })?
                .push(delivery.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn report_records_on_the_blocking_pool() {
        let keep = Arc::new(Keep::default());
        let deliveries = Deliveries::new(Arc::clone(&keep));
        let window = WindowMeta::containing(
            "air",
            OffsetDateTime::UNIX_EPOCH + Duration::from_secs(4000),
            Duration::from_secs(3600),
        );
        let d = Delivery::new(&window, "/data", "data/air/x.parquet", 3, 10, [0xab; 32])
            .with_attempts(0)
            .with_commit("c0ffee");
        deliveries.report(d.clone()).await.unwrap();
        let got = keep.0.lock().unwrap().clone();
        assert_eq!(got, [d]);
        assert_eq!(got[0].attempts, 1, "attempts are at least one");
        assert_eq!(got[0].window_start.unix_timestamp(), 3600);
        assert_eq!(got[0].sha256_hex(), "ab".repeat(32));
    }
}
