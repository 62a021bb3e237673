//! `HubClient`: sends the [actions](crate::action) through satay-reqwest,
//! bounds each call with a timeout, and turns every failure into an
//! [`HfError`] that names the repository and the call.
//!
//! **Invariant:** a file's bytes are never all in memory: a basic upload
//! streams the scratch file (1 MiB at a time) with its `Content-Length`; a
//! multipart upload reads one part at a time.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use satay_reqwest::ReqwestActionExt as _;
use satay_runtime::OwnedAction;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::action::{
    BatchObject, CompleteMultipart, HubError, LfsBatch, ObjectAction, PutObject, Verify,
};
use crate::error::HfError;
use crate::repo::Target;
use crate::token::HfToken;

/// The Hub, as one sink stack's calls see it.
#[derive(Debug, Clone)]
pub(crate) struct HubClient {
    pub(crate) client: reqwest::Client,
    pub(crate) target: Target,
    pub(crate) token: HfToken,
    pub(crate) token_var: String,
    /// Bound on API calls (the Hub times requests out at about 60 s).
    pub(crate) request_timeout: Duration,
    /// Bound on one upload `PUT`.
    pub(crate) upload_timeout: Duration,
}

impl HubClient {
    pub(crate) fn repo(&self) -> String {
        self.target.repo.to_string()
    }

    /// Sends `action`, bounded by `timeout`.
    pub(crate) async fn send<A, T>(
        &self,
        call: &'static str,
        action: A,
        timeout: Duration,
    ) -> Result<T, HfError>
    where
        A: OwnedAction<OwnedResponse = Result<T, HubError>, RequestBody = Bytes> + Send,
    {
        let sent = tokio::time::timeout(timeout, action.send_buffered_with(&self.client)).await;
        let response = match sent {
            Err(_) => {
                return Err(HfError::Transport {
                    repo: self.repo(),
                    call,
                    reason: format!("no answer within {timeout:?}"),
                });
            }
            Ok(Err(e)) => return Err(self.transport(call, &e)),
            Ok(Ok(response)) => response,
        };
        match response.decode_owned() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refusal)) => Err(HfError::from_hub(
                refusal,
                call,
                &self.repo(),
                &self.target.branch,
                &self.token_var,
            )),
            Err(e) => Err(HfError::Decode {
                repo: self.repo(),
                call,
                reason: e.to_string(),
            }),
        }
    }

    /// An API call with the default timeout.
    pub(crate) async fn call<A, T>(&self, call: &'static str, action: A) -> Result<T, HfError>
    where
        A: OwnedAction<OwnedResponse = Result<T, HubError>, RequestBody = Bytes> + Send,
    {
        self.send(call, action, self.request_timeout).await
    }

    fn transport(&self, call: &'static str, e: &satay_reqwest::Error) -> HfError {
        let reason = match e {
            satay_reqwest::Error::Reqwest(e) => error_chain(e),
            satay_reqwest::Error::Satay(e) => {
                return HfError::Rejected {
                    repo: self.repo(),
                    call,
                    status: 0,
                    message: format!("the request could not be built: {e}"),
                };
            }
        };
        HfError::Transport {
            repo: self.repo(),
            call,
            reason,
        }
    }

    /// Uploads one object as the batch answer says, then verifies it if
    /// asked. `path` is the repository path, for messages.
    pub(crate) async fn upload(
        &self,
        object: &BatchObject,
        file: &Path,
        size: u64,
        path: &str,
    ) -> Result<(), HfError> {
        match &object.action {
            ObjectAction::Stored => return Ok(()),
            ObjectAction::Error { code, message } => {
                return Err(HfError::Object {
                    repo: self.repo(),
                    path: path.to_owned(),
                    code: *code,
                    message: message.clone(),
                });
            }
            ObjectAction::Basic { href } => self.put_file(href, file, size).await?,
            ObjectAction::Multipart {
                complete,
                chunk_size,
                parts,
            } => {
                let mut etags = Vec::with_capacity(parts.len());
                for (i, url) in parts.iter().enumerate() {
                    let start = chunk_size.saturating_mul(i as u64);
                    let len = (*chunk_size).min(size.saturating_sub(start));
                    let body = self.read(file, start, len).await?;
                    let put = PutObject {
                        url: url.clone(),
                        body,
                    };
                    let etag = self.send("upload part", put, self.upload_timeout).await?;
                    etags.push(etag.ok_or_else(|| HfError::Decode {
                        repo: self.repo(),
                        call: "upload part",
                        reason: format!("part {} of {path} was answered without an ETag", i + 1),
                    })?);
                }
                let done = CompleteMultipart {
                    url: complete.clone(),
                    oid: object.oid.clone(),
                    etags,
                };
                self.call("multipart completion", done).await?;
            }
        }
        if let Some(url) = &object.verify {
            let verify = Verify {
                url: url.clone(),
                token: self.token.clone(),
                oid: object.oid.clone(),
                size,
            };
            self.call("verify", verify).await?;
        }
        Ok(())
    }

    /// Streams a whole scratch file to a presigned URL, without the token.
    /// `Content-Length` is set: presigned storage URLs refuse chunked
    /// bodies.
    async fn put_file(&self, href: &str, file: &Path, size: u64) -> Result<(), HfError> {
        const CALL: &str = "upload";
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| HfError::Local {
                action: "reading",
                path: file.to_path_buf(),
                reason: e.to_string(),
            })?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
        let request = self
            .client
            .put(href)
            .header(http::header::CONTENT_LENGTH, size)
            .body(body);
        let response = match tokio::time::timeout(self.upload_timeout, request.send()).await {
            Err(_) => {
                return Err(HfError::Transport {
                    repo: self.repo(),
                    call: CALL,
                    reason: format!("no answer within {:?}", self.upload_timeout),
                });
            }
            Ok(Err(e)) => {
                return Err(HfError::Transport {
                    repo: self.repo(),
                    call: CALL,
                    reason: error_chain(&e),
                });
            }
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            return Ok(());
        }
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.bytes().await.unwrap_or_default();
        let refusal = HubError::from_parts(&satay_runtime::ResponseParts {
            status,
            headers,
            body: &body[..],
        });
        Err(HfError::from_hub(
            refusal,
            CALL,
            &self.repo(),
            &self.target.branch,
            &self.token_var,
        ))
    }

    /// Asks where to upload `objects`.
    pub(crate) async fn batch(
        &self,
        objects: Vec<(String, u64)>,
    ) -> Result<Vec<BatchObject>, HfError> {
        let batch = LfsBatch {
            target: self.target.clone(),
            token: self.token.clone(),
            objects,
        };
        self.call("LFS batch", batch).await
    }

    /// Reads `len` bytes at `start` of a scratch file into one buffer.
    async fn read(&self, file: &Path, start: u64, len: u64) -> Result<Bytes, HfError> {
        let local = |reason: std::io::Error| HfError::Local {
            action: "reading",
            path: file.to_path_buf(),
            reason: reason.to_string(),
        };
        let cap = usize::try_from(len).map_err(|_| HfError::Local {
            action: "reading",
            path: file.to_path_buf(),
            reason: "the file is larger than memory can address".into(),
        })?;
        let mut f = tokio::fs::File::open(file).await.map_err(local)?;
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(local)?;
        let mut buf = Vec::with_capacity(cap);
        (&mut f)
            .take(len)
            .read_to_end(&mut buf)
            .await
            .map_err(local)?;
        if buf.len() != cap {
            return Err(HfError::Local {
                action: "reading",
                path: file.to_path_buf(),
                reason: format!("expected {len} bytes at {start}, found {}", buf.len()),
            });
        }
        Ok(Bytes::from(buf))
    }
}

/// An error's text with its sources. reqwest's text names the URL: a
/// presigned URL is no secret of ours, and the token is never in a URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
