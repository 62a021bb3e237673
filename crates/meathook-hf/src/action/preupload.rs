//! `POST {EP}/api/datasets/{ns}/{name}/preupload/{rev}`: which paths exist
//! with which content, and how each must be uploaded.

use bytes::Bytes;
use http::Method;
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::{Deserialize, Serialize};

use super::{HubError, base64, decode_with, json, json_body, request};
use crate::repo::Target;
use crate::token::HfToken;

/// At most this many paths per call.
pub const MAX_PATHS: usize = 256;

/// One file offered to preupload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreuploadFile {
    /// Its path in the repository.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its first ≤ 512 bytes.
    pub sample: Vec<u8>,
}

/// The preupload call for up to [`MAX_PATHS`] files.
#[derive(Debug, Clone)]
pub struct Preupload {
    /// Where.
    pub target: Target,
    /// The token.
    pub token: HfToken,
    /// The files.
    pub files: Vec<PreuploadFile>,
}

/// What the Hub knows of one path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteFile {
    /// The path.
    pub path: String,
    /// `"lfs"` or `"regular"`.
    pub upload_mode: String,
    /// Whether the Hub would ignore the path (`.gitignore`).
    #[serde(default)]
    pub should_ignore: bool,
    /// The existing file's sha256 (LFS) or git blob sha1 (regular).
    #[serde(default)]
    pub oid: Option<String>,
}

/// The answer: the branch head and each path's status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreuploadAnswer {
    /// The branch's head commit, sent back as `parentCommit`.
    #[serde(default)]
    pub commit_oid: Option<String>,
    /// One entry per path offered.
    pub files: Vec<RemoteFile>,
}

#[derive(Serialize)]
struct Body<'a> {
    files: Vec<BodyFile<'a>>,
}

#[derive(Serialize)]
struct BodyFile<'a> {
    path: &'a str,
    size: u64,
    sample: String,
}

impl Action for Preupload {
    type RequestBody = Bytes;
    type Response<'de> = Result<PreuploadAnswer, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let body = Body {
            files: self
                .files
                .iter()
                .map(|f| BodyFile {
                    path: &f.path,
                    size: f.size,
                    sample: base64(&f.sample[..f.sample.len().min(512)]),
                })
                .collect(),
        };
        request(
            Method::POST,
            &self.target.preupload_url(),
            Some(&self.token),
            Some("application/json"),
            json_body(&body)?,
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for Preupload {
    type OwnedResponse = Result<PreuploadAnswer, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoId;

    #[test]
    fn request_shape_and_answer() {
        let action = Preupload {
            target: Target {
                endpoint: "http://hub".into(),
                repo: RepoId::parse("ns/ds").unwrap(),
                branch: "main".into(),
            },
            token: HfToken::new("hf_x"),
            files: vec![PreuploadFile {
                path: "data/a.parquet".into(),
                size: 3,
                sample: b"PAR".to_vec(),
            }],
        };
        let req = action.request().unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "http://hub/api/datasets/ns/ds/preupload/main");
        assert_eq!(req.headers()["authorization"], "Bearer hf_x");
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"files":[{"path":"data/a.parquet","size":3,"sample":"UEFS"}]})
        );

        let answer = br#"{"commitOid":"abc","files":[{"path":"data/a.parquet","uploadMode":"lfs","shouldIgnore":false,"oid":"00ff"}]}"#;
        let parts = ResponseParts {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: &answer[..],
        };
        let decoded = Preupload::decode_owned(parts).unwrap().unwrap();
        assert_eq!(decoded.commit_oid.as_deref(), Some("abc"));
        assert_eq!(decoded.files[0].oid.as_deref(), Some("00ff"));
        assert_eq!(decoded.files[0].upload_mode, "lfs");
    }
}
