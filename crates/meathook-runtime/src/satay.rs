//! `SatayCollector`: any satay-generated API client as a collector.
//!
//! The request closure sends an action with satay-reqwest's
//! `send_buffered_with`, which keeps the status and headers next to the body,
//! and turns the result into a [`SatayReply`] with `SatayReply::from`: a 2xx
//! body is decoded by the action's own decoder there, while the action (which
//! may borrow the client's API value) is still alive. The collector flattens
//! decoded responses into records. Any other status is a collector error that
//! names the status and the start of the body, and a 429 carries the server's
//! `Retry-After` or `RateLimit` hint, so the pipeline waits that long before
//! polling again.

use std::time::Duration;

use meathook_core::Collector;
use satay_runtime::{BufferedResponse, OwnedAction};

/// The longest body snippet an error carries.
const SNIPPET: usize = 200;

/// Polls a satay action; see the [module docs](crate).
///
/// ```no_run
/// use meathook_core::Collector as _;
/// use meathook_runtime::{SatayCollector, SatayReply};
/// use satay_reqwest::ReqwestActionExt as _;
///
/// # async fn demo() {
/// let api = nea_rs::Api::new();
/// let mut collector = SatayCollector::new(
///     "air_temperature",
///     reqwest::Client::new(),
///     move |client: reqwest::Client| {
///         let api = api.clone();
///         async move { SatayReply::from(api.weather_readings().air_temperature().send_buffered_with(&client).await) }
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
/// );
/// let readings: Vec<(String, f64)> = collector.collect().await.unwrap_or_default();
/// # let _ = readings; }
/// ```
pub struct SatayCollector<Cl, F, G> {
    name: String,
    client: Cl,
    make_request: F,
    flatten: G,
}

impl<Cl, F, G> std::fmt::Debug for SatayCollector<Cl, F, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SatayCollector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<Cl, F, G> SatayCollector<Cl, F, G> {
    /// A collector named `name` that awaits `make_request(client.clone())` on
    /// every poll and turns a decoded 2xx response into records with
    /// `flatten`.
    pub fn new(name: impl Into<String>, client: Cl, make_request: F, flatten: G) -> Self {
        Self {
            name: name.into(),
            client,
            make_request,
            flatten,
        }
    }
}

/// What one request of a satay action came to, owned: build it with
/// `SatayReply::from(action.send_buffered_with(&client).await)`.
#[derive(Debug)]
pub enum SatayReply<T, E> {
    /// A 2xx response, decoded (or not) by the action's decoder.
    Decoded(Result<T, satay_runtime::Error>),
    /// Any other status.
    Status {
        /// The status.
        status: http::StatusCode,
        /// The server's hint, from `Retry-After` or `RateLimit`.
        retry_after: Option<Duration>,
        /// The start of the body, for the log.
        body: String,
    },
    /// The request could not be sent or its response not read.
    Transport(E),
}

impl<A, B, E> From<Result<BufferedResponse<A, B>, E>> for SatayReply<A::OwnedResponse, E>
where
    A: OwnedAction,
    B: AsRef<[u8]>,
{
    fn from(sent: Result<BufferedResponse<A, B>, E>) -> Self {
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Self::Transport(error),
        };
        let parts = response.parts();
        if parts.status.is_success() {
            Self::Decoded(response.decode_owned())
        } else {
            Self::Status {
                status: parts.status,
                retry_after: retry_hint(&parts.headers),
                body: snippet(parts.body.as_ref()),
            }
        }
    }
}

/// Why a poll of a [`SatayCollector`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SatayError<E> {
    /// The request could not be sent or its response not read (timeout,
    /// reset, DNS).
    #[error("{pipeline}: request failed: {source}")]
    Transport {
        /// The pipeline.
        pipeline: String,
        /// The transport's error.
        #[source]
        source: E,
    },
    /// The API answered with a status other than 2xx.
    #[error("{pipeline}: the API answered {status}{}: {body}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Status {
        /// The pipeline.
        pipeline: String,
        /// The status.
        status: http::StatusCode,
        /// The server's hint, from `Retry-After` or `RateLimit`.
        retry_after: Option<Duration>,
        /// The start of the body, for the log.
        body: String,
    },
    /// A 2xx body did not decode as the action's response.
    #[error("{pipeline}: the response could not be decoded: {source}")]
    Decode {
        /// The pipeline.
        pipeline: String,
        /// The decoder's error.
        #[source]
        source: satay_runtime::Error,
    },
}

impl<Cl, F, Fut, T, E, G, R> Collector for SatayCollector<Cl, F, G>
where
    Cl: Clone + Send + 'static,
    F: FnMut(Cl) -> Fut + Send + 'static,
    Fut: Future<Output = SatayReply<T, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
    G: FnMut(T) -> Vec<R> + Send + 'static,
    R: Send + 'static,
{
    type Record = R;
    type Error = SatayError<E>;

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(&mut self) -> Result<Vec<R>, Self::Error> {
        let pipeline = self.name.clone();
        match (self.make_request)(self.client.clone()).await {
            SatayReply::Decoded(Ok(decoded)) => Ok((self.flatten)(decoded)),
            SatayReply::Decoded(Err(source)) => Err(SatayError::Decode { pipeline, source }),
            SatayReply::Status {
                status,
                retry_after,
                body,
            } => Err(SatayError::Status {
                pipeline,
                status,
                retry_after,
                body,
            }),
            SatayReply::Transport(source) => Err(SatayError::Transport { pipeline, source }),
        }
    }

    fn error_kind(error: &Self::Error) -> &'static str {
        match error {
            SatayError::Transport { .. } => "transport",
            SatayError::Status { status, .. } if status.as_u16() == 429 => "status_429",
            SatayError::Status { status, .. } if status.is_server_error() => "status_5xx",
            SatayError::Status { .. } => "status",
            SatayError::Decode { .. } => "decode",
        }
    }

    fn retry_after(error: &Self::Error) -> Option<Duration> {
        match error {
            SatayError::Status { retry_after, .. } => *retry_after,
            SatayError::Transport { .. } | SatayError::Decode { .. } => None,
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
    fn snippets_are_one_short_line() {
        assert_eq!(
            snippet(b"<html>\n<body>down</body>\n</html>"),
            "<html> <body>down</body> </html>"
        );
        let long = vec![b'x'; 500];
        assert_eq!(snippet(&long).chars().count(), SNIPPET + 1);
    }
}
