//! Presigned uploads: a whole object or one part (`PUT`, no token), the
//! multipart completion (`POST`, no token), and the optional verify call
//! (`POST`, Bearer).
//!
//! **Invariant:** [`PutObject`] and [`CompleteMultipart`] never carry the
//! `Authorization` header: their URLs are presigned and may point outside
//! the Hub.

use bytes::Bytes;
use http::Method;
use satay_runtime::{Action, OwnedAction, ResponseParts};

use super::{HubError, LFS_JSON, decode_with, json_body, request};
use crate::token::HfToken;

/// `PUT` bytes to a presigned URL (a whole object or one part). The body is
/// a `Bytes` view, handed to the transport without a copy.
#[derive(Debug, Clone)]
pub struct PutObject {
    /// The presigned URL.
    pub url: String,
    /// The bytes.
    pub body: Bytes,
}

impl Action for PutObject {
    type RequestBody = Bytes;
    type Response<'de> = Result<Option<String>, HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        request(Method::PUT, &self.url, None, None, self.body)
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for PutObject {
    /// The response's `ETag`, which a multipart completion needs.
    type OwnedResponse = Result<Option<String>, HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |r| {
            Ok(r.headers
                .get(http::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned))
        })
    }
}

/// `POST` the parts' ETags to the multipart completion URL.
#[derive(Debug, Clone)]
pub struct CompleteMultipart {
    /// The completion URL (the upload action's `href`).
    pub url: String,
    /// The object's sha256.
    pub oid: String,
    /// Each part's ETag, in part order.
    pub etags: Vec<String>,
}

impl Action for CompleteMultipart {
    type RequestBody = Bytes;
    type Response<'de> = Result<(), HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let parts: Vec<_> = self
            .etags
            .iter()
            .enumerate()
            .map(|(i, etag)| serde_json::json!({"partNumber": i + 1, "etag": etag}))
            .collect();
        let body = serde_json::json!({"oid": self.oid, "parts": parts});
        request(
            Method::POST,
            &self.url,
            None,
            Some(LFS_JSON),
            json_body(&body)?,
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for CompleteMultipart {
    type OwnedResponse = Result<(), HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |_| Ok(()))
    }
}

/// `POST {"oid","size"}` to the verify URL, with the token.
#[derive(Debug, Clone)]
pub struct Verify {
    /// The verify URL.
    pub url: String,
    /// The token.
    pub token: HfToken,
    /// The object's sha256.
    pub oid: String,
    /// Its size.
    pub size: u64,
}

impl Action for Verify {
    type RequestBody = Bytes;
    type Response<'de> = Result<(), HubError>;

    fn request(self) -> Result<http::Request<Bytes>, satay_runtime::Error> {
        let body = serde_json::json!({"oid": self.oid, "size": self.size});
        request(
            Method::POST,
            &self.url,
            Some(&self.token),
            Some(LFS_JSON),
            json_body(&body)?,
        )
    }

    fn decode(response: ResponseParts<&[u8]>) -> Result<Self::Response<'_>, satay_runtime::Error> {
        Self::decode_owned(response)
    }
}

impl OwnedAction for Verify {
    type OwnedResponse = Result<(), HubError>;

    fn decode_owned(
        response: ResponseParts<&[u8]>,
    ) -> Result<Self::OwnedResponse, satay_runtime::Error> {
        decode_with(response, |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_calls_carry_no_token_and_verify_does() {
        let put = PutObject {
            url: "http://s/p1".into(),
            body: Bytes::from_static(b"abc"),
        }
        .request()
        .unwrap();
        assert_eq!(put.method(), Method::PUT);
        assert!(put.headers().get("authorization").is_none());
        assert_eq!(put.headers()["content-length"], "3");
        assert_eq!(put.body().as_ref(), b"abc");

        let done = CompleteMultipart {
            url: "http://s/done".into(),
            oid: "ab".into(),
            etags: vec!["\"e1\"".into(), "\"e2\"".into()],
        }
        .request()
        .unwrap();
        assert!(done.headers().get("authorization").is_none());
        let body: serde_json::Value = serde_json::from_slice(done.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"oid":"ab","parts":[{"partNumber":1,"etag":"\"e1\""},{"partNumber":2,"etag":"\"e2\""}]})
        );

        let verify = Verify {
            url: "http://hub/verify".into(),
            token: HfToken::new("tok"),
            oid: "ab".into(),
            size: 3,
        }
        .request()
        .unwrap();
        assert_eq!(verify.headers()["authorization"], "Bearer tok");
    }

    #[test]
    fn put_answer_yields_the_etag() {
        let mut headers = http::HeaderMap::new();
        headers.insert("etag", "\"xyz\"".parse().unwrap());
        let parts = ResponseParts {
            status: http::StatusCode::OK,
            headers,
            body: &b""[..],
        };
        assert_eq!(
            PutObject::decode_owned(parts).unwrap().unwrap().as_deref(),
            Some("\"xyz\"")
        );
    }
}
