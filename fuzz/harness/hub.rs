//! The Hub-answer fuzz harness: one input is an HTTP answer (status line,
//! headers, blank line, body), decoded by every action of the HF sink and
//! by the back-off and dataset-card parsers, through their public API.
//!
//! Shared by the `hub_answers` fuzz target and `meathook-hf`'s
//! `tests/it/fuzz_corpus.rs`, which replays the saved corpus and fixtures.
//!
//! ```text
//! 429
//! retry-after: 7
//! ratelimit: "api";r=0;t=42
//!
//! {"error":"slow down"}
//! ```
//!
//! A first line that is not a status is read as 200; header lines an HTTP
//! client would never hand over (bad names or values) are skipped.
//! Invariants: no panic; back-off hints never exceed `MAX_HINT`; an LFS
//! multipart answer always has parts and a non-zero chunk size; merging
//! the dataset card declares every pipeline, and merging again changes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test harness: a panic is the report

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use meathook_hf::action::{
    Commit, CompleteMultipart, CreateRepo, Download, HubError, LfsBatch, ObjectAction, Preupload,
    PutObject, QUOTA_FLOOR, Verify, WhoAmI,
};
use meathook_hf::{card, rate_limit};
use satay_runtime::{OwnedAction, ResponseParts};

/// Splits an input into status, headers and body.
pub(crate) fn parse(data: &[u8]) -> (StatusCode, HeaderMap, &[u8]) {
    let mut rest = data;
    let line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let mut l = rest[..end].to_vec();
        *rest = &rest[(end + 1).min(rest.len())..];
        if l.last() == Some(&b'\r') {
            l.pop();
        }
        Some(l)
    };
    let status = line(&mut rest)
        .and_then(|l| std::str::from_utf8(&l).ok()?.trim().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    while let Some(l) = line(&mut rest) {
        if l.is_empty() {
            break;
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&l[..colon]);
        let value = HeaderValue::from_bytes(l[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    (status, headers, rest)
}

fn parts<'a>(status: StatusCode, headers: &HeaderMap, body: &'a [u8]) -> ResponseParts<&'a [u8]> {
    ResponseParts {
        status,
        headers: headers.clone(),
        body,
    }
}

fn check_refusal(e: &HubError) {
    if let Some(wait) = e.retry_after {
        assert!(
            wait <= rate_limit::MAX_HINT,
            "a refusal asks to wait {wait:?}"
        );
    }
}

/// Decodes with `A` and checks the refusal, if it is one.
fn decode<A: OwnedAction<OwnedResponse = Result<T, HubError>>, T>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<T> {
    match A::decode_owned(parts(status, headers, body)) {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(refusal)) => {
            check_refusal(&refusal);
            None
        }
        Err(_) => None, // a malformed answer, reported as such
    }
}

/// Runs one input; panics when an invariant breaks.
pub(crate) fn run(data: &[u8]) {
    let (status, headers, body) = parse(data);

    let _ = decode::<WhoAmI, _>(status, &headers, body);
    let _ = decode::<CreateRepo, _>(status, &headers, body);
    let _ = decode::<Download, _>(status, &headers, body);
    let _ = decode::<Preupload, _>(status, &headers, body);
    let _ = decode::<Commit, _>(status, &headers, body);
    let _ = decode::<PutObject, _>(status, &headers, body);
    let _ = decode::<CompleteMultipart, _>(status, &headers, body);
    let _ = decode::<Verify, _>(status, &headers, body);
    for object in decode::<LfsBatch, _>(status, &headers, body).unwrap_or_default() {
        if let ObjectAction::Multipart {
            chunk_size, parts, ..
        } = &object.action
        {
            assert!(*chunk_size > 0, "a multipart upload with chunk size 0");
            assert!(!parts.is_empty(), "a multipart upload without parts");
        }
    }
    check_refusal(&HubError::from_parts(&parts(status, &headers, body)));

    let _ = rate_limit::parse_rate_limit(&headers);
    if let Some(wait) = rate_limit::parse_retry_after(&headers) {
        assert!(wait <= rate_limit::MAX_HINT, "Retry-After read as {wait:?}");
    }
    let wait = rate_limit::wait_after_429(&headers, QUOTA_FLOOR);
    assert!(wait <= rate_limit::MAX_HINT, "a 429 waits {wait:?}");

    // The body as the dataset card downloaded from the repository.
    let text = String::from_utf8_lossy(body);
    let _ = card::declared_configs(&text);
    let pipelines: Vec<(String, String)> = ["air_temperature", "rain fall/é"]
        .iter()
        .map(|p| {
            (
                (*p).to_owned(),
                format!("data/{}/**/*.parquet", card::config_name(p)),
            )
        })
        .collect();
    if let Some(merged) = card::merge(Some(&text), &pipelines) {
        let declared = card::declared_configs(&merged);
        for (p, _) in &pipelines {
            assert!(
                declared.contains(&card::config_name(p)),
                "the merged card does not declare {p:?}:\n{merged}"
            );
        }
        assert_eq!(
            card::merge(Some(&merged), &pipelines),
            None,
            "merging twice changes the card again:\n{merged}"
        );
    }
}
