//! `FlushPolicy`: when a layer hands what it holds to the next one.
//!
//! A policy has a window length (the layer files records under windows of
//! that length and flushes a window once it has closed) and optional caps on
//! records and bytes held, which flush early. Invalid values are rejected when
//! the policy is built, never silently rounded.

use std::num::NonZeroUsize;
use std::time::Duration;

use thiserror::Error;

/// The shortest window a policy accepts.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// When a layer flushes: at the end of each window, or earlier once it holds
/// `max_records` records or `max_bytes` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushPolicy {
    window: Duration,
    max_records: Option<NonZeroUsize>,
    max_bytes: Option<NonZeroUsize>,
}

/// A [`FlushPolicy`] value that cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The window length was zero.
    #[error("flush window is zero: use a window of at least one second, such as 1m or 1h")]
    ZeroWindow,
    /// The window length was not a whole number of seconds.
    #[error(
        "flush window {window:?} is not a whole number of seconds: windows are aligned to whole seconds, \
         use for example {rounded}s"
    )]
    FractionalWindow {
        /// The rejected length.
        window: Duration,
        /// The nearest whole-second length at or above one second.
        rounded: u64,
    },
    /// `max_records` was zero.
    #[error(
        "flush max_records is zero: give a positive count, or use FlushPolicy::every for no count limit"
    )]
    ZeroRecords,
    /// `max_bytes` was zero.
    #[error("flush max_bytes is zero: give a positive byte count, or leave the byte cap unset")]
    ZeroBytes,
}

impl FlushPolicy {
    /// Hourly windows, no record or byte cap.
    pub const fn hourly() -> Self {
        Self::whole_seconds(3600)
    }

    /// Daily windows (00:00 to 24:00 UTC), no record or byte cap.
    pub const fn daily() -> Self {
        Self::whole_seconds(86_400)
    }

    const fn whole_seconds(secs: u64) -> Self {
        Self {
            window: Duration::from_secs(secs),
            max_records: None,
            max_bytes: None,
        }
    }

    /// Windows of length `window`, no record or byte cap.
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroWindow`] for zero and
    /// [`PolicyError::FractionalWindow`] for a length that is not a whole
    /// number of seconds (including anything under a second).
    pub fn every(window: Duration) -> Result<Self, PolicyError> {
        if window.is_zero() {
            return Err(PolicyError::ZeroWindow);
        }
        if window.subsec_nanos() != 0 {
            let rounded = window.as_secs() + 1;
            return Err(PolicyError::FractionalWindow { window, rounded });
        }
        Ok(Self::whole_seconds(window.as_secs()))
    }

    /// Windows of length `window`, flushed early once `max_records` are held.
    ///
    /// # Errors
    ///
    /// As [`FlushPolicy::every`], and [`PolicyError::ZeroRecords`].
    pub fn new(window: Duration, max_records: usize) -> Result<Self, PolicyError> {
        Self::every(window)?.with_max_records(max_records)
    }

    /// The same policy, flushing early once `max_records` are held.
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroRecords`] for zero.
    pub fn with_max_records(mut self, max_records: usize) -> Result<Self, PolicyError> {
        self.max_records = Some(NonZeroUsize::new(max_records).ok_or(PolicyError::ZeroRecords)?);
        Ok(self)
    }

    /// The same policy, flushing early once `max_bytes` are held.
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroBytes`] for zero.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Result<Self, PolicyError> {
        self.max_bytes = Some(NonZeroUsize::new(max_bytes).ok_or(PolicyError::ZeroBytes)?);
        Ok(self)
    }

    /// The window length.
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// The record cap, if any.
    pub fn max_records(&self) -> Option<usize> {
        self.max_records.map(NonZeroUsize::get)
    }

    /// The byte cap, if any.
    pub fn max_bytes(&self) -> Option<usize> {
        self.max_bytes.map(NonZeroUsize::get)
    }

    /// Whether holding `records` records of `bytes` bytes exceeds a cap.
    pub fn is_full(&self, records: usize, bytes: usize) -> bool {
        self.max_records().is_some_and(|max| records >= max)
            || self.max_bytes().is_some_and(|max| bytes >= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_fractional_windows_are_rejected_with_a_hint() {
        assert_eq!(
            FlushPolicy::every(Duration::ZERO),
            Err(PolicyError::ZeroWindow)
        );
        let err = FlushPolicy::every(Duration::from_millis(500)).unwrap_err();
        assert_eq!(
            err,
            PolicyError::FractionalWindow {
                window: Duration::from_millis(500),
                rounded: 1
            }
        );
        assert!(err.to_string().contains("use for example 1s"), "{err}");
        assert!(FlushPolicy::every(Duration::from_millis(90_500)).is_err());
    }

    #[test]
    fn zero_caps_are_rejected() {
        assert_eq!(
            FlushPolicy::new(Duration::from_secs(60), 0),
            Err(PolicyError::ZeroRecords)
        );
        assert_eq!(
            FlushPolicy::hourly().with_max_bytes(0),
            Err(PolicyError::ZeroBytes)
        );
    }

    #[test]
    fn caps_fire_at_their_threshold() {
        let p = FlushPolicy::new(Duration::from_secs(300), 10)
            .and_then(|p| p.with_max_bytes(1000))
            .unwrap();
        assert_eq!(p.window(), Duration::from_secs(300));
        assert!(!p.is_full(9, 999));
        assert!(p.is_full(10, 0));
        assert!(p.is_full(0, 1000));
        assert!(!FlushPolicy::hourly().is_full(usize::MAX, usize::MAX));
    }
}
