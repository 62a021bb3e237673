//! `GET {EP}/api/datasets/{ns}/{name}/commits/{rev}`: a branch's commits,
//! newest first, a page at a time (the next page's URL in a `Link` header
//! with `rel="next"`, as `huggingface_hub`'s `list_repo_commits` follows
//! it). The committer reads the recent ones to seed its commit budget, so
//! commits made before a restart, or by another writer, count.

use bytes::Bytes;
use http::{Method, StatusCode, header};
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use super::{HubError, decode_with, json, request};
use crate::token::HfToken;

/// One page of a branch's commits.
#[derive(Debug, Clone)]
pub struct ListCommits {
    /// The page's URL: the branch's commits URL, then each `next` link.
    pub url: String,
    /// The token.
    pub token: HfToken,
}

/// What one page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitsPage {
    /// When each commit was made, newest first.
    pub dates: Vec<OffsetDateTime>,
    /// The Hub's clock when it answered (its `Date` header), so the age of
    /// a commit does not depend on ours.
    pub now: Option<OffsetDateTime>,
    /// The next page's URL, if there is one.
    pub next: Option<String>,
    /// `false` when the endpoint does not list commits at all (a 404
    /// without the Hub's `X-Error-Code`: no such route).
    pub listed: bool,
    /// The Hub's error code when the repository or the branch does not
    /// exist (`RepoNotFound`, `RevisionNotFound`): nothing was made there.
    pub missing: Option<String>,
}

impl CommitsPage {
    const EMPTY: Self = Self {
        dates: Vec::new(),
        now: None,
        next: None,
        listed: true,
        missing: None,
    };
}

#[derive(Deserialize)]
struct RawCommit {
    #[serde(with = "time::serde::rfc3339")]
    date: OffsetDateTime,
}

impl Action for ListCommits {
    type RequestBody = Bytes;
    type Response<'de> = Result<CommitsPage, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        request(
            Method::GET,
            &self.url,
            Some(&self.token),
            None,
            Bytes::new(),
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for ListCommits {
    type OwnedResponse = Result<CommitsPage, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        // A repository or branch that does not exist yet has made no
        // commits (the write that follows says what is missing); an
        // endpoint without the route (a 404 that is not the Hub's) lists
        // none.
        if response.status == StatusCode::NOT_FOUND {
            match response.headers.get("x-error-code") {
                Some(code) if code == "RevisionNotFound" || code == "RepoNotFound" => {
                    return Ok(Ok(CommitsPage {
                        missing: code.to_str().ok().map(str::to_owned),
                        ..CommitsPage::EMPTY
                    }));
                }
                None => {
                    return Ok(Ok(CommitsPage {
                        listed: false,
                        ..CommitsPage::EMPTY
                    }));
                }
                Some(_) => {}
            }
        }
        decode_with(response, |r| {
            let commits: Vec<RawCommit> = json(r)?;
            Ok(CommitsPage {
                dates: commits.into_iter().map(|c| c.date).collect(),
                now: r
                    .headers
                    .get(header::DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(http_date),
                next: next_page(&r.headers),
                listed: true,
                missing: None,
            })
        })
    }
}

/// An HTTP date (`Sat, 05 Dec 2026 02:21:41 GMT`), or an RFC 3339 one.
fn http_date(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc2822)
        .or_else(|_| OffsetDateTime::parse(text, &Rfc3339))
        .ok()
}

/// The next page's URL, from the answer's `Link` headers.
pub(super) fn next_page(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(next_link)
}

/// The URL of the `rel="next"` entry of a `Link` header value.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|entry| {
        let (url, params) = entry.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use http::HeaderMap;
    use time::macros::datetime;

    use super::*;

    fn page(status: u16, headers: &[(&str, &str)], body: &str) -> Result<CommitsPage, HubError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        ListCommits::decode_owned(ResponseParts {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes(),
        })
        .unwrap()
    }

    #[test]
    fn a_page_gives_dates_the_hubs_clock_and_the_next_link() {
        let got = page(
            200,
            &[
                ("date", "Sat, 05 Dec 2026 02:21:41 GMT"),
                (
                    "link",
                    "<https://hub.test/api/datasets/a/b/commits/main?p=0>; rel=\"prev\", \
                     <https://hub.test/api/datasets/a/b/commits/main?p=2>; rel=\"next\"",
                ),
            ],
            r#"[{"id":"ab","title":"t","message":"","authors":[],"date":"2026-12-05T02:20:00.250Z"},
                {"id":"cd","title":"t","message":"","authors":[{"user":"u"}],"date":"2026-12-05T01:00:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(
            got.dates,
            [
                datetime!(2026-12-05 02:20:00.25 UTC),
                datetime!(2026-12-05 01:00:00 UTC)
            ]
        );
        assert_eq!(got.now, Some(datetime!(2026-12-05 02:21:41 UTC)));
        assert_eq!(
            got.next.as_deref(),
            Some("https://hub.test/api/datasets/a/b/commits/main?p=2")
        );
    }

    #[test]
    fn a_missing_branch_or_repository_has_no_commits_and_other_refusals_are_errors() {
        for code in ["RevisionNotFound", "RepoNotFound"] {
            let empty = page(404, &[("x-error-code", code)], "{}").unwrap();
            assert!(empty.dates.is_empty() && empty.next.is_none() && empty.listed);
            assert_eq!(empty.missing.as_deref(), Some(code));
        }
        let no_route = page(404, &[], "Not Found").unwrap();
        assert!(no_route.dates.is_empty() && !no_route.listed);
        let gated = page(404, &[("x-error-code", "GatedRepo")], "{}").unwrap_err();
        assert_eq!(gated.status, StatusCode::NOT_FOUND);
        let unauthorized = page(401, &[], "{}").unwrap_err();
        assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
        let malformed = ListCommits::decode_owned(ResponseParts {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: br#"{"not":"a list"}"#,
        });
        assert!(malformed.is_err(), "a body that is not a list is refused");
    }
}
