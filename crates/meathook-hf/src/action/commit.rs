//! `POST {EP}/api/datasets/{ns}/{name}/commit/{rev}`: one NDJSON commit.
//!
//! **Invariant:** the body is built whole as bytes (never streamed), one
//! JSON object per line, each ending in `\n`, the header line first. Data
//! files are only ever `lfsFile` references; inline `file` content is for
//! small text (the dataset card) and is refused here at 10 MiB or with a
//! NUL byte, as the Hub would.

use bytes::Bytes;
use http::Method;
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::Deserialize;

use super::{HubError, base64, decode_with, json, request};
use crate::repo::Target;
use crate::token::HfToken;

/// The largest inline file the Hub accepts, exclusive.
pub const MAX_INLINE: usize = 10 * 1024 * 1024;

/// One operation of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOp {
    /// A file already uploaded to LFS.
    LfsFile {
        /// Its path.
        path: String,
        /// Its sha256, hex.
        oid: String,
        /// Its size.
        size: u64,
    },
    /// Small text, inline.
    File {
        /// Its path.
        path: String,
        /// Its content.
        content: Vec<u8>,
    },
    /// A file deleted (compaction deletes the files it replaced).
    Delete {
        /// Its path.
        path: String,
    },
}

/// The commit call.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Where.
    pub target: Target,
    /// The token.
    pub token: HfToken,
    /// The commit title.
    pub summary: String,
    /// The head this commit builds on, from preupload.
    pub parent: Option<String>,
    /// The operations.
    pub ops: Vec<CommitOp>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitAnswer {
    /// The new head.
    pub commit_oid: String,
    /// Its URL.
    #[serde(default)]
    pub commit_url: Option<String>,
}

impl Commit {
    /// The NDJSON body.
    pub fn body(&self) -> Result<Vec<u8>, satay_runtime::Error> {
        let mut header = serde_json::json!({"summary": self.summary, "description": ""});
        if let Some(parent) = &self.parent {
            header["parentCommit"] = serde_json::Value::from(parent.as_str());
        }
        let mut out = Vec::new();
        let mut line = |v: serde_json::Value| -> Result<(), satay_runtime::Error> {
            serde_json::to_writer(&mut out, &v)?;
            out.push(b'\n');
            Ok(())
        };
        line(serde_json::json!({"key": "header", "value": header}))?;
        for op in &self.ops {
            match op {
                CommitOp::LfsFile { path, oid, size } => line(serde_json::json!({
                    "key": "lfsFile",
                    "value": {"path": path, "algo": "sha256", "oid": oid, "size": size},
                }))?,
                CommitOp::Delete { path } => line(serde_json::json!({
                    "key": "deletedFile",
                    "value": {"path": path},
                }))?,
                CommitOp::File { path, content } => {
                    if content.len() >= MAX_INLINE || content.contains(&0) {
                        return Err(satay_runtime::Error::InvalidResponse(
                            "inline commit files must be text under 10 MiB",
                        ));
                    }
                    line(serde_json::json!({
                        "key": "file",
                        "value": {"path": path, "content": base64(content), "encoding": "base64"},
                    }))?;
                }
            }
        }
        Ok(out)
    }
}

impl Action for Commit {
    type RequestBody = Bytes;
    type Response<'de> = Result<CommitAnswer, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let body = Bytes::from(self.body()?);
        request(
            Method::POST,
            &self.target.commit_url(),
            Some(&self.token),
            Some("application/x-ndjson"),
            body,
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for Commit {
    type OwnedResponse = Result<CommitAnswer, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |r| {
            let answer: CommitAnswer = json(r)?;
            // The id goes into logs and the delivery catalog: a commit id,
            // nothing else.
            let id = &answer.commit_oid;
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(satay_runtime::Error::InvalidResponse(
                    "commitOid is not a commit id (1 to 64 hex digits)",
                ));
            }
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoId;

    fn commit(ops: Vec<CommitOp>) -> Commit {
        Commit {
            target: Target {
                endpoint: "http://hub".into(),
                repo: RepoId::parse("ns/ds").unwrap(),
                branch: "refs/pr/1".into(),
            },
            token: HfToken::new("t"),
            summary: "meathook: 1 window".into(),
            parent: Some("p0".into()),
            ops,
        }
    }

    #[test]
    fn body_is_ndjson_header_first_with_lfs_references() {
        let c = commit(vec![
            CommitOp::LfsFile {
                path: "data/a.parquet".into(),
                oid: "ab".into(),
                size: 7,
            },
            CommitOp::File {
                path: "README.md".into(),
                content: b"hi".to_vec(),
            },
            CommitOp::Delete {
                path: "data/old.parquet".into(),
            },
        ]);
        let req = c.request().unwrap();
        assert_eq!(
            req.uri(),
            "http://hub/api/datasets/ns/ds/commit/refs%2Fpr%2F1"
        );
        assert_eq!(req.headers()["content-type"], "application/x-ndjson");
        let text = std::str::from_utf8(req.body()).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["key"], "header");
        assert_eq!(lines[0]["value"]["parentCommit"], "p0");
        assert_eq!(
            lines[1],
            serde_json::json!({"key":"lfsFile","value":{"path":"data/a.parquet","algo":"sha256","oid":"ab","size":7}})
        );
        assert_eq!(lines[2]["value"]["content"], "aGk=");
        assert_eq!(lines[2]["value"]["encoding"], "base64");
        assert_eq!(
            lines[3],
            serde_json::json!({"key":"deletedFile","value":{"path":"data/old.parquet"}})
        );
    }

    #[test]
    fn binary_or_huge_inline_files_are_refused() {
        let c = commit(vec![CommitOp::File {
            path: "x".into(),
            content: vec![b'P', 0, b'Q'],
        }]);
        assert!(c.request().is_err());
    }

    #[test]
    fn answer_and_refusal_decode() {
        let ok = ResponseParts {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: &br#"{"success":true,"commitOid":"c1","commitUrl":"u"}"#[..],
        };
        assert_eq!(Commit::decode_owned(ok).unwrap().unwrap().commit_oid, "c1");
        for bad in [r#"{"commitOid":""}"#, r#"{"commitOid":"c1\nINFO forged"}"#] {
            let parts = ResponseParts {
                status: http::StatusCode::OK,
                headers: http::HeaderMap::new(),
                body: bad.as_bytes(),
            };
            assert!(Commit::decode_owned(parts).is_err(), "{bad}");
        }
        let stale = ResponseParts {
            status: http::StatusCode::PRECONDITION_FAILED,
            headers: http::HeaderMap::new(),
            body: &br#"{"error":"parent commit is not the head"}"#[..],
        };
        let e = Commit::decode_owned(stale).unwrap().unwrap_err();
        assert_eq!(e.status, http::StatusCode::PRECONDITION_FAILED);
    }
}
