//! Reading an answer within bounds: at most a given number of bytes, all
//! before the call's deadline.
//!
//! A Hub, a proxy, a captive portal or an upload host may answer with a
//! body of any size, or drip it a byte at a time. Reading it whole would
//! let any of them make the process allocate until it aborts (which no
//! supervisor can catch, and the spool replays the same window after the
//! restart), or hold a call open for ever.
//!
//! **Invariants:** no body is read without a size cap and a deadline. A
//! `2xx` answer larger than the cap (by its `Content-Length`, or as it
//! streams) is dropped unread as [`Cut::TooLarge`]; one not finished by the
//! deadline is [`Cut::Late`]. A refusal (any other status) is classified by
//! its status, so only the start of its body is kept
//! ([`REFUSAL_BODY`] bytes at most, less if the cap is lower) and a body
//! that is too long, too slow or cut only shortens the message. URLs are
//! shown without their query, fragment or user info ([`shown`]): a
//! presigned URL's query is a credential.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

/// The most of a refusal's body that is read: enough for the Hub's
/// `{"error": …}` and the start of an HTML error page.
pub(crate) const REFUSAL_BODY: usize = 64 * 1024;

/// An answer read within bounds.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Why an answer was not read.
#[derive(Debug)]
pub(crate) enum Cut {
    /// The body is larger than the cap.
    TooLarge,
    /// The body did not arrive before the deadline.
    Late,
    /// The connection failed while the body arrived.
    Transport(reqwest::Error),
}

/// Reads `response`'s body: at most `limit` bytes, before `deadline`.
pub(crate) async fn read(
    mut response: reqwest::Response,
    limit: usize,
    deadline: Instant,
) -> Result<Answer, Cut> {
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let refusal = !status.is_success();
    let limit = if refusal {
        limit.min(REFUSAL_BODY)
    } else {
        limit
    };
    let declared = response.content_length();
    if !refusal && declared.is_some_and(|n| n > limit as u64) {
        return Err(Cut::TooLarge);
    }
    // Never trust the declared length for the allocation.
    let mut body = BytesMut::with_capacity(
        declared
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit)
            .min(REFUSAL_BODY),
    );
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(_)) | Err(_) if refusal => break,
            Ok(Err(e)) => return Err(Cut::Transport(e)),
            Err(_) => return Err(Cut::Late),
        };
        let room = limit - body.len();
        if chunk.len() > room {
            if refusal {
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(Cut::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: body.freeze(),
    })
}

/// A URL as messages show it: scheme, host, port and path, without the
/// query, fragment or user info.
pub(crate) fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => {
            let end = url.find(['?', '#']).unwrap_or(url.len());
            let mut text: String = url[..end].chars().take(200).collect();
            if let Some(at) = text.rfind('@') {
                text = text[at + 1..].to_owned();
            }
            format!("{text} (not a valid URL)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_query_or_credentials() {
        assert_eq!(
            shown("https://bucket.s3.example/abc?X-Amz-Signature=s3cr3t&X-Amz-Credential=k#f"),
            "https://bucket.s3.example/abc"
        );
        assert_eq!(
            shown("http://user:pass@127.0.0.1:9/api/x?token=t"),
            "http://127.0.0.1:9/api/x"
        );
        let odd = shown("not a url?sig=s3cr3t");
        assert!(
            odd.starts_with("not a url") && !odd.contains("s3cr3t"),
            "{odd}"
        );
    }
}
