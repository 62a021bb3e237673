//! `HfError`: why the Hub did not take a window, and whether a retry can
//! help.
//!
//! **Invariant:** no variant holds the token; messages name the repository,
//! the call and, for credentials, the environment variable the token came
//! from; URLs are shown without their query. [`class`](SinkError::class)
//! is what the spool acts on: permanent errors are reported and
//! dead-lettered after its attempts, never spun on; a conflict (a path
//! holding other bytes), an ignored path, an unusable token or a token
//! asked for off the endpoint are permanent, because no retry can change
//! them; an answer too large or too slow to read is transient.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meathook_core::{ErrorClass, SinkError};
use meathook_files::WindowFileError;
use meathook_parquet::EncodeError;

use crate::action::HubError;

/// An error of [`HfSink`](crate::HfSink).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HfError {
    /// The repository is not `namespace/name`. Permanent.
    #[error("{repo:?} is not a dataset repository id: write it as namespace/name")]
    InvalidRepo {
        /// What was given.
        repo: String,
    },
    /// A setting cannot work: an endpoint that is not an `http(s)` URL, an
    /// empty branch, a count or bound of zero. Permanent. What to do: fix the named setting.
    #[error("the {parameter} setting of the sink for {repo} cannot be used: {reason}")]
    InvalidSetting {
        /// The repository.
        repo: String,
        /// The setting (its setter is `with_` and this name).
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No token was configured. Permanent.
    #[error("no HuggingFace token for {repo}: set {token_var} to a token with write access")]
    NoToken {
        /// The repository.
        repo: String,
        /// Where the token should come from.
        token_var: String,
    },
    /// 401: the token was refused. Permanent.
    #[error(
        "{call} on {repo} was refused (401): the token in {token_var} is invalid or expired; \
         create a new write token at https://huggingface.co/settings/tokens ({message})"
    )]
    Unauthorized {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// Where the token came from.
        token_var: String,
        /// The Hub's message.
        message: String,
    },
    /// 403: the token may not write here, or the repository is disabled.
    /// Permanent.
    #[error(
        "{call} on {repo} was forbidden (403): the token in {token_var} needs write access \
         to this dataset (a write token, or a fine-grained token with write permission on \
         {repo}) ({message})"
    )]
    Forbidden {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// Where the token came from.
        token_var: String,
        /// The Hub's message.
        message: String,
    },
    /// 404: the repository or branch does not exist. Permanent.
    #[error(
        "{call} on {repo} (branch {branch}) found nothing (404 {code}): create the dataset \
         and the branch, or enable create-if-missing ({message})"
    )]
    NotFound {
        /// The repository.
        repo: String,
        /// The branch.
        branch: String,
        /// The call.
        call: &'static str,
        /// `X-Error-Code`, or `-`.
        code: String,
        /// The Hub's message.
        message: String,
    },
    /// 400, 413, 422 or another 4xx: the request is wrong and will stay
    /// wrong. Permanent: a bug to report.
    #[error("{call} on {repo} was rejected ({status}): {message}")]
    Rejected {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// The status.
        status: u16,
        /// The Hub's message.
        message: String,
    },
    /// 429: rate limited. Transient, with the wait the Hub asked for.
    #[error("{call} on {repo} was rate limited (429): waiting {wait:?}")]
    RateLimited {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// How long to wait.
        wait: Duration,
    },
    /// 412: the branch moved since preupload. Transient: preupload again.
    #[error("the head of {repo} moved during a commit (412): preuploading again")]
    StaleParent {
        /// The repository.
        repo: String,
    },
    /// 5xx, 408 or another answer that may change. Transient.
    #[error("{call} on {repo} failed ({status}): {message}")]
    Server {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// The status.
        status: u16,
        /// The start of the body.
        message: String,
    },
    /// The upload host behind a presigned URL refused an upload or a
    /// multipart completion with a 4xx: the URL expired, or the host timed
    /// the body out. Transient: the next attempt asks for new URLs.
    #[error(
        "{call} on {repo} was refused by the upload host {url} ({status}): {message}; \
         it will be retried with new upload URLs"
    )]
    Storage {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// The presigned URL, without its query.
        url: String,
        /// The status.
        status: u16,
        /// The host's message.
        message: String,
    },
    /// A connection failed, was reset, or timed out. Transient.
    #[error("{call} on {repo} failed in transport: {reason}")]
    Transport {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// What the transport said.
        reason: String,
    },
    /// A call got no complete answer before its deadline (the sink's
    /// request or upload timeout): a server that never answers, or drips
    /// its answer. Transient.
    #[error(
        "{call} on {repo} got no complete answer from {url} within {timeout:?}; \
         it will be retried"
    )]
    Timeout {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// The URL called, without its query.
        url: String,
        /// The bound.
        timeout: Duration,
    },
    /// An answer was larger than the sink reads (`max_answer_bytes`, or
    /// 10 MiB for the dataset card): it was dropped unread. A proxy or a
    /// captive portal in the way, usually. Transient.
    #[error(
        "{call} on {repo} got an answer of more than {limit} bytes from {url}, the most \
         this sink reads: it was dropped, and the call will be retried (if the Hub's \
         answers really are this large, raise max_answer_bytes)"
    )]
    TooLarge {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// The URL called, without its query.
        url: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The path already holds a file with other bytes. A file is never
    /// replaced: the window is refused and kept aside (the spool
    /// dead-letters it) while the rest of its commit round lands.
    /// Permanent.
    #[error(
        "{path} already exists in {repo} (branch {branch}) with other bytes (the Hub \
         reports {existing}; this window's sha256 is {ours}): it is never replaced, so \
         this window is kept aside; check whether another process or an earlier spool \
         wrote that path"
    )]
    Conflict {
        /// The repository.
        repo: String,
        /// The branch.
        branch: String,
        /// The file.
        path: String,
        /// The oid the Hub reports for the existing file (a sha256 for LFS
        /// files, a git blob id for others).
        existing: String,
        /// This window's sha256.
        ours: String,
    },
    /// The repository's `.gitignore` excludes the path, so a commit would
    /// drop the file. Permanent.
    #[error(
        "{path} is excluded by the .gitignore of {repo} (branch {branch}), so the Hub \
         would drop it: remove the rule, or set another path prefix"
    )]
    Ignored {
        /// The repository.
        repo: String,
        /// The branch.
        branch: String,
        /// The file.
        path: String,
    },
    /// The token cannot be sent (a space, a control character or a
    /// non-ASCII character inside it). Permanent.
    #[error("the token in {token_var} for {repo} cannot be used: {problem}")]
    InvalidToken {
        /// The repository.
        repo: String,
        /// Where the token came from.
        token_var: String,
        /// What is wrong with it.
        problem: crate::token::InvalidToken,
    },
    /// The Hub asked for a call that carries the token to a URL outside
    /// the endpoint's origin; it is not sent. Permanent.
    #[error(
        "{call} for {repo} would send the token to {url}, outside the endpoint {endpoint}: \
         refused; check the endpoint setting and any proxy in the way"
    )]
    ForeignUrl {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// The URL, without its query.
        url: String,
        /// The configured endpoint.
        endpoint: String,
    },
    /// An answer could not be understood (a proxy's HTML, a truncated
    /// body). Transient.
    #[error("{call} on {repo} returned an answer that cannot be read: {reason}")]
    Decode {
        /// The repository.
        repo: String,
        /// The call.
        call: &'static str,
        /// Why.
        reason: String,
    },
    /// The LFS batch refused one object. Permanent for 4xx codes.
    #[error("LFS refused {path} in {repo} (code {code}): {message}")]
    Object {
        /// The repository.
        repo: String,
        /// The file.
        path: String,
        /// The per-object code.
        code: u16,
        /// The message.
        message: String,
    },
    /// The encoder could not be built (a record type parquet cannot
    /// represent). Permanent.
    #[error("cannot encode {window} for {repo}: {source}")]
    Encode {
        /// The repository.
        repo: String,
        /// The windows concerned (`every window`).
        window: String,
        /// What the encoder said.
        source: Arc<EncodeError>,
    },
    /// A window's file could not be made, or its delivery not recorded:
    /// what the window-file pipeline reported, kept whole as the source.
    /// One record that cannot be encoded is reported this way in the
    /// receipt, while the rest of its window is taken. Permanent for
    /// records and settings the encoder refuses; transient for IO, a
    /// stopped task or a catalog that could not record (the window stays
    /// spooled, and the retry finds the file already there and reports it
    /// again).
    #[error("{repo}: {source}")]
    File {
        /// The repository.
        repo: String,
        /// What the pipeline reported.
        source: Arc<WindowFileError<EncodeError>>,
    },
    /// A scratch file operation failed. Transient (a full disk may clear).
    #[error("{action} {path} failed: {source}; check its permissions and free space")]
    Local {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's answer.
        source: Arc<io::Error>,
    },
    /// A day folder could not be compacted: its files changed meanwhile
    /// (transient: it is compacted again), or they cannot be merged (two
    /// schemas, a file that is not parquet: permanent for that folder).
    /// Nothing on the branch changed.
    #[error("{repo}: {folder} was not compacted: {reason}")]
    Compaction {
        /// The repository.
        repo: String,
        /// The folder.
        folder: String,
        /// Why.
        reason: String,
        /// Whether another try may succeed.
        transient: bool,
    },
    /// A compaction's commit landed but the catalog could not record it.
    /// Transient.
    #[error("{repo}: a compaction was committed but the catalog could not record it: {reason}")]
    Catalog {
        /// The repository.
        repo: String,
        /// The catalog's error.
        reason: String,
    },
    /// The commit round carrying this file stopped before it answered (its
    /// task was cancelled). Transient.
    #[error("the commit to {repo} carrying {path} was interrupted; it will be retried")]
    Interrupted {
        /// The repository.
        repo: String,
        /// The file.
        path: String,
    },
}

impl HfError {
    /// Classifies a refusal of `call` on `repo`.
    pub(crate) fn from_hub(
        e: HubError,
        call: &'static str,
        repo: &str,
        branch: &str,
        token_var: &str,
    ) -> Self {
        let repo = repo.to_owned();
        let message = e.message;
        let token_var = token_var.to_owned();
        match e.status.as_u16() {
            401 => Self::Unauthorized {
                repo,
                call,
                token_var,
                message,
            },
            403 => Self::Forbidden {
                repo,
                call,
                token_var,
                message,
            },
            404 => Self::NotFound {
                repo,
                branch: branch.to_owned(),
                call,
                code: e.code.unwrap_or_else(|| "-".into()),
                message,
            },
            412 => Self::StaleParent { repo },
            429 => Self::RateLimited {
                repo,
                call,
                wait: e.retry_after.unwrap_or(crate::action::QUOTA_FLOOR),
            },
            408 => Self::Server {
                repo,
                call,
                status: 408,
                message,
            },
            status @ 400..=499 => Self::Rejected {
                repo,
                call,
                status,
                message,
            },
            status => Self::Server {
                repo,
                call,
                status,
                message,
            },
        }
    }
}

impl SinkError for HfError {
    fn class(&self) -> ErrorClass {
        match self {
            // Settings no retry changes.
            Self::InvalidRepo { .. } | Self::NoToken { .. } | Self::InvalidToken { .. } => {
                ErrorClass::Permanent
            }
            Self::InvalidSetting { .. } | Self::Encode { .. } => ErrorClass::Permanent,
            Self::ForeignUrl { .. } => ErrorClass::Permanent,
            // Refusals that stay refusals.
            Self::Unauthorized { .. } | Self::Forbidden { .. } => ErrorClass::Permanent,
            Self::NotFound { .. } | Self::Rejected { .. } => ErrorClass::Permanent,
            // Paths the branch will never take from this window.
            Self::Conflict { .. } | Self::Ignored { .. } => ErrorClass::Permanent,
            Self::Object { code, .. } if (400..500).contains(code) && *code != 429 => {
                ErrorClass::Permanent
            }
            Self::File { source, .. } => source.class(),
            Self::Compaction {
                transient: false, ..
            } => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn hub(status: u16) -> HubError {
        HubError {
            status: StatusCode::from_u16(status).unwrap(),
            code: None,
            message: "m".into(),
            retry_after: Some(Duration::from_secs(9)),
        }
    }

    #[test]
    fn statuses_are_classified() {
        for s in [400, 401, 403, 404, 413, 422] {
            let e = HfError::from_hub(hub(s), "commit", "ns/ds", "main", "HF_TOKEN");
            assert_eq!(e.class(), ErrorClass::Permanent, "{s}");
        }
        for s in [408, 412, 429, 500, 502, 503, 504] {
            let e = HfError::from_hub(hub(s), "commit", "ns/ds", "main", "HF_TOKEN");
            assert_eq!(e.class(), ErrorClass::Transient, "{s}");
        }
        let e = HfError::from_hub(hub(429), "commit", "ns/ds", "main", "HF_TOKEN");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
    }

    #[test]
    fn credential_errors_name_the_repo_and_variable() {
        let e = HfError::from_hub(hub(401), "preupload", "ns/ds", "main", "HF_TOKEN");
        let text = e.to_string();
        assert!(
            text.contains("ns/ds") && text.contains("HF_TOKEN"),
            "{text}"
        );
        let e = HfError::from_hub(hub(403), "commit", "ns/ds", "main", "MY_TOKEN");
        let text = e.to_string();
        assert!(
            text.contains("write access") && text.contains("MY_TOKEN"),
            "{text}"
        );
    }
}
