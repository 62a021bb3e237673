//! The `/metrics` and `/healthz` listener (feature `metrics-http`): metrics
//! in OpenMetrics or the Prometheus text format, as the client's `Accept`
//! asks, and health as one line per failing pipeline. Built to survive a hostile
//! network: it holds at most `max_connections` connections (the rest
//! wait in the kernel's accept backlog, holding no descriptor of this
//! process, so the spools keep theirs), closes a connection that does not
//! send a complete request head within `header_timeout` (of connecting, or
//! of its last answer: idle keep-alive connections included), and asks
//! any connection to close once it is `connection_timeout` old, dropping
//! it a `header_timeout` later if it still has not.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::exposition::MetricsFormat;
use crate::metrics::Telemetry;

/// How the listener bounds its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections held at once.
    pub(crate) max_connections: usize,
    /// The longest wait for a complete request head.
    pub(crate) header_timeout: Duration,
    /// The age at which a connection is asked to close.
    pub(crate) connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(60),
        }
    }
}

/// Binds `addr` now (so a taken port fails the start), serves in the
/// background.
pub(crate) fn serve(
    addr: SocketAddr,
    telemetry: Telemetry,
    limits: Limits,
) -> Result<JoinHandle<()>, RuntimeError> {
    let bind = |addr| -> std::io::Result<tokio::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    };
    let listener = bind(addr).map_err(|source| RuntimeError::MetricsListen { addr, source })?;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    Ok(tokio::spawn(async move {
        // Owned here, so stopping the listener ends every connection.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            // A slot first: while every slot is taken, new connections
            // wait in the backlog and cost this process no descriptor.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors (EMFILE) or memory: wait rather
                    // than spin; a reset before accept needs no wait.
                    if !matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                    ) {
                        tracing::warn!(%error, "metrics listener cannot accept a connection; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            };
            let telemetry = telemetry.clone();
            connections.spawn(async move {
                connection(stream, telemetry, limits).await;
                drop(slot);
            });
        }
    }))
}

/// Serves one connection within `limits`.
async fn connection(stream: tokio::net::TcpStream, telemetry: Telemetry, limits: Limits) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let answer = answer(&request, &telemetry);
        async move { Ok::<_, Infallible>(answer) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 << 10);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = tokio::time::sleep(limits.connection_timeout) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.header_timeout, conn).await;
}

/// The answer to one request: `/metrics` in the format the `Accept` header
/// asks for (OpenMetrics or the Prometheus text format, see
/// [`MetricsFormat::negotiate`]), `/healthz` as 200 `ok` or 503 with one
/// line per failing pipeline.
fn answer(request: &Request<hyper::body::Incoming>, telemetry: &Telemetry) -> Response<String> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let accept = request
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = MetricsFormat::negotiate(accept);
            (
                StatusCode::OK,
                format.content_type(),
                telemetry.encode_as(format),
            )
        }
        (&Method::GET | &Method::HEAD, "/" | "/status") => (
            StatusCode::OK,
            "text/html; charset=utf-8",
            telemetry.status_page(),
        ),
        (&Method::GET | &Method::HEAD, "/healthz") => match telemetry.health() {
            Ok(()) => (
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok\n".to_owned(),
            ),
            Err(problems) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                problems.join("\n") + "\n",
            ),
        },
        (_, "/metrics" | "/healthz" | "/" | "/status") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /status, /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The metrics' format depends on `Accept`: caches must keep them apart.
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}
