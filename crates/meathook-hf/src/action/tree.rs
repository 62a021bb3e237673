//! `GET {EP}/api/datasets/{ns}/{name}/tree/{rev}/{path}`: one folder's
//! entries, a page at a time (the Hub cuts pages at 1,000 entries and
//! names the next in a `Link` header with `rel="next"`). Compaction lists
//! day folders with it. A folder that does not exist is an empty listing.

use bytes::Bytes;
use http::{Method, StatusCode};
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::Deserialize;

use super::history::next_page;
use super::{HubError, decode_with, json, request};
use crate::token::HfToken;

/// One page of a folder's entries.
#[derive(Debug, Clone)]
pub struct ListTree {
    /// The page's URL: the folder's tree URL, then each `next` link.
    pub url: String,
    /// The token.
    pub token: HfToken,
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TreeEntry {
    /// `file` or `directory`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its path in the repository.
    pub path: String,
    /// Its size in bytes (0 for a folder).
    #[serde(default)]
    pub size: u64,
    /// For a file stored in LFS: the SHA-256 of its bytes.
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

/// The LFS object behind a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LfsInfo {
    /// The SHA-256 of the file's bytes, hex.
    pub oid: String,
    /// Its size.
    pub size: u64,
}

/// What one page says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreePage {
    /// The entries.
    pub entries: Vec<TreeEntry>,
    /// The next page's URL, if there is one.
    pub next: Option<String>,
}

impl Action for ListTree {
    type RequestBody = Bytes;
    type Response<'de> = Result<TreePage, HubError>;

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

impl OwnedAction for ListTree {
    type OwnedResponse = Result<TreePage, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        let missing = response.status == StatusCode::NOT_FOUND
            && response
                .headers
                .get("x-error-code")
                .is_some_and(|c| c == "EntryNotFound");
        if missing {
            return Ok(Ok(TreePage::default()));
        }
        decode_with(response, |r| {
            let entries: Vec<TreeEntry> = json(r)?;
            Ok(TreePage {
                entries,
                next: next_page(&r.headers),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use http::HeaderMap;

    use super::*;

    fn page(status: u16, headers: &[(&str, &str)], body: &str) -> Result<TreePage, HubError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        ListTree::decode_owned(ResponseParts {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes(),
        })
        .unwrap()
    }

    #[test]
    fn entries_and_the_next_page_are_read_and_a_missing_folder_is_empty() {
        let body = r#"[{"type":"directory","oid":"d","size":0,"path":"data/a"},
            {"type":"file","oid":"f","size":9,"path":"data/x.parquet","lfs":{"oid":"ab","size":9,"pointerSize":134}},
            {"type":"file","oid":"g","size":2,"path":"data/_compacted.json"}]"#;
        let answer = page(
            200,
            &[(
                "link",
                r#"<https://hub/api/datasets/a/b/tree/main/data?cursor=x>; rel="next""#,
            )],
            body,
        )
        .unwrap();
        assert_eq!(answer.entries.len(), 3);
        assert_eq!(answer.entries[0].kind, "directory");
        assert_eq!(answer.entries[1].lfs.as_ref().unwrap().oid, "ab");
        assert!(answer.entries[2].lfs.is_none());
        assert_eq!(
            answer.next.as_deref(),
            Some("https://hub/api/datasets/a/b/tree/main/data?cursor=x")
        );
        let missing = page(
            404,
            &[("x-error-code", "EntryNotFound")],
            r#"{"error":"no"}"#,
        )
        .unwrap();
        assert!(missing.entries.is_empty());
        assert!(
            page(
                404,
                &[("x-error-code", "RepoNotFound")],
                r#"{"error":"no"}"#
            )
            .is_err()
        );
        let garbled = ListTree::decode_owned(ResponseParts {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: &b"not json"[..],
        });
        assert!(garbled.is_err());
    }
}
