//! File IO off the executor, bounded process-wide.
//!
//! Every blocking step of meathook (reading a spool chunk, encoding a
//! window file, publishing it, recovering a spool) runs through [`blocking`]
//! rather than `tokio::task::spawn_blocking` directly. At most
//! [`MAX_BLOCKING`] run at once in the process, so ten thousand pipelines
//! that open their spools or close their windows together queue for a few
//! of tokio's blocking threads instead of growing its pool towards its
//! 512-thread limit, each thread with its files open.
//!
//! A step's turn is given back only once the caller has its result, after
//! the blocking thread has finished the closure: a turn given back inside
//! the closure lets the next step start while that thread is not yet idle,
//! and tokio starts another thread for it (ten thousand spools opening
//! grew the pool to over 400 threads that way).
//!
//! The steps run on tokio's blocking pool (not threads of meathook's own)
//! so that a runtime with a paused clock sees them as work in progress and
//! does not jump its clock past them. Even so, a step may find no idle
//! thread while another is finishing, and tokio starts one: a process with
//! thousands of pipelines should cap the pool,
//! `Builder::max_blocking_threads(MAX_BLOCKING + 16)` (the example does;
//! the rest is for DNS lookups), which keeps it to that many threads.
//!
//! **Invariant:** a closure given to [`blocking`] never waits for another
//! one (no locks held across, no channels awaited), so the bound cannot
//! deadlock: every turn is given back when its closure returns.

use tokio::sync::Semaphore;
use tokio::task::JoinError;

/// Most blocking steps running at once in the process.
pub const MAX_BLOCKING: usize = 16;

static TURNS: Semaphore = Semaphore::const_new(MAX_BLOCKING);

/// Runs `f` on tokio's blocking pool once one of the [`MAX_BLOCKING`] turns
/// is free, and awaits its result. An error is `f`'s panic.
///
/// Every blocking step of meathook runs through here, so thousands of
/// pipelines that open their spools or close their windows together queue
/// for a few threads. `f` must not wait for another such step.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JoinError> {
    // The semaphore is never closed, so acquiring cannot fail; if it ever
    // did, running unbounded is the safe fallback.
    let turn = TURNS.acquire().await.ok();
    let result = tokio::task::spawn_blocking(f).await;
    // Let the thread that ran `f` go idle before the next step is spawned.
    tokio::task::yield_now().await;
    drop(turn);
    result
}
