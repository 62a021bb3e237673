//! `POST {EP}/datasets/{ns}/{name}.git/info/lfs/objects/batch`: where to
//! upload each object, or that it is already stored.
//!
//! Only `basic` and `multipart` transfers are offered, never `xet`: plain
//! LFS works on Xet-backed repositories too.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Method;
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::Deserialize;

use super::{HubError, LFS_JSON, decode_with, json, json_body, request};
use crate::repo::Target;
use crate::token::HfToken;

/// The batch call for a set of objects (sha256 hex, size).
#[derive(Debug, Clone)]
pub struct LfsBatch {
    /// Where.
    pub target: Target,
    /// The token.
    pub token: HfToken,
    /// `(oid, size)` of each object.
    pub objects: Vec<(String, u64)>,
}

/// What to do with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectAction {
    /// Already stored: nothing to upload.
    Stored,
    /// One `PUT` of the whole object to `href`.
    Basic {
        /// The presigned URL.
        href: String,
    },
    /// `PUT` each `chunk_size` slice to its part URL, then `POST` the
    /// parts' ETags to `complete`.
    Multipart {
        /// The completion URL.
        complete: String,
        /// The size of every part but the last.
        chunk_size: u64,
        /// Part URLs, in part-number order.
        parts: Vec<String>,
    },
    /// The Hub refused this object.
    Error {
        /// The per-object code (an HTTP status).
        code: u16,
        /// The message.
        message: String,
    },
}

/// The answer for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchObject {
    /// The object's sha256.
    pub oid: String,
    /// What to do.
    pub action: ObjectAction,
    /// Where to confirm the upload, if the Hub asks.
    pub verify: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    objects: Vec<RawObject>,
}

#[derive(Deserialize)]
struct RawObject {
    oid: String,
    #[serde(default)]
    actions: Option<RawActions>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawActions {
    #[serde(default)]
    upload: Option<RawLink>,
    #[serde(default)]
    verify: Option<RawLink>,
}

#[derive(Deserialize)]
struct RawLink {
    href: String,
    #[serde(default)]
    header: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawError {
    code: u16,
    #[serde(default)]
    message: String,
}

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RawObject {
    fn into_object(self) -> Result<BatchObject, satay_runtime::Error> {
        let verify = self
            .actions
            .as_ref()
            .and_then(|a| a.verify.as_ref())
            .map(|v| v.href.clone());
        let action = if let Some(e) = self.error {
            ObjectAction::Error {
                code: e.code,
                message: super::snippet(e.message.as_bytes()),
            }
        } else {
            match self.actions.and_then(|a| a.upload) {
                None => ObjectAction::Stored,
                Some(link) => match link.header.get("chunk_size").and_then(text) {
                    None => ObjectAction::Basic { href: link.href },
                    Some(size) => {
                        let chunk_size: u64 = size.parse().map_err(|_| {
                            satay_runtime::Error::InvalidResponse("LFS chunk_size is not a number")
                        })?;
                        // Part keys are numeric strings ("00001", …): order by
                        // their value, not their text.
                        let mut parts: Vec<(u64, String)> = link
                            .header
                            .iter()
                            .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, text(v)?)))
                            .collect();
                        parts.sort();
                        if chunk_size == 0 || parts.is_empty() {
                            return Err(satay_runtime::Error::InvalidResponse(
                                "LFS multipart upload without parts",
                            ));
                        }
                        // Parts are numbered 1, 2, … n, each once: a gap or
                        // a repeat would upload another object.
                        if parts.iter().zip(1u64..).any(|((n, _), want)| *n != want) {
                            return Err(satay_runtime::Error::InvalidResponse(
                                "LFS multipart part numbers are not 1, 2, … n",
                            ));
                        }
                        ObjectAction::Multipart {
                            complete: link.href,
                            chunk_size,
                            parts: parts.into_iter().map(|(_, url)| url).collect(),
                        }
                    }
                },
            }
        };
        Ok(BatchObject {
            oid: self.oid,
            action,
            verify,
        })
    }
}

impl Action for LfsBatch {
    type RequestBody = Bytes;
    type Response<'de> = Result<Vec<BatchObject>, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let objects: Vec<_> = self
            .objects
            .iter()
            .map(|(oid, size)| serde_json::json!({"oid": oid, "size": size}))
            .collect();
        let body = serde_json::json!({
            "operation": "upload",
            "transfers": ["basic", "multipart"],
            "hash_algo": "sha256",
            "ref": {"name": self.target.branch},
            "objects": objects,
        });
        let mut req = request(
            Method::POST,
            &self.target.lfs_batch_url(),
            Some(&self.token),
            Some(LFS_JSON),
            json_body(&body)?,
        )?;
        req.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(LFS_JSON),
        );
        Ok(req)
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for LfsBatch {
    type OwnedResponse = Result<Vec<BatchObject>, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |r| {
            let answer: Answer = json(r)?;
            answer
                .objects
                .into_iter()
                .map(RawObject::into_object)
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoId;

    fn decode(body: &str) -> Vec<BatchObject> {
        let parts = ResponseParts {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: body.as_bytes(),
        };
        LfsBatch::decode_owned(parts).unwrap().unwrap()
    }

    #[test]
    fn request_offers_basic_and_multipart_only() {
        let req = LfsBatch {
            target: Target {
                endpoint: "http://hub".into(),
                repo: RepoId::parse("ns/ds").unwrap(),
                branch: "main".into(),
            },
            token: HfToken::new("t"),
            objects: vec![("ab".into(), 5)],
        }
        .request()
        .unwrap();
        assert_eq!(
            req.uri(),
            "http://hub/datasets/ns/ds.git/info/lfs/objects/batch"
        );
        assert_eq!(req.headers()["accept"], LFS_JSON);
        assert_eq!(req.headers()["content-type"], LFS_JSON);
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body["transfers"], serde_json::json!(["basic", "multipart"]));
        assert_eq!(body["hash_algo"], "sha256");
        assert_eq!(body["ref"]["name"], "main");
        assert_eq!(body["objects"][0], serde_json::json!({"oid":"ab","size":5}));
    }

    #[test]
    fn answers_decode_to_stored_basic_multipart_and_error() {
        // Part keys 1 to 10 without padding: "10" sorts before "2" as text.
        let parts: Vec<String> = (1..=10)
            .map(|n| format!("\"{n}\":\"http://s/p{n}\""))
            .collect();
        let objects = decode(&format!(
            r#"{{"objects":[
            {{"oid":"a","size":1}},
            {{"oid":"b","size":1,"actions":{{"upload":{{"href":"http://s/b"}},"verify":{{"href":"http://v"}}}}}},
            {{"oid":"c","size":40,"actions":{{"upload":{{"href":"http://s/done","header":{{"chunk_size":"4",{}}}}}}}}},
            {{"oid":"d","size":1,"error":{{"code":422,"message":"bad oid"}}}}]}}"#,
            parts.join(",")
        ));
        assert_eq!(objects[0].action, ObjectAction::Stored);
        assert_eq!(
            objects[1].action,
            ObjectAction::Basic {
                href: "http://s/b".into()
            }
        );
        assert_eq!(objects[1].verify.as_deref(), Some("http://v"));
        assert_eq!(
            objects[2].action,
            ObjectAction::Multipart {
                complete: "http://s/done".into(),
                chunk_size: 4,
                parts: (1..=10).map(|n| format!("http://s/p{n}")).collect(),
            }
        );
        assert_eq!(
            objects[3].action,
            ObjectAction::Error {
                code: 422,
                message: "bad oid".into()
            }
        );
    }
}
