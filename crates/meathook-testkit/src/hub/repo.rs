//! One repository of the fake Hub: its commits, each holding the changes
//! it made to its parent's files, and its branches, each naming a commit.
//! The files of a commit are rebuilt from the nearest commit whose file
//! map is kept: every branch head, and every [`CHECKPOINT`]-th commit
//! from a root. So a long history costs memory by the changes it made,
//! not by its length times the size of the tree (a simulated year of
//! parts and compactions makes about a hundred thousand commits over
//! trees of tens of thousands of files).
//! A revision is a branch name or a full 40-hex commit id, as on the Hub.
//! A super-squash replaces a branch's history with one commit holding its
//! files; the commits no branch reaches any more are forgotten.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Deref;
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

/// Every how many commits from a root the file map is kept, so that
/// rebuilding the files of any commit applies fewer changes than this.
pub(crate) const CHECKPOINT: u64 = 256;

/// A commit: who, when, why, and what it changed in its parent's files
/// (a root's changes are its whole tree).
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub(crate) id: String,
    pub(crate) parent: Option<String>,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) author: String,
    pub(crate) date: OffsetDateTime,
    pub(crate) changes: Arc<[Change]>,
    /// Commits between it and its root; set when it is inserted.
    pub(crate) depth: u64,
}

impl Commit {
    /// The date as the Hub writes it: RFC 3339, UTC, milliseconds.
    pub(crate) fn date_text(&self) -> String {
        rfc3339_millis(self.date)
    }
}

/// A commit with its files.
#[derive(Debug)]
pub(crate) struct At<'a> {
    pub(crate) commit: &'a Commit,
    pub(crate) files: Arc<Files>,
}

impl Deref for At<'_> {
    type Target = Commit;

    fn deref(&self) -> &Commit {
        self.commit
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

/// A repository: commits by id, branches by name, and the kept file maps
/// (see the module's docs).
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) created: OffsetDateTime,
    pub(crate) branches: BTreeMap<String, String>,
    pub(crate) commits: HashMap<String, Commit>,
    trees: HashMap<String, Arc<Files>>,
}

/// The `.gitattributes` the Hub's initial commit of a dataset holds.
pub(crate) const GITATTRIBUTES: &[u8] = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n";

/// Makes `changes` in `files`.
fn change(files: &mut Files, changes: &[Change]) {
    for (path, entry) in changes {
        match entry {
            Some(e) => files.insert(path.clone(), e.clone()),
            None => files.remove(path),
        };
    }
}

impl Repo {
    /// A repository without commits or branches.
    pub(crate) fn empty(created: OffsetDateTime) -> Self {
        Self {
            created,
            branches: BTreeMap::new(),
            commits: HashMap::new(),
            trees: HashMap::new(),
        }
    }

    /// The commit a revision names (a branch, or a full commit id), with
    /// its files.
    pub(crate) fn resolve(&self, rev: &str) -> Option<At<'_>> {
        self.at(self.id_of(rev)?)
    }

    /// The commit a revision names, without its files.
    pub(crate) fn commit(&self, rev: &str) -> Option<&Commit> {
        self.commits.get(self.id_of(rev)?)
    }

    /// The id of the commit a revision names.
    fn id_of<'a>(&'a self, rev: &'a str) -> Option<&'a str> {
        match self.branches.get(rev) {
            Some(id) => Some(id),
            None if is_commit_id(rev) => Some(rev),
            None => None,
        }
    }

    /// The head of a branch (not a commit id: only branches move).
    pub(crate) fn head(&self, branch: &str) -> Option<At<'_>> {
        self.at(self.branches.get(branch)?)
    }

    fn at(&self, id: &str) -> Option<At<'_>> {
        Some(At {
            commit: self.commits.get(id)?,
            files: self.files(id)?,
        })
    }

    /// The files of commit `id`: kept, or rebuilt from the nearest kept
    /// ancestor (or the root) by applying the changes since.
    fn files(&self, id: &str) -> Option<Arc<Files>> {
        let mut since = Vec::new();
        let mut next = id;
        let base = loop {
            if let Some(kept) = self.trees.get(next) {
                break Some(Arc::clone(kept));
            }
            let commit = self.commits.get(next)?;
            since.push(commit);
            match commit.parent.as_deref() {
                Some(parent) => next = parent,
                None => break None,
            }
        };
        if since.is_empty() {
            return base;
        }
        let mut files = base.map(|b| Files::clone(&b)).unwrap_or_default();
        for commit in since.iter().rev() {
            change(&mut files, &commit.changes);
        }
        Some(Arc::new(files))
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
        let id = commit_id(repo, parent.as_deref(), &info, changes);
        Commit {
            id,
            parent,
            title: info.title,
            message: info.message,
            author: info.author,
            date: info.date,
            changes: Arc::from(changes),
            depth: 0,
        }
    }

    /// Adds `commit` (its parent, if any, must be here) and points
    /// `branch` at it. Its files are kept, as a head's are; the branch's
    /// old head gives its map up (without a copy) unless it is a
    /// checkpoint or another branch's head.
    pub(crate) fn insert(&mut self, branch: &str, mut commit: Commit) {
        let old = self.branches.insert(branch.to_owned(), commit.id.clone());
        let parent = commit.parent.as_deref().and_then(|p| self.commits.get(p));
        commit.depth = parent.map_or(0, |p| p.depth + 1);
        let mut files = match commit.parent.as_deref() {
            Some(p) if old.as_deref() == Some(p) && !self.kept_for_good(p) => self.trees.remove(p),
            _ => None,
        }
        .or_else(|| commit.parent.as_deref().and_then(|p| self.files(p)))
        .unwrap_or_default();
        change(Arc::make_mut(&mut files), &commit.changes);
        self.trees.insert(commit.id.clone(), files);
        if let Some(old) = old.filter(|o| !self.kept_for_good(o)) {
            self.trees.remove(&old);
        }
        self.commits.insert(commit.id.clone(), commit);
    }

    /// Whether commit `id`'s file map stays kept: a checkpoint, or the
    /// head of a branch.
    fn kept_for_good(&self, id: &str) -> bool {
        self.commits
            .get(id)
            .is_some_and(|c| c.depth % CHECKPOINT == 0)
            || self.branches.values().any(|head| head == id)
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
        let files = self.head(branch)?.files;
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
            changes: Arc::from(tree),
            depth: 0,
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
        self.trees.retain(|id, _| reached.contains(id));
    }

    /// The commits reachable from `rev`, newest first.
    pub(crate) fn history(&self, rev: &str) -> Option<Vec<&Commit>> {
        let mut out = vec![self.commit(rev)?];
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
        let at_first: Vec<String> = repo
            .resolve(&first)
            .map(|c| c.files.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(at_first, ["a"]);
        let at_main: Vec<String> = repo
            .resolve("main")
            .map(|c| c.files.keys().cloned().collect())
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
    fn every_commit_of_a_long_history_gives_its_own_tree_from_few_kept_maps() {
        let mut repo = Repo::empty(OffsetDateTime::UNIX_EPOCH);
        let (mut naive, mut dev) = (Files::new(), Files::new());
        let mut seen: Vec<(String, Files)> = Vec::new();
        let n = 5 * CHECKPOINT + 7;
        for i in 0..n {
            // Each commit adds a file, replaces one and deletes another.
            let mut changes = vec![(format!("f{i}"), regular(&format!("{i}")))];
            if i % 3 == 0 {
                changes.push((format!("f{}", i / 2), regular("again")));
            }
            if i % 5 == 4 {
                changes.push((format!("f{}", i - 3), None));
            }
            // Every 11th goes to a branch of its own history.
            let (branch, files) = if i % 11 == 10 {
                ("dev", &mut dev)
            } else {
                ("main", &mut naive)
            };
            change(files, &changes);
            let id = repo
                .apply("o/r", branch, info(i as i64), &changes)
                .id
                .clone();
            seen.push((id, files.clone()));
        }
        for (id, files) in &seen {
            let at = repo.resolve(id).unwrap();
            assert_eq!(*at.files, *files, "commit {id}");
        }
        assert_eq!(*repo.resolve("main").unwrap().files, naive);
        assert_eq!(*repo.resolve("dev").unwrap().files, dev);
        // Kept: a checkpoint every CHECKPOINT commits of a chain, and the heads.
        assert!(
            repo.trees.len() as u64 <= n / CHECKPOINT + 3,
            "{} maps kept for {n} commits",
            repo.trees.len()
        );
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
