//! Calls around the commit flow: `whoami-v2` (once at start-up, it is
//! strictly rate limited), `repos/create`, and downloading one file
//! (the dataset card) through `resolve`.

use bytes::Bytes;
use http::{Method, StatusCode};
use satay_runtime::{Action, OwnedAction, ResponseParts};
use serde::Deserialize;

use super::{HubError, decode_with, json, json_body, request};
use crate::repo::Target;
use crate::token::HfToken;

/// `GET {EP}/api/whoami-v2`.
#[derive(Debug, Clone)]
pub struct WhoAmI {
    /// The endpoint's target (only the endpoint is used).
    pub target: Target,
    /// The token.
    pub token: HfToken,
}

/// Who the token belongs to, and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmIAnswer {
    /// The user or organisation name.
    pub name: String,
    /// The token's role (`write`, `read`, `fineGrained`, …), if reported.
    pub role: Option<String>,
}

#[derive(Deserialize)]
struct RawWho {
    name: String,
    #[serde(default)]
    auth: Option<RawAuth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuth {
    #[serde(default)]
    access_token: Option<RawAccess>,
}

#[derive(Deserialize)]
struct RawAccess {
    #[serde(default)]
    role: Option<String>,
}

impl Action for WhoAmI {
    type RequestBody = Bytes;
    type Response<'de> = Result<WhoAmIAnswer, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        request(
            Method::GET,
            &self.target.whoami_url(),
            Some(&self.token),
            None,
            Bytes::new(),
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for WhoAmI {
    type OwnedResponse = Result<WhoAmIAnswer, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |r| {
            let raw: RawWho = json(r)?;
            Ok(WhoAmIAnswer {
                name: raw.name,
                role: raw.auth.and_then(|a| a.access_token).and_then(|t| t.role),
            })
        })
    }
}

/// `POST {EP}/api/repos/create` for a dataset.
#[derive(Debug, Clone)]
pub struct CreateRepo {
    /// The repository.
    pub target: Target,
    /// The token.
    pub token: HfToken,
    /// Whether the new dataset is private.
    pub private: bool,
}

impl Action for CreateRepo {
    type RequestBody = Bytes;
    /// `true` when the repository was created, `false` when it existed.
    type Response<'de> = Result<bool, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let body = serde_json::json!({
            "name": self.target.repo.name(),
            "organization": self.target.repo.namespace(),
            "type": "dataset",
            "private": self.private,
            "visibility": if self.private { "private" } else { "public" },
        });
        request(
            Method::POST,
            &self.target.create_repo_url(),
            Some(&self.token),
            Some("application/json"),
            json_body(&body)?,
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for CreateRepo {
    type OwnedResponse = Result<bool, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        if response.status == StatusCode::CONFLICT {
            return Ok(Ok(false));
        }
        decode_with(response, |_| Ok(true))
    }
}

/// `GET {EP}/datasets/{ns}/{name}/resolve/{rev}/{path}`; a 404 is `None`.
#[derive(Debug, Clone)]
pub struct Download {
    /// The repository.
    pub target: Target,
    /// The token.
    pub token: HfToken,
    /// The file's path.
    pub path: String,
}

impl Action for Download {
    type RequestBody = Bytes;
    type Response<'de> = Result<Option<Vec<u8>>, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        request(
            Method::GET,
            &self.target.resolve_url(&self.path),
            Some(&self.token),
            None,
            Bytes::new(),
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for Download {
    type OwnedResponse = Result<Option<Vec<u8>>, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        let entry_missing = response.status == StatusCode::NOT_FOUND
            && response
                .headers
                .get("x-error-code")
                .is_some_and(|c| c == "EntryNotFound");
        if entry_missing {
            return Ok(Ok(None));
        }
        decode_with(response, |r| Ok(Some(r.body.to_vec())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoId;

    fn target() -> Target {
        Target {
            endpoint: "http://hub".into(),
            repo: RepoId::parse("org/ds").unwrap(),
            branch: "main".into(),
        }
    }

    #[test]
    fn whoami_decodes_role_and_create_treats_409_as_existing() {
        let parts = ResponseParts {
            status: StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: &br#"{"type":"user","name":"you","auth":{"accessToken":{"role":"write"}}}"#[..],
        };
        let who = WhoAmI::decode_owned(parts).unwrap().unwrap();
        assert_eq!(who.role.as_deref(), Some("write"));

        let req = CreateRepo {
            target: target(),
            token: HfToken::new("t"),
            private: true,
        }
        .request()
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body["organization"], "org");
        assert_eq!(body["type"], "dataset");
        assert_eq!(body["visibility"], "private");
        let conflict = ResponseParts {
            status: StatusCode::CONFLICT,
            headers: http::HeaderMap::new(),
            body: &b"{}"[..],
        };
        assert_eq!(CreateRepo::decode_owned(conflict).unwrap(), Ok(false));
    }

    #[test]
    fn a_missing_entry_is_none_but_a_missing_repo_is_an_error() {
        let mut h = http::HeaderMap::new();
        h.insert("x-error-code", "EntryNotFound".parse().unwrap());
        let parts = ResponseParts {
            status: StatusCode::NOT_FOUND,
            headers: h,
            body: &b""[..],
        };
        assert_eq!(Download::decode_owned(parts).unwrap(), Ok(None));
        let mut h = http::HeaderMap::new();
        h.insert("x-error-code", "RepoNotFound".parse().unwrap());
        let parts = ResponseParts {
            status: StatusCode::NOT_FOUND,
            headers: h,
            body: &b""[..],
        };
        assert!(Download::decode_owned(parts).unwrap().is_err());
    }
}
