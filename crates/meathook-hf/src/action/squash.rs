//! `POST {EP}/api/datasets/{ns}/{name}/super-squash/{rev}` with a JSON body
//! `{"message": …}`: the branch's whole history replaced by one commit
//! holding the files of its head. The Hub answers `{"commitId": …}`, the
//! new head (as its API description says; `huggingface_hub`'s
//! `super_squash_history` sends the same request and reads only the
//! status).
//!
//! **Invariant:** a squash is never sent by a sink on its own: only
//! `HubCompactor::squash_history`, which a user calls, builds one.

use bytes::Bytes;
use http::Method;
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::Deserialize;

use super::{HubError, decode_with, json, json_body, request};
use crate::repo::Target;
use crate::token::HfToken;

/// The super-squash call.
#[derive(Debug, Clone)]
pub struct SuperSquash {
    /// Where: the branch whose history is replaced.
    pub target: Target,
    /// The token (it needs write access).
    pub token: HfToken,
    /// The message of the one commit left.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    commit_id: String,
}

impl Action for SuperSquash {
    type RequestBody = Bytes;
    type Response<'de> = Result<String, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let body = json_body(&serde_json::json!({ "message": self.message }))?;
        request(
            Method::POST,
            &self.target.super_squash_url(),
            Some(&self.token),
            Some("application/json"),
            body,
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for SuperSquash {
    /// The new head's commit id, or the Hub's refusal.
    type OwnedResponse = Result<String, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |r| {
            let answer: Answer = json(r)?;
            // The id goes into logs: a commit id, nothing else.
            let id = answer.commit_id;
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(satay_runtime::Error::InvalidResponse(
                    "commitId is not a commit id (1 to 64 hex digits)",
                ));
            }
            Ok(id)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use http::{HeaderMap, StatusCode};

    use super::*;
    use crate::repo::RepoId;

    fn squash() -> SuperSquash {
        SuperSquash {
            target: Target {
                endpoint: "http://hub".into(),
                repo: RepoId::parse("ns/ds").unwrap(),
                branch: "refs/pr/1".into(),
            },
            token: HfToken::new("t"),
            message: "squash \"all\"\nof it".into(),
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Result<String, HubError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        SuperSquash::decode_owned(ResponseParts {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes(),
        })
        .unwrap()
    }

    #[test]
    fn the_request_posts_the_message_as_json_with_the_token() {
        let req = squash().request().unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri(),
            "http://hub/api/datasets/ns/ds/super-squash/refs%2Fpr%2F1"
        );
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(
            req.headers()["content-length"],
            req.body().len().to_string().as_str()
        );
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "squash \"all\"\nof it"})
        );
    }

    #[test]
    fn the_new_head_and_refusals_decode() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            answer(200, &[], &format!(r#"{{"commitId":"{id}"}}"#)).unwrap(),
            id
        );
        let missing = answer(
            404,
            &[("x-error-code", "RevisionNotFound")],
            r#"{"error":"Invalid rev id: dev"}"#,
        )
        .unwrap_err();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.code.as_deref(), Some("RevisionNotFound"));
        assert_eq!(missing.message, "Invalid rev id: dev");
        let limited = answer(429, &[("ratelimit", "\"api\";r=0;t=9")], "{}").unwrap_err();
        assert_eq!(limited.retry_after, Some(std::time::Duration::from_secs(9)));
        let down = answer(503, &[], "<html>down</html>").unwrap_err();
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    /// An answer that does not name a commit id is an error, never a
    /// panic, and never an id that could forge a log line.
    #[test]
    fn answers_without_a_commit_id_are_errors() {
        for body in [
            "",
            "null",
            "[]",
            "<html>captive portal</html>",
            r#"{"commitOid":"abc"}"#,
            r#"{"commitId":5}"#,
            r#"{"commitId":""}"#,
            r#"{"commitId":"abc\nINFO forged"}"#,
            &format!(r#"{{"commitId":"{}"}}"#, "a".repeat(65)),
        ] {
            let decoded = SuperSquash::decode_owned(ResponseParts {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: body.as_bytes(),
            });
            assert!(decoded.is_err(), "{body}");
        }
    }
}
