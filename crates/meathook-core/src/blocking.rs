//! File IO off the executor, on a fixed set of threads.
//!
//! Every blocking step of meathook (reading a spool chunk, encoding a
//! window file, publishing it, recovering a spool) runs through [`blocking`]
//! rather than `tokio::task::spawn_blocking`. The steps run on
//! [`MAX_BLOCKING`] threads of meathook's own, started on first use, so ten
//! thousand pipelines that open their spools or close their windows
//! together queue for those threads instead of growing tokio's blocking
//! pool towards its 512-thread limit (which a semaphore in front of it does
//! not prevent: a finished task's thread is not always idle again by the
//! time the next task is spawned, so tokio starts another).
//!
//! **Invariant:** a closure given to [`blocking`] never waits for another
//! one (no locks held across, no channels awaited), so the fixed number of
//! threads cannot deadlock.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Threads that run blocking steps, process-wide.
pub const MAX_BLOCKING: usize = 16;

type Task = Box<dyn FnOnce() + Send>;

/// A blocking step that panicked, or could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingError(String);

impl fmt::Display for BlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockingError {}

fn tasks() -> Option<&'static mpsc::Sender<Task>> {
    static TASKS: OnceLock<Option<mpsc::Sender<Task>>> = OnceLock::new();
    TASKS
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Task>();
            let rx = Arc::new(Mutex::new(rx));
            let mut started = 0;
            for i in 0..MAX_BLOCKING {
                let rx = Arc::clone(&rx);
                let spawned = std::thread::Builder::new()
                    .name(format!("meathook-io-{i}"))
                    .spawn(move || {
                        loop {
                            let task = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                            match task {
                                Ok(task) => task(),
                                Err(_) => return,
                            }
                        }
                    });
                started += usize::from(spawned.is_ok());
            }
            (started > 0).then_some(tx)
        })
        .as_ref()
}

/// Runs `f` on one of meathook's [`MAX_BLOCKING`] IO threads and awaits
/// its result. An error is `f`'s panic (or threads that could not start).
///
/// `f` must not wait for another such step.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BlockingError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let task: Task = Box::new(move || {
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            BlockingError(format!("a blocking step panicked: {what}"))
        });
        let _ = reply.send(result);
    });
    let Some(tasks) = tasks() else {
        return Err(BlockingError("cannot start meathook's IO threads".into()));
    };
    if tasks.send(task).is_err() {
        return Err(BlockingError("meathook's IO threads are gone".into()));
    }
    answer
        .await
        .unwrap_or_else(|_| Err(BlockingError("a blocking step was dropped".into())))
}
