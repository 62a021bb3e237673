//! Stop requests: SIGTERM / ctrl-c, or a future for embedding.

use tokio::sync::mpsc;

/// A stream of stop requests: the first asks for a drain, a second for an
/// immediate stop.
#[derive(Debug)]
pub(crate) struct Signals {
    rx: mpsc::UnboundedReceiver<()>,
}

impl Signals {
    /// Listens for SIGTERM (on Unix) and ctrl-c.
    pub(crate) fn install() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            loop {
                #[cfg(unix)]
                let got = tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                    r = term.recv() => r.is_some(),
                };
                #[cfg(not(unix))]
                let got = tokio::signal::ctrl_c().await.is_ok();
                if !got || tx.send(()).is_err() {
                    break;
                }
            }
        });
        Ok(Self { rx })
    }

    /// One stop request, when `stop` completes.
    pub(crate) fn from_future(stop: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            stop.await;
            let _ = tx.send(());
        });
        Self { rx }
    }

    /// The next stop request; never resolves once no more can come.
    pub(crate) async fn next(&mut self) {
        if self.rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}
