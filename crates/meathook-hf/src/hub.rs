//! `HubClient`: sends the [actions](crate::action) with the sink's
//! `reqwest::Client`, bounds each call, and turns every failure into an
//! [`HfError`] that names the repository, the call and its URL.
//!
//! **Invariants:** every call — the request, the upload of its body and the
//! reading of its answer — runs under one deadline (the request timeout
//! for API calls, the upload timeout for each `PUT`), and every answer is
//! read with a size cap ([`answer`](crate::answer)): the sink's
//! `max_answer_bytes` for the Hub's JSON answers, [`MAX_INLINE`] for the
//! dataset card. A file's bytes are never all in memory: a basic upload
//! streams the scratch file (1 MiB at a time) with its `Content-Length`,
//! and so does each part of a multipart upload. The token goes only to the
//! endpoint's own origin: a verify URL elsewhere is refused.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use satay_runtime::{OwnedAction, ResponseParts};
use tokio::io::AsyncSeekExt as _;
use tokio::time::Instant;

use crate::action::{
    BatchObject, CompleteMultipart, Download, HubError, LfsBatch, ListTree, MAX_INLINE,
    ObjectAction, PutObject, TreeEntry, Verify,
};
use crate::answer::{self, Cut, shown};
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
    /// The most of a JSON answer that is read.
    pub(crate) answer_limit: usize,
}

/// Pages of one listing read at most (the Hub sends 1,000 entries a page;
/// a repository past 100,000 files is past its recommended size anyway).
pub(crate) const MAX_TREE_PAGES: usize = 200;

/// The calls addressed to presigned URLs of the upload host.
const STORAGE_CALLS: [&str; 3] = ["upload", "upload part", "multipart completion"];

/// The most of the dataset card that is read: a larger card could not be
/// committed back inline anyway.
pub(crate) const CARD_LIMIT: usize = MAX_INLINE;

impl HubClient {
    pub(crate) fn repo(&self) -> String {
        self.target.repo.to_string()
    }

    /// Sends `action`; the request and the reading of at most `limit` bytes
    /// of its answer are bounded by `timeout`.
    pub(crate) async fn send<A, T>(
        &self,
        call: &'static str,
        action: A,
        timeout: Duration,
        limit: usize,
    ) -> Result<T, HfError>
    where
        A: OwnedAction<OwnedResponse = Result<T, HubError>, RequestBody = Bytes> + Send,
    {
        let deadline = Instant::now() + timeout;
        let request = action.request().map_err(|e| self.unbuilt(call, &e))?;
        let url = request.uri().to_string();
        let request: reqwest::Request = request
            .map(reqwest::Body::from)
            .try_into()
            .map_err(|e: reqwest::Error| self.unbuilt(call, &without_url(e)))?;
        let response = self.execute(call, &url, timeout, deadline, request).await?;
        self.decode::<A, T>(call, &url, timeout, limit, deadline, response)
            .await
    }

    /// Sends `request` before `deadline`.
    async fn execute(
        &self,
        call: &'static str,
        url: &str,
        timeout: Duration,
        deadline: Instant,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, HfError> {
        match tokio::time::timeout_at(deadline, self.client.execute(request)).await {
            Err(_) => Err(self.late(call, url, timeout)),
            Ok(Err(e)) => Err(self.transport(call, url, e)),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Reads at most `limit` bytes of `response` before `deadline` and
    /// decodes them as `A`'s answer.
    async fn decode<A, T>(
        &self,
        call: &'static str,
        url: &str,
        timeout: Duration,
        limit: usize,
        deadline: Instant,
        response: reqwest::Response,
    ) -> Result<T, HfError>
    where
        A: OwnedAction<OwnedResponse = Result<T, HubError>>,
    {
        let answer = match answer::read(response, limit, deadline).await {
            Ok(answer) => answer,
            Err(Cut::Late) => return Err(self.late(call, url, timeout)),
            Err(Cut::TooLarge) => {
                return Err(HfError::TooLarge {
                    repo: self.repo(),
                    call,
                    url: shown(url),
                    limit: limit as u64,
                });
            }
            Err(Cut::Transport(e)) => return Err(self.transport(call, url, e)),
        };
        let parts = ResponseParts {
            status: answer.status,
            headers: answer.headers,
            body: &answer.body[..],
        };
        match A::decode_owned(parts) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refusal)) => Err(self.refused(call, url, refusal)),
            Err(e) => Err(HfError::Decode {
                repo: self.repo(),
                call,
                reason: format!("{} answered: {e}", shown(url)),
            }),
        }
    }

    /// Classifies a refusal. The upload host behind presigned URLs speaks
    /// for its URL, not for the token or the repository: its 4xx (a URL
    /// that expired while a large file went up, S3's `RequestTimeout` 400,
    /// a digest it did not like) is transient, and the next attempt asks
    /// the Hub for new URLs.
    fn refused(&self, call: &'static str, url: &str, refusal: HubError) -> HfError {
        let storage = STORAGE_CALLS.contains(&call);
        let status = refusal.status.as_u16();
        if storage && (400..500).contains(&status) && !matches!(status, 408 | 429) {
            return HfError::Storage {
                repo: self.repo(),
                call,
                url: shown(url),
                status,
                message: refusal.message,
            };
        }
        HfError::from_hub(
            refusal,
            call,
            &self.repo(),
            &self.target.branch,
            &self.token_var,
        )
    }

    /// An API call with the request timeout and the answer cap.
    pub(crate) async fn call<A, T>(&self, call: &'static str, action: A) -> Result<T, HfError>
    where
        A: OwnedAction<OwnedResponse = Result<T, HubError>, RequestBody = Bytes> + Send,
    {
        self.send(call, action, self.request_timeout, self.answer_limit)
            .await
    }

    /// Every entry of the folder `path` (none for a folder that does not
    /// exist), following the Hub's pages (at most [`MAX_TREE_PAGES`]).
    pub(crate) async fn list_folder(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>, HfError> {
        const CALL: &str = "listing a folder";
        let mut url = self.target.tree_url(path, recursive);
        let mut entries = Vec::new();
        for _ in 0..MAX_TREE_PAGES {
            let page = self
                .call(
                    CALL,
                    ListTree {
                        url,
                        token: self.token.clone(),
                    },
                )
                .await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) if self.target.same_origin(&next) => url = next,
                _ => return Ok(entries),
            }
        }
        Err(HfError::Decode {
            repo: self.repo(),
            call: CALL,
            reason: format!(
                "{path} has more than {MAX_TREE_PAGES} pages of entries; the Hub allows 10,000 a folder"
            ),
        })
    }

    /// The file at `path` on the branch (`None` if there is none), read
    /// whole up to `limit` bytes within the upload bound.
    pub(crate) async fn download(
        &self,
        call: &'static str,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, HfError> {
        let download = Download {
            target: self.target.clone(),
            token: self.token.clone(),
            path: path.to_owned(),
        };
        self.send(call, download, self.upload_timeout, limit).await
    }

    fn late(&self, call: &'static str, url: &str, timeout: Duration) -> HfError {
        HfError::Timeout {
            repo: self.repo(),
            call,
            url: shown(url),
            timeout,
        }
    }

    fn transport(&self, call: &'static str, url: &str, e: reqwest::Error) -> HfError {
        HfError::Transport {
            repo: self.repo(),
            call,
            reason: format!(
                "{}: {}",
                shown(url),
                meathook_core::ErrorChain(&without_url(e))
            ),
        }
    }

    /// A request that could not be built: it never will be.
    fn unbuilt(&self, call: &'static str, e: &dyn std::error::Error) -> HfError {
        HfError::Rejected {
            repo: self.repo(),
            call,
            status: 0,
            message: format!("the request could not be built: {e}"),
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
            ObjectAction::Basic { href } => {
                self.put_range("upload", href, file, 0, size).await?;
            }
            ObjectAction::Multipart {
                complete,
                chunk_size,
                parts,
            } => {
                // The plan must cover the file exactly, with no empty part:
                // anything else would upload a different object.
                let needed = (*chunk_size > 0).then(|| size.div_ceil(*chunk_size));
                if needed != Some(parts.len() as u64) {
                    return Err(HfError::Decode {
                        repo: self.repo(),
                        call: "LFS batch",
                        reason: format!(
                            "{path} ({size} bytes) was given {} part URLs of {chunk_size} bytes; \
                             {} are needed",
                            parts.len(),
                            needed.unwrap_or(0)
                        ),
                    });
                }
                let mut etags = Vec::with_capacity(parts.len());
                for (i, url) in parts.iter().enumerate() {
                    let start = chunk_size.saturating_mul(i as u64);
                    let len = (*chunk_size).min(size.saturating_sub(start));
                    let etag = self.put_range("upload part", url, file, start, len).await?;
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
            if !self.target.same_origin(url) {
                return Err(HfError::ForeignUrl {
                    repo: self.repo(),
                    call: "verify",
                    url: shown(url),
                    endpoint: self.target.endpoint.clone(),
                });
            }
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

    /// Streams `len` bytes at `start` of a scratch file to a presigned URL,
    /// without the token, and returns the answer's `ETag`. `Content-Length`
    /// is set: presigned storage URLs refuse chunked bodies. The upload and
    /// the reading of the answer share one deadline.
    async fn put_range(
        &self,
        call: &'static str,
        href: &str,
        file: &Path,
        start: u64,
        len: u64,
    ) -> Result<Option<String>, HfError> {
        let deadline = Instant::now() + self.upload_timeout;
        let local = |e: std::io::Error| HfError::Local {
            action: "reading",
            path: file.to_path_buf(),
            source: std::sync::Arc::new(e),
        };
        let mut f = tokio::fs::File::open(file).await.map_err(local)?;
        if start > 0 {
            f.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(local)?;
        }
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            tokio::io::AsyncReadExt::take(f, len),
            1 << 20,
        ));
        let request = self
            .client
            .put(href)
            .header(http::header::CONTENT_LENGTH, len)
            .body(body)
            .build()
            .map_err(|e| self.malformed_url(call, href, e))?;
        let response = self
            .execute(call, href, self.upload_timeout, deadline, request)
            .await?;
        self.decode::<PutObject, _>(
            call,
            href,
            self.upload_timeout,
            self.answer_limit,
            deadline,
            response,
        )
        .await
    }

    /// A URL from the Hub's answer that cannot be requested.
    fn malformed_url(&self, call: &'static str, href: &str, e: reqwest::Error) -> HfError {
        HfError::Decode {
            repo: self.repo(),
            call,
            reason: format!(
                "the Hub gave an upload URL that cannot be requested ({}): {}",
                shown(href),
                meathook_core::ErrorChain(&without_url(e))
            ),
        }
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
}

/// The error without the URL reqwest keeps in it: a presigned URL's query
/// is a credential, and messages show URLs through [`shown`].
fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}
