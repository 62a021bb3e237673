//! One repository of the fake Hub: its commits, each holding a snapshot of
//! the file map as of that commit (shared, so a commit costs one map copy
//! of pointers, not of contents), and its branches, each naming a commit.
//! A revision is a branch name or a full 40-hex commit id, as on the Hub.
//! A super-squash replaces a branch's history with one commit holding its
//! files; the commits no branch reaches any more are forgotten.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A path's content at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// An LFS pointer: the object's sha256 and size.
    Lfs { oid: String, size: u64 },
    /// A regular (git) file, its bytes.
    Regular { content: Arc<[u8]> },
}

/// The files of a commit, by path.
pub(crate) type Files = BTreeMap<String, Entry>;

/// One change of a commit: a path set to an entry, or deleted (`None`).
pub(crate) type Change = (String, Option<Entry>);

/// A commit: who, when, why, and the tree it leaves.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub(crate) id: String,
    pub(crate) parent: Option<String>,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) author: String,
    pub(crate) date: OffsetDateTime,
    pub(crate) files: Arc<Files>,
}

impl Commit {
    /// The date as the Hub writes it: RFC 3339, UTC, milliseconds.
    pub(crate) fn date_text(&self) -> String {
        rfc3339_millis(self.date)
    }
}

/// `2026-12-05T02:40:00.123Z`.
pub(crate) fn rfc3339_millis(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let at = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    let text = at.format(&Rfc3339).unwrap_or_default();
    // `time` drops trailing zeros of the fraction; the Hub always writes three digits.
    match text.split_once('.') {
        Some((base, frac)) => format!("{base}.{:0<3}Z", frac.trim_end_matches('Z')),
        None => format!("{}.000Z", text.trim_end_matches('Z')),
    }
}

/// What a new commit says about itself.
#[derive(Debug, Clone)]
pub(crate) struct CommitInfo {
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) author: String,
    pub(crate) date: OffsetDateTime,
}

/// A repository: commits by id, branches by name.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) created: OffsetDateTime,
    pub(crate) branches: BTreeMap<String, String>,
    pub(crate) commits: HashMap<String, Commit>,
}

/// The `.gitattributes` the Hub's initial commit of a dataset holds.
pub(crate) const GITATTRIBUTES: &[u8] = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n";

impl Repo {
    /// A repository without commits or branches.
    pub(crate) fn empty(created: OffsetDateTime) -> Self {
        Self {
            created,
            branches: BTreeMap::new(),
            commits: HashMap::new(),
        }
    }

    /// The commit a revision names: a branch, or a full commit id.
    pub(crate) fn resolve(&self, rev: &str) -> Option<&Commit> {
        match self.branches.get(rev) {
            Some(id) => self.commits.get(id),
            None if is_commit_id(rev) => self.commits.get(rev),
            None => None,
        }
    }

    /// The head of a branch (not a commit id: only branches move).
    pub(crate) fn head(&self, branch: &str) -> Option<&Commit> {
        self.commits.get(self.branches.get(branch)?)
    }

    /// Commits `changes` on top of `branch` (see [`Repo::prepare`]),
    /// moves the branch, and returns the new commit.
    #[cfg(test)]
    pub(crate) fn apply(
        &mut self,
        repo: &str,
        branch: &str,
        info: CommitInfo,
        changes: &[Change],
    ) -> &Commit {
        let commit = self.prepare(repo, branch, info, changes);
        let id = commit.id.clone();
        self.insert(branch, commit);
        &self.commits[&id]
    }

    /// The commit `changes` on top of `branch` would make (the branch's
    /// first if it has none), under a content-derived id; nothing moves.
    pub(crate) fn prepare(
        &self,
        repo: &str,
        branch: &str,
        info: CommitInfo,
        changes: &[Change],
    ) -> Commit {
        let parent = self.branches.get(branch).cloned();
        let files = self.snapshot(parent.as_deref(), changes);
        let id = commit_id(repo, parent.as_deref(), &info, changes);
        Commit {
            id,
            parent,
            title: info.title,
            message: info.message,
            author: info.author,
            date: info.date,
            files: Arc::new(files),
        }
    }

    /// The files of `parent` (none for a first commit) with `changes` made.
    pub(crate) fn snapshot(&self, parent: Option<&str>, changes: &[Change]) -> Files {
        let mut files = parent
            .and_then(|p| self.commits.get(p))
            .map(|c| Files::clone(&c.files))
            .unwrap_or_default();
        for (path, entry) in changes {
            match entry {
                Some(e) => files.insert(path.clone(), e.clone()),
                None => files.remove(path),
            };
        }
        files
    }

    /// Adds a commit whose snapshot is built, and points `branch` at it.
    pub(crate) fn insert(&mut self, branch: &str, commit: Commit) {
        self.branches.insert(branch.to_owned(), commit.id.clone());
        self.commits.insert(commit.id.clone(), commit);
    }

    /// The commit a super-squash of `branch` would make: one commit without
    /// a parent holding the files of the branch's head, under an id derived
    /// from the repository, `info` and every file of that tree; `None`
    /// when there is no such branch. Nothing moves.
    pub(crate) fn prepare_squash(
        &self,
        repo: &str,
        branch: &str,
        info: CommitInfo,
    ) -> Option<Commit> {
        let files = Arc::clone(&self.head(branch)?.files);
        let tree: Vec<Change> = files
            .iter()
            .map(|(path, entry)| (path.clone(), Some(entry.clone())))
            .collect();
        let id = commit_id(repo, None, &info, &tree);
        Some(Commit {
            id,
            parent: None,
            title: info.title,
            message: info.message,
            author: info.author,
            date: info.date,
            files,
        })
    }

    /// Points `branch` at `commit` (a squash's, see
    /// [`Repo::prepare_squash`]) and forgets every commit no branch reaches
    /// any more: the branch's old history is gone, ids and all.
    pub(crate) fn replace_history(&mut self, branch: &str, commit: Commit) {
        self.insert(branch, commit);
        let mut reached = HashSet::new();
        for head in self.branches.values() {
            let mut next = Some(head.as_str());
            while let Some(id) = next {
                if !reached.insert(id.to_owned()) {
                    break;
                }
                next = self.commits.get(id).and_then(|c| c.parent.as_deref());
            }
        }
        self.commits.retain(|id, _| reached.contains(id));
    }

    /// The commits reachable from `rev`, newest first.
    pub(crate) fn history(&self, rev: &str) -> Option<Vec<&Commit>> {
        let mut out = vec![self.resolve(rev)?];
        while let Some(parent) = out.last().and_then(|c| c.parent.as_deref()) {
            match self.commits.get(parent) {
                Some(c) => out.push(c),
                None => break,
            }
        }
        Some(out)
    }
}

/// Whether `rev` has the shape of a full commit id.
pub(crate) fn is_commit_id(rev: &str) -> bool {
    rev.len() == 40
        && rev
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A commit id derived from what the commit is, as git's are: the
/// repository, the parent, the author, the date and every change,
/// hashed with sha256 and cut to 40 hex digits.
fn commit_id(repo: &str, parent: Option<&str>, info: &CommitInfo, changes: &[Change]) -> String {
    let mut h = Sha256::new();
    for part in [
        repo,
        parent.unwrap_or(""),
        &info.author,
        &info.title,
        &info.message,
        &info.date.unix_timestamp_nanos().to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (path, entry) in changes {
        h.update(path.as_bytes());
        h.update([0]);
        match entry {
            Some(Entry::Lfs { oid, size }) => h.update(format!("lfs {oid} {size}")),
            Some(Entry::Regular { content }) => {
                h.update(b"blob ");
                h.update(content);
            }
            None => h.update(b"deleted"),
        }
        h.update([0]);
    }
    hex(&h.finalize()[..20])
}

/// Lower-case hex sha256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(at: i64) -> CommitInfo {
        CommitInfo {
            title: "t".into(),
            message: String::new(),
            author: "a".into(),
            date: OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    fn regular(text: &str) -> Option<Entry> {
        Some(Entry::Regular {
            content: Arc::from(text.as_bytes()),
        })
    }

    #[test]
    fn a_sha_gives_the_tree_as_of_that_commit() {
        let mut repo = Repo::empty(OffsetDateTime::UNIX_EPOCH);
        let first = repo
            .apply("o/r", "main", info(1), &[("a".into(), regular("1"))])
            .id
            .clone();
        let second = repo
            .apply(
                "o/r",
                "main",
                info(2),
                &[("a".into(), None), ("b".into(), regular("2"))],
            )
            .id
            .clone();
        assert_ne!(first, second);
        assert!(is_commit_id(&first) && is_commit_id(&second));
        let at_first: Vec<&String> = repo
            .resolve(&first)
            .map(|c| c.files.keys().collect())
            .unwrap_or_default();
        assert_eq!(at_first, ["a"]);
        let at_main: Vec<&String> = repo
            .resolve("main")
            .map(|c| c.files.keys().collect())
            .unwrap_or_default();
        assert_eq!(at_main, ["b"]);
        let history: Vec<&str> = repo
            .history("main")
            .unwrap_or_default()
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(history, [second.as_str(), first.as_str()]);
        assert!(
            repo.resolve("0000000000000000000000000000000000000000")
                .is_none()
        );
        assert!(repo.resolve("dev").is_none());
    }

    #[test]
    fn a_squash_keeps_the_tree_and_forgets_the_history() {
        let mut repo = Repo::empty(OffsetDateTime::UNIX_EPOCH);
        let first = repo
            .apply("o/r", "main", info(1), &[("a".into(), regular("1"))])
            .id
            .clone();
        let second = repo
            .apply("o/r", "main", info(2), &[("b".into(), regular("2"))])
            .id
            .clone();
        let tree = repo.resolve("main").map(|c| Arc::clone(&c.files));
        let squash = repo.prepare_squash("o/r", "main", info(3)).unwrap();
        assert!(squash.parent.is_none());
        assert!(is_commit_id(&squash.id));
        assert!(![first.as_str(), second.as_str()].contains(&squash.id.as_str()));
        let id = squash.id.clone();
        repo.replace_history("main", squash);
        assert_eq!(repo.resolve("main").map(|c| Arc::clone(&c.files)), tree);
        let history: Vec<&str> = repo
            .history("main")
            .unwrap_or_default()
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(history, [id.as_str()]);
        assert!(repo.resolve(&first).is_none() && repo.resolve(&second).is_none());
        assert!(repo.prepare_squash("o/r", "dev", info(4)).is_none());
    }

    #[test]
    fn two_repositories_never_share_a_first_commit_id() {
        let change = [(".gitattributes".to_owned(), regular("x"))];
        let a = Repo::empty(OffsetDateTime::UNIX_EPOCH)
            .apply("o/a", "main", info(1), &change)
            .id
            .clone();
        let b = Repo::empty(OffsetDateTime::UNIX_EPOCH)
            .apply("o/b", "main", info(1), &change)
            .id
            .clone();
        assert_ne!(a, b);
    }

    #[test]
    fn dates_are_written_with_milliseconds_in_utc() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_902_400_123_456_789)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(rfc3339_millis(at), "2025-12-05T02:40:00.123Z");
        let whole = OffsetDateTime::from_unix_timestamp(1_764_902_400)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(rfc3339_millis(whole), "2025-12-05T02:40:00.000Z");
    }
}
