//! The writer's own thread: every append, sync and seal runs there, never on
//! an executor thread, and without a blocking-pool hand-off per call.
//!
//! The spool sends a job (a closure over the [`Writer`]) through a channel
//! and awaits its answer on a oneshot channel. The thread owns the writer for
//! the spool's lifetime. The records of an appended batch are freed on the
//! thread after the answer is sent, so the caller does not wait for that. A
//! job that panics ends the thread (the writer may be half-way through an
//! update); the caller sees the answer channel close and poisons the spool,
//! as it did when a blocking task panicked.
//!
//! Waiting for the next job briefly in a spin loop before parking was
//! measured and dropped: on a machine with two busy cores the spinning
//! thread takes the CPU the caller needs, and ingest got no faster.
//!
//! **Invariant:** the thread ends when the spool drops its job sender; the
//! spool's `close` waits for that, so no file of the spool is written after
//! `close` returns.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::fs::Fs;
use crate::writer::Writer;

type Job<F> = Box<dyn FnOnce(&mut Writer<F>) + Send>;

/// A handle on the writer thread.
pub(crate) struct WriterThread<F: Fs> {
    jobs: mpsc::Sender<Job<F>>,
    exited: oneshot::Receiver<()>,
}

impl<F: Fs> std::fmt::Debug for WriterThread<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterThread")
    }
}

impl<F: Fs> WriterThread<F> {
    /// Moves `writer` onto a new thread.
    pub(crate) fn spawn(writer: Writer<F>) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job<F>>();
        let (exit_tx, exited) = oneshot::channel();
        std::thread::Builder::new()
            .name("meathook-spool-writer".into())
            .spawn(move || {
                // Dropped when the thread ends, however it ends.
                let _exit = exit_tx;
                let mut writer = writer;
                while let Ok(job) = rx.recv() {
                    if catch_unwind(AssertUnwindSafe(|| job(&mut writer))).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self { jobs, exited })
    }

    /// Runs `f` on the writer thread and answers its first result; the
    /// second is dropped there after the answer is sent (the records of a
    /// batch that was appended: freeing them is not the caller's wait).
    /// `None` if the thread is gone or `f` panicked.
    pub(crate) async fn run_then_drop<T: Send + 'static, D>(
        &self,
        f: impl FnOnce(&mut Writer<F>) -> (T, D) + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job<F> = Box::new(move |w| {
            let (answer, leftover) = f(w);
            let _ = tx.send(answer);
            drop(leftover);
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }

    /// Stops the thread after the jobs already sent and waits until it has
    /// ended (and dropped the writer with its files).
    pub(crate) async fn stop(self) {
        drop(self.jobs);
        let _ = self.exited.await;
    }
}
