//! File IO off the executor, bounded process-wide.
//!
//! Every blocking step of meathook (reading a spool chunk, encoding a
//! window file, publishing it, recovering a spool) runs through [`blocking`]
//! rather than `tokio::task::spawn_blocking` directly. At most
//! [`MAX_BLOCKING`] run at once in the process, so ten thousand pipelines
//! that open their spools or close their windows together queue for a few
//! threads instead of growing tokio's blocking pool to its 512-thread limit
//! (each thread with its files open).
//!
//! **Invariant:** a closure given to [`blocking`] never waits for another
//! one (no locks held across, no channels awaited), so the bound cannot
//! deadlock: every permit is given back when its closure returns.

use tokio::sync::Semaphore;
use tokio::task::JoinError;

/// Most blocking steps running at once in the process.
pub const MAX_BLOCKING: usize = 16;

static PERMITS: Semaphore = Semaphore::const_new(MAX_BLOCKING);

/// Runs `f` on tokio's blocking pool once one of the [`MAX_BLOCKING`]
/// permits is free. An error is `f`'s panic.
///
/// Every blocking step of meathook runs through here, so thousands of
/// pipelines that open their spools or close their windows together queue
/// for a few threads instead of growing tokio's blocking pool to its limit.
/// `f` must not wait for another such step.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JoinError> {
    // The semaphore is never closed, so acquiring cannot fail; if it ever
    // did, running unbounded is the safe fallback.
    let permit = PERMITS.acquire().await.ok();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
}
