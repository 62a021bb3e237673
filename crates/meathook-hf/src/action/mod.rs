//! The Hub's HTTP calls as sans-IO satay actions.
//!
//! Each action builds an `http::Request` and decodes a response without
//! touching the network; the sink's `HubClient` sends them on its
//! `reqwest::Client` and hands each decoder an answer it read within a size
//! cap and a deadline (not through satay-reqwest's `send_buffered_with`,
//! which reads bodies whole). Every `OwnedResponse` is
//! `Result<T, HubError>`: a non-2xx answer is decoded into a [`HubError`]
//! (status, `X-Error-Code`, message, back-off hint) rather than lost in a
//! transport error, so the caller can classify it.
//! `satay_runtime::Error` is kept for malformed requests and bodies.
//!
//! The decoders (`decode_owned` of every action, [`HubError::from_parts`])
//! take whatever a server sends: they return an error for any answer they
//! cannot use, and never panic.
//!
//! **Invariant:** only actions addressed to the Hub's API carry the
//! `Authorization` header; presigned upload URLs never do.

mod account;
mod commit;
mod history;
mod lfs;
mod preupload;
mod squash;
mod tree;
mod upload;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use satay_runtime::ResponseParts;

pub use account::{CreateRepo, Download, WhoAmI};
pub use commit::{Commit, CommitOp, MAX_INLINE};
pub use history::ListCommits;
pub use lfs::{BatchObject, LfsBatch, ObjectAction};
pub use preupload::{MAX_PATHS, Preupload, PreuploadFile, RemoteFile};
pub use squash::SuperSquash;
pub use tree::{ListTree, TreeEntry};
// The answers' types are named outside the crate only by the fuzz targets.
#[cfg(feature = "fuzzing")]
pub use self::{
    account::WhoAmIAnswer, commit::CommitAnswer, history::CommitsPage, preupload::PreuploadAnswer,
};
pub use upload::{CompleteMultipart, PutObject, Verify};

use crate::rate_limit;
use crate::token::HfToken;

/// The media type of the LFS batch and multipart-completion calls.
pub const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// The longest body snippet a [`HubError`] keeps.
const SNIPPET: usize = 300;

/// A non-2xx answer from the Hub (or a presigned storage URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, …), if sent.
    pub code: Option<String>,
    /// `X-Error-Message`, the body's `error`, or the start of the body.
    pub message: String,
    /// How long the server asked to wait (429 and 503 only).
    pub retry_after: Option<Duration>,
}

/// How long a 429 without any hint waits: the Hub's docs say to back off
/// "for minutes" after a commit-quota refusal.
pub const QUOTA_FLOOR: Duration = Duration::from_secs(60);

impl HubError {
    /// Decodes a refusal from its parts.
    pub fn from_parts(response: &ResponseParts<&[u8]>) -> Self {
        let headers = &response.headers;
        let code = header_text(headers, "x-error-code");
        let message = header_text(headers, "x-error-message")
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(response.body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            })
            .map_or_else(|| snippet(response.body), |m| snippet(m.as_bytes()));
        let retry_after = match response.status {
            StatusCode::TOO_MANY_REQUESTS => Some(rate_limit::wait_after_429(headers, QUOTA_FLOOR)),
            StatusCode::SERVICE_UNAVAILABLE => rate_limit::parse_retry_after(headers),
            _ => None,
        };
        Self {
            status: response.status,
            code,
            message,
            retry_after,
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

/// The start of a body or message, as text, on one line, at most
/// [`SNIPPET`] bytes of it.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes `2xx` bodies with `ok`, everything else into a [`HubError`].
pub(crate) fn decode_with<T>(
    response: ResponseParts<&[u8]>,
    ok: impl FnOnce(&ResponseParts<&[u8]>) -> Result<T, satay_runtime::Error>,
) -> Result<Result<T, HubError>, satay_runtime::Error> {
    if response.status.is_success() {
        ok(&response).map(Ok)
    } else {
        Ok(Err(HubError::from_parts(&response)))
    }
}

/// Decodes a JSON body.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    response: &ResponseParts<&[u8]>,
) -> Result<T, satay_runtime::Error> {
    Ok(serde_json::from_slice(response.body)?)
}

/// A request with a body, its content type and, if given, the Bearer token.
pub(crate) fn request(
    method: Method,
    url: &str,
    token: Option<&HfToken>,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Result<http::Request<Bytes>, satay_runtime::Error> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if let Some(headers) = builder.headers_mut() {
        // A token that cannot be a header value fails the request: it is
        // never sent without the header it should carry.
        if let Some(token) = token {
            headers.insert(header::AUTHORIZATION, token.bearer()?);
        }
        if let Some(ct) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    Ok(builder.body(body)?)
}

/// Serialises a JSON body.
pub(crate) fn json_body(value: &impl serde::Serialize) -> Result<Bytes, satay_runtime::Error> {
    Ok(Bytes::from(serde_json::to_vec(value)?))
}

/// Standard base64 with padding (the preupload sample and inline files).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (raw, encoded) in cases {
            assert_eq!(base64(raw.as_bytes()), encoded);
        }
    }

    #[test]
    fn refusals_keep_code_message_and_hint() {
        let mut headers = HeaderMap::new();
        headers.insert("x-error-code", "RepoNotFound".parse().unwrap());
        let r = ResponseParts {
            status: StatusCode::NOT_FOUND,
            headers,
            body: &br#"{"error":"Repository not found"}"#[..],
        };
        let e = HubError::from_parts(&r);
        assert_eq!(e.code.as_deref(), Some("RepoNotFound"));
        assert_eq!(e.message, "Repository not found");
        assert_eq!(e.retry_after, None);

        let mut headers = HeaderMap::new();
        headers.insert("ratelimit", "\"api\";r=0;t=7".parse().unwrap());
        let r = ResponseParts {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: &b"<html>\n slow down </html>"[..],
        };
        let e = HubError::from_parts(&r);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(e.message, "<html> slow down </html>");
    }

    /// Every decoder of a Hub answer, given answers a hostile or broken
    /// server could send (wrong types, negative or huge numbers, missing
    /// fields, bad part plans, non-JSON): an error, never a panic.
    #[test]
    fn hostile_answers_are_errors_not_panics() {
        use satay_runtime::OwnedAction as _;
        fn ok(body: &[u8]) -> ResponseParts<&[u8]> {
            ResponseParts {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body,
            }
        }
        let bodies: &[&[u8]] = &[
            b"",
            b"<html>captive portal</html>",
            b"null",
            b"[]",
            b"{\"objects\": 5}",
            b"{\"objects\": [{\"oid\": 5}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"error\": {\"code\": -1}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"error\": {\"code\": 99999999999}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"-1\", \"1\": \"p\"}}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"1e99\", \"1\": \"p\"}}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"0\", \"1\": \"p\"}}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"4\"}}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"4\", \"1\": \"p\", \"3\": \"q\"}}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"4\", \"1\": \"p\", \"01\": \"q\"}}}}]}",
            b"{\"objects\": [{\"oid\": \"a\", \"actions\": {\"upload\": {\"href\": \"h\", \"header\": {\"chunk_size\": \"4\", \"0\": \"p\"}}}}]}",
            b"{\"files\": null}",
            b"{\"files\": [{\"path\": \"p\"}]}",
            b"{\"files\": [{\"path\": 1, \"uploadMode\": \"lfs\"}]}",
            b"{\"commitOid\": 5, \"files\": []}",
            b"{\"commitOid\": null}",
            b"{\"commitUrl\": \"u\"}",
            b"{\"name\": null}",
            b"{\"name\": \"n\", \"auth\": {\"accessToken\": {\"role\": 7}}}",
        ];
        for body in bodies {
            let text = String::from_utf8_lossy(body);
            let batch = LfsBatch::decode_owned(ok(body));
            let pre = Preupload::decode_owned(ok(body));
            let commit = Commit::decode_owned(ok(body));
            let who = WhoAmI::decode_owned(ok(body));
            // Each is either an error or a well-formed value; the point is
            // that none of them panicked. Spot-check the ones that must fail.
            if text.contains("objects") {
                assert!(batch.is_err(), "{text}");
            }
            if text.contains("files") || text.contains("commitOid") {
                assert!(pre.is_err(), "{text}");
            }
            if text.contains("commitUrl") || text.contains("commitOid") {
                assert!(commit.is_err(), "{text}");
            }
            if text.contains("name") {
                assert!(who.is_err(), "{text}");
            }
            let _ = (batch, pre, commit, who);
        }
    }
}
