//! `SatayCollector`: any satay-generated API client as a collector.
//!
//! The request closure gets a [`SataySender`] on every poll and sends one
//! action with it: `sender.send(api.weather_readings().air_temperature())`.
//! The sender, not the action's transport, reads the answer, so every read is
//! bounded:
//!
//! - **size**: a 2xx body larger than the collector's body limit (default
//!   [`DEFAULT_BODY_LIMIT`], 8 MiB; see [`SatayCollector::with_body_limit`])
//!   is refused as soon as its `Content-Length` announces it, or as soon as
//!   the streamed bytes pass the limit; only the first bytes of any other
//!   status are read, for the log. A hostile or broken server cannot make the
//!   process allocate more than the limit.
//! - **time**: sending, the headers and the whole body share one deadline
//!   (default [`DEFAULT_TIMEOUT`], 30 s; see [`SatayCollector::with_timeout`]),
//!   so a server that drips one byte at a time cannot hold a poll open.
//!
//! Both are [`SatayError`]s like any other: counted under their kind
//! (`too_large`, `timeout`), logged, and polled again on the next tick. Errors
//! name the URL without its query string, user or password, where API keys
//! live.
//!
//! A 2xx body is decoded by the action's own decoder; the collector flattens
//! decoded responses into records. Any other status is a collector error that
//! names the status and the start of the body, and a 429 carries the server's
//! `Retry-After` or `RateLimit` hint, so the pipeline waits that long before
//! polling again.

use std::sync::Arc;
use std::time::Duration;

use meathook_core::Collector;
use satay_runtime::{OwnedAction, ResponseParts};

/// The longest body snippet an error carries.
const SNIPPET: usize = 200;

/// How much of a non-2xx body is read: enough for [`SNIPPET`] characters of
/// UTF-8.
const ERROR_BODY: usize = 4 * SNIPPET;

/// The default largest 2xx body a [`SatayCollector`] reads: 8 MiB, far above
/// a JSON answer of a polled API.
pub const DEFAULT_BODY_LIMIT: usize = 8 << 20;

/// The default deadline of one request of a [`SatayCollector`], from sending
/// to the last byte of the body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls a satay action; see the [module docs](crate).
///
/// ```no_run
/// use meathook_core::Collector as _;
/// use meathook_runtime::{SatayCollector, SataySender};
///
/// # async fn demo() {
/// let api = nea_rs::Api::new();
/// let mut collector = SatayCollector::new(
///     "air_temperature",
///     reqwest::Client::new(),
///     move |sender: SataySender| {
///         let api = api.clone();
///         async move { sender.send(api.weather_readings().air_temperature()).await }
///     },
///     // Only decoded 2xx responses reach this closure; others are errors.
///     |response: nea_rs::AirTemperatureOperationResponse| match response {
///         nea_rs::AirTemperatureOperationResponse::Ok(ok) => ok
///             .data
///             .readings
///             .into_iter()
///             .flat_map(|snapshot| snapshot.data)
///             .map(|reading| (reading.station_id.to_string(), reading.value))
///             .collect(),
///         _ => Vec::new(),
///     },
/// )
/// .with_body_limit(1 << 20)
/// .with_timeout(std::time::Duration::from_secs(10));
/// let readings: Vec<(String, f64)> = collector.collect().await.unwrap_or_default();
/// # let _ = readings; }
/// ```
pub struct SatayCollector<F, G> {
    sender: SataySender,
    make_request: F,
    flatten: G,
}

impl<F, G> std::fmt::Debug for SatayCollector<F, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SatayCollector")
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl<F, G> SatayCollector<F, G> {
    /// A collector named `name` that awaits `make_request(sender)` on every
    /// poll, where `sender` sends with `client`, and turns a decoded 2xx
    /// response into records with `flatten`.
    ///
    /// `client` keeps its own settings (proxy, TLS, its own timeouts); the
    /// collector adds its body limit and deadline on top.
    pub fn new(
        name: impl Into<String>,
        client: reqwest::Client,
        make_request: F,
        flatten: G,
    ) -> Self {
        Self {
            sender: SataySender {
                client,
                pipeline: Arc::from(name.into()),
                body_limit: DEFAULT_BODY_LIMIT,
                timeout: DEFAULT_TIMEOUT,
            },
            make_request,
            flatten,
        }
    }

    /// The largest 2xx body read, in bytes (default
    /// [`DEFAULT_BODY_LIMIT`]). A larger answer is a `too_large` error.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.sender.body_limit = bytes;
        self
    }

    /// How long one request may take, from sending to the last byte of the
    /// body (default [`DEFAULT_TIMEOUT`]). A slower answer is a `timeout`
    /// error. A pipeline's own collect timeout, when shorter, still applies.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.sender.timeout = timeout;
        self
    }
}

/// Sends one satay action for a [`SatayCollector`], reading the answer
/// within the collector's body limit and deadline.
#[derive(Clone)]
pub struct SataySender {
    client: reqwest::Client,
    pipeline: Arc<str>,
    body_limit: usize,
    timeout: Duration,
}

impl std::fmt::Debug for SataySender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SataySender")
            .field("pipeline", &self.pipeline)
            .field("body_limit", &self.body_limit)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What came back: the status, the headers and the body read so far.
type Answer = (http::StatusCode, http::HeaderMap, Vec<u8>);

impl SataySender {
    /// Sends `action` and decodes a 2xx answer with the action's own
    /// decoder.
    ///
    /// # Errors
    ///
    /// A [`SatayError`]: the request could not be built or sent, the answer
    /// was larger than the body limit or slower than the deadline, its status
    /// was not 2xx, or its body did not decode.
    pub async fn send<A>(self, action: A) -> Result<A::OwnedResponse, SatayError>
    where
        A: OwnedAction,
        A::RequestBody: Into<reqwest::Body>,
    {
        let pipeline = self.pipeline.to_string();
        let request = match action.request() {
            Ok(request) => request.map(Into::into),
            Err(source) => return Err(SatayError::Request { pipeline, source }),
        };
        let url = redacted(&request.uri().to_string());
        let request = match reqwest::Request::try_from(request) {
            Ok(request) => request,
            Err(source) => {
                return Err(SatayError::Transport {
                    pipeline,
                    url,
                    source: source.without_url(),
                });
            }
        };
        let (status, headers, body) =
            match tokio::time::timeout(self.timeout, self.exchange(request)).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(Failure::Transport(source))) => {
                    return Err(SatayError::Transport {
                        pipeline,
                        url,
                        source: source.without_url(),
                    });
                }
                Ok(Err(Failure::TooLarge { announced })) => {
                    return Err(SatayError::TooLarge {
                        pipeline,
                        url,
                        limit: self.body_limit,
                        announced,
                    });
                }
                Err(_) => {
                    return Err(SatayError::Timeout {
                        pipeline,
                        url,
                        timeout: self.timeout,
                    });
                }
            };
        if !status.is_success() {
            return Err(SatayError::Status {
                pipeline,
                url,
                status,
                retry_after: retry_hint(&headers),
                body: snippet(&body),
            });
        }
        A::decode_owned(ResponseParts {
            status,
            headers,
            body: body.as_slice(),
        })
        .map_err(|source| SatayError::Decode {
            pipeline,
            url,
            source,
        })
    }

    /// Sends `request` and reads its answer: a 2xx body up to the limit,
    /// the first [`ERROR_BODY`] bytes of any other.
    async fn exchange(&self, request: reqwest::Request) -> Result<Answer, Failure> {
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(Failure::Transport)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let cap = if status.is_success() {
            if let Some(announced) = response
                .content_length()
                .filter(|&n| n > self.body_limit as u64)
            {
                return Err(Failure::TooLarge {
                    announced: Some(announced),
                });
            }
            self.body_limit
        } else {
            ERROR_BODY
        };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::Transport)? {
            let room = cap - body.len();
            if chunk.len() > room {
                if status.is_success() {
                    return Err(Failure::TooLarge { announced: None });
                }
                // Enough for the log; the rest is never read.
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }
}

/// Why an exchange failed, before the sender names the pipeline and URL.
enum Failure {
    Transport(reqwest::Error),
    TooLarge { announced: Option<u64> },
}

/// `url` without its user, password, query string and fragment: what an
/// error may show.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// Why a poll of a [`SatayCollector`] failed. Every kind is transient: the
/// pipeline counts it, logs it and polls again on its next tick. The
/// message does not repeat the pipeline's name (each variant carries it in
/// `pipeline`, and the pipeline's log lines are in its span); log it with
/// [`ErrorChain`](meathook_core::ErrorChain) to see the cause below it
/// (DNS, refused connection, TLS, timeout).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SatayError {
    /// The action could not build its request (a bad base URL or parameter).
    #[error("the request could not be built: {source}")]
    Request {
        /// The pipeline.
        pipeline: String,
        /// The action's error.
        #[source]
        source: satay_runtime::Error,
    },
    /// The request could not be sent or its response not read (reset, DNS,
    /// TLS, the client's own timeout).
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The pipeline.
        pipeline: String,
        /// The URL, without query string or credentials.
        url: String,
        /// The transport's error (without the URL).
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx body was larger than the collector's body limit; nothing of it
    /// was kept.
    #[error(
        "the answer of {url} is larger than the body limit of {limit} bytes{}; if the API really sends that much, raise it with SatayCollector::with_body_limit",
        announced.map(|n| format!(" (it announced {n} bytes)")).unwrap_or_default()
    )]
    TooLarge {
        /// The pipeline.
        pipeline: String,
        /// The URL, without query string or credentials.
        url: String,
        /// The body limit, in bytes.
        limit: usize,
        /// The size the server announced in `Content-Length`, if it did.
        announced: Option<u64>,
    },
    /// The answer did not arrive in full within the collector's deadline.
    #[error(
        "{url} did not answer in full within {timeout:?}; if the API is this slow, raise it with SatayCollector::with_timeout"
    )]
    Timeout {
        /// The pipeline.
        pipeline: String,
        /// The URL, without query string or credentials.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The API answered with a status other than 2xx.
    #[error("{url} answered {status}{}: {body}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Status {
        /// The pipeline.
        pipeline: String,
        /// The URL, without query string or credentials.
        url: String,
        /// The status.
        status: http::StatusCode,
        /// The server's hint, from `Retry-After` or `RateLimit`.
        retry_after: Option<Duration>,
        /// The start of the body, for the log.
        body: String,
    },
    /// A 2xx body did not decode as the action's response.
    #[error("the answer of {url} could not be decoded: {source}")]
    Decode {
        /// The pipeline.
        pipeline: String,
        /// The URL, without query string or credentials.
        url: String,
        /// The decoder's error.
        #[source]
        source: satay_runtime::Error,
    },
}

impl<F, Fut, T, G, R> Collector for SatayCollector<F, G>
where
    F: FnMut(SataySender) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, SatayError>> + Send,
    G: FnMut(T) -> Vec<R> + Send + 'static,
    R: Send + 'static,
{
    type Record = R;
    type Error = SatayError;

    fn name(&self) -> &str {
        &self.sender.pipeline
    }

    async fn collect(&mut self) -> Result<Vec<R>, Self::Error> {
        let decoded = (self.make_request)(self.sender.clone()).await?;
        Ok((self.flatten)(decoded))
    }

    fn error_kind(error: &Self::Error) -> &'static str {
        match error {
            SatayError::Request { .. } => "request",
            SatayError::Transport { .. } => "transport",
            SatayError::TooLarge { .. } => "too_large",
            SatayError::Timeout { .. } => "timeout",
            SatayError::Status { status, .. } if status.as_u16() == 429 => "status_429",
            SatayError::Status { status, .. } if status.is_server_error() => "status_5xx",
            SatayError::Status { .. } => "status",
            SatayError::Decode { .. } => "decode",
        }
    }

    fn retry_after(error: &Self::Error) -> Option<Duration> {
        match error {
            SatayError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The start of a body as text, one line, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    if body.len() > SNIPPET {
        format!("{line}…")
    } else {
        line.to_owned()
    }
}

/// The server's wait hint: `Retry-After` (seconds or an HTTP date), else the
/// `t=` / `reset=` parameter of a `RateLimit` header.
pub(crate) fn retry_hint(headers: &http::HeaderMap) -> Option<Duration> {
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if let Some(value) = retry_after {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) =
            time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
        {
            let wait = at - time::OffsetDateTime::now_utc();
            return Some(Duration::try_from(wait).unwrap_or(Duration::ZERO));
        }
    }
    let ratelimit = headers.get("ratelimit").and_then(|v| v.to_str().ok())?;
    ratelimit
        .split([';', ','])
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| matches!(key.trim(), "t" | "reset"))
        .and_then(|(_, value)| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn retry_hints_come_from_retry_after_or_ratelimit() {
        assert_eq!(
            retry_hint(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_hint(&headers(&[("ratelimit", "\"api\";r=0;t=12")])),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            retry_hint(&headers(&[("ratelimit", "limit=10, remaining=0, reset=3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_hint(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_hint(&headers(&[])), None);
    }

    #[test]
    fn urls_in_errors_lose_their_credentials_and_query() {
        assert_eq!(
            redacted("https://user:secret@api.example.com:8443/v1/readings?api_key=SECRET#x"),
            "https://api.example.com:8443/v1/readings"
        );
        assert_eq!(redacted("not a url"), "(unparsable URL)");
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(
            snippet(b"<html>\n<body>down</body>\n</html>"),
            "<html> <body>down</body> </html>"
        );
        let long = vec![b'x'; 500];
        assert_eq!(snippet(&long).chars().count(), SNIPPET + 1);
    }
}
