//! `RepoId` and the Hub's URLs: which dataset, which branch, which endpoint.
//!
//! **Invariant:** every URL the sink calls is built here from a validated
//! `namespace/name` and a revision percent-encoded with nothing kept safe
//! (`refs/pr/1` → `refs%2Fpr%2F1`), as the Hub's own clients do.

use std::fmt;

/// The default Hub endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A dataset repository, `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    namespace: String,
    name: String,
}

impl RepoId {
    /// Parses `namespace/name`; `None` when it is not two non-empty
    /// segments of letters, digits, `-`, `_` and `.` (not `..`).
    pub fn parse(repo: &str) -> Option<Self> {
        let (namespace, name) = repo.split_once('/')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && !s.contains("..")
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        (ok(namespace) && ok(name)).then(|| Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The namespace (user or organisation).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The repository's name within its namespace.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Percent-encodes a revision (or any path segment) with nothing kept safe.
pub fn encode_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a repository file path, keeping its `/` separators.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Where one repository's branch lives: the URLs of every call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The endpoint, without a trailing `/`.
    pub endpoint: String,
    /// The dataset.
    pub repo: RepoId,
    /// The branch (revision) commits go to.
    pub branch: String,
}

impl Target {
    fn api(&self) -> String {
        format!("{}/api/datasets/{}", self.endpoint, self.repo)
    }

    /// `POST …/preupload/{rev}`.
    pub fn preupload_url(&self) -> String {
        format!("{}/preupload/{}", self.api(), encode_segment(&self.branch))
    }

    /// `POST …/commit/{rev}`.
    pub fn commit_url(&self) -> String {
        format!("{}/commit/{}", self.api(), encode_segment(&self.branch))
    }

    /// `POST …/super-squash/{rev}`: the branch's history replaced by one
    /// commit.
    pub fn super_squash_url(&self) -> String {
        format!(
            "{}/super-squash/{}",
            self.api(),
            encode_segment(&self.branch)
        )
    }

    /// `GET …/commits/{rev}`: the branch's commits, newest first.
    pub fn commits_url(&self) -> String {
        format!("{}/commits/{}", self.api(), encode_segment(&self.branch))
    }

    /// `POST {EP}/datasets/{ns}/{name}.git/info/lfs/objects/batch`.
    pub fn lfs_batch_url(&self) -> String {
        format!(
            "{}/datasets/{}.git/info/lfs/objects/batch",
            self.endpoint, self.repo
        )
    }

    /// `GET …/tree/{rev}/{path}`: a folder's entries (the repository's
    /// root for an empty path), with every entry below it if `recursive`.
    pub fn tree_url(&self, path: &str, recursive: bool) -> String {
        let mut url = format!("{}/tree/{}", self.api(), encode_segment(&self.branch));
        if !path.is_empty() {
            url.push('/');
            url.push_str(&encode_path(path));
        }
        if recursive {
            url.push_str("?recursive=true");
        }
        url
    }

    /// `GET {EP}/datasets/{ns}/{name}/resolve/{rev}/{path}`.
    pub fn resolve_url(&self, path: &str) -> String {
        format!(
            "{}/datasets/{}/resolve/{}/{}",
            self.endpoint,
            self.repo,
            encode_segment(&self.branch),
            encode_path(path)
        )
    }

    /// `GET {EP}/api/whoami-v2`.
    pub fn whoami_url(&self) -> String {
        format!("{}/api/whoami-v2", self.endpoint)
    }

    /// Whether `url` has the endpoint's origin (scheme, host and port):
    /// the only place the token may go.
    pub fn same_origin(&self, url: &str) -> bool {
        match (
            reqwest::Url::parse(&self.endpoint),
            reqwest::Url::parse(url),
        ) {
            (Ok(a), Ok(b)) => a.origin().is_tuple() && a.origin() == b.origin(),
            _ => false,
        }
    }

    /// `POST {EP}/api/repos/create`.
    pub fn create_repo_url(&self) -> String {
        format!("{}/api/repos/create", self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_validated() {
        let r = RepoId::parse("you/my-data.v2").unwrap();
        assert_eq!((r.namespace(), r.name()), ("you", "my-data.v2"));
        for bad in ["noslash", "a/b/c", "/x", "x/", "a/..", "a b/c", "a/%2F"] {
            assert!(RepoId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn revisions_are_encoded_with_nothing_safe() {
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_path("data/a b/x.parquet"), "data/a%20b/x.parquet");
        let t = Target {
            endpoint: "http://127.0.0.1:9".into(),
            repo: RepoId::parse("ns/ds").unwrap(),
            branch: "refs/pr/1".into(),
        };
        assert_eq!(
            t.commit_url(),
            "http://127.0.0.1:9/api/datasets/ns/ds/commit/refs%2Fpr%2F1"
        );
        assert_eq!(
            t.super_squash_url(),
            "http://127.0.0.1:9/api/datasets/ns/ds/super-squash/refs%2Fpr%2F1"
        );
        assert_eq!(
            t.lfs_batch_url(),
            "http://127.0.0.1:9/datasets/ns/ds.git/info/lfs/objects/batch"
        );
        assert_eq!(
            t.resolve_url("README.md"),
            "http://127.0.0.1:9/datasets/ns/ds/resolve/refs%2Fpr%2F1/README.md"
        );
    }
}
