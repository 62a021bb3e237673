//! Log lines a test reads back: a `tracing` subscriber for the current
//! thread that writes plain text into memory.

use std::sync::{Arc, Mutex, PoisonError};

/// What the subscriber of [`LogCapture::start`] wrote, shared with it.
#[derive(Debug, Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Captures the current thread's events at `level` and above, as
    /// plain text without colours, until the guard is dropped.
    pub fn start(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        // `tracing` caches each callsite's interest for the whole process,
        // computed when the callsite is first hit. With one dispatcher
        // registered it asks only the hitting thread's default: on another
        // test's thread, none, so the line is cached as never wanted and
        // this capture would not see it either. A process-wide default
        // that wants every event keeps every cached interest above never;
        // each thread's own subscriber still decides what it records.
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let capture = Self::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
