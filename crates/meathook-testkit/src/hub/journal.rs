//! The fake Hub's repositories on disk, for a server started with a data
//! directory: `objects/{sha256}` holds every LFS object and every regular
//! file's bytes (content-addressed, written to a temporary name, fsynced,
//! renamed, the directory fsynced), and `repos.jsonl` one line per event
//! (a repository created or deleted, a commit with its changes, a
//! super-squash of a branch), appended
//! and fdatasynced before the answer goes out. On start the lines are
//! replayed; a torn last line (a crash mid-append) is ignored.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::repo::{Change, Commit, CommitInfo, Entry, Repo, sha256_hex};

/// The append-only log of a data directory.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    log: File,
}

/// What a data directory held.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) repos: HashMap<String, Repo>,
    /// Stored objects and their sizes.
    pub(crate) stored: HashMap<String, u64>,
}

fn objects(dir: &Path) -> PathBuf {
    dir.join("objects")
}

/// Writes `bytes` to `path` so that it survives a crash: a temporary
/// name, fsync, rename, directory fsync.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn date_text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn parse_date(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

impl Journal {
    /// Opens (creating) the data directory and replays its log.
    pub(crate) fn open(dir: &Path) -> io::Result<(Self, Loaded)> {
        std::fs::create_dir_all(objects(dir))?;
        let path = dir.join("repos.jsonl");
        let mut loaded = Loaded::default();
        for entry in std::fs::read_dir(objects(dir))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && entry.file_type()?.is_file() {
                loaded.stored.insert(name, entry.metadata()?.len());
            }
        }
        if path.exists() {
            let lines: Vec<String> = io::BufReader::new(File::open(&path)?)
                .lines()
                .collect::<Result<_, _>>()?;
            let last = lines.len().saturating_sub(1);
            for (i, line) in lines.iter().enumerate() {
                match serde_json::from_str::<Value>(line) {
                    Ok(event) => replay(dir, &mut loaded.repos, &event).map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: line {}: {e}", path.display(), i + 1))
                    })?,
                    Err(_) if i == last => {} // torn by a crash mid-append
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: line {}: {e}", path.display(), i + 1),
                        ));
                    }
                }
            }
        }
        let log = OpenOptions::new().create(true).append(true).open(&path)?;
        File::open(dir)?.sync_all()?;
        let journal = Self {
            dir: dir.to_owned(),
            log,
        };
        Ok((journal, loaded))
    }

    /// The stored object `oid`.
    pub(crate) fn object(&self, oid: &str) -> Option<Vec<u8>> {
        std::fs::read(objects(&self.dir).join(oid)).ok()
    }

    /// Stores an object durably.
    pub(crate) fn store_object(&self, oid: &str, bytes: &[u8]) -> io::Result<()> {
        write_durably(&objects(&self.dir).join(oid), bytes)
    }

    fn append(&mut self, event: &Value) -> io::Result<()> {
        let mut line = event.to_string();
        line.push('\n');
        self.log.write_all(line.as_bytes())?;
        self.log.sync_data()
    }

    /// Records a new, empty repository.
    pub(crate) fn created(&mut self, repo: &str, at: OffsetDateTime) -> io::Result<()> {
        self.append(&json!({"event": "create", "repo": repo, "date": date_text(at)}))
    }

    /// Records the deletion of a repository.
    pub(crate) fn deleted(&mut self, repo: &str) -> io::Result<()> {
        self.append(&json!({"event": "delete", "repo": repo}))
    }

    /// Records a commit: regular files' bytes go to `objects/` first.
    pub(crate) fn committed(
        &mut self,
        repo: &str,
        branch: &str,
        commit: &Commit,
    ) -> io::Result<()> {
        let mut out = Vec::with_capacity(commit.changes.len());
        for (path, entry) in commit.changes.iter() {
            out.push(match entry {
                Some(Entry::Lfs { oid, size }) => json!({"path": path, "lfs": oid, "size": size}),
                Some(Entry::Regular { content }) => {
                    let oid = sha256_hex(content);
                    let at = objects(&self.dir).join(&oid);
                    if !at.exists() {
                        write_durably(&at, content)?;
                    }
                    json!({"path": path, "regular": oid})
                }
                None => json!({"path": path, "deleted": true}),
            });
        }
        self.append(&json!({
            "event": "commit", "repo": repo, "branch": branch, "id": commit.id,
            "parent": commit.parent, "title": commit.title, "message": commit.message,
            "author": commit.author, "date": date_text(commit.date), "changes": out,
        }))
    }

    /// Records a super-squash of `branch`: its history replaced by
    /// `commit`, which holds the files the branch's head held (replayed
    /// from that head, so no file is written again).
    pub(crate) fn squashed(&mut self, repo: &str, branch: &str, commit: &Commit) -> io::Result<()> {
        self.append(&json!({
            "event": "squash", "repo": repo, "branch": branch, "id": commit.id,
            "title": commit.title, "message": commit.message,
            "author": commit.author, "date": date_text(commit.date),
        }))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn text(event: &Value, key: &str) -> String {
    event[key].as_str().unwrap_or_default().to_owned()
}

/// What a recorded commit or squash said about itself.
fn info(event: &Value) -> io::Result<CommitInfo> {
    Ok(CommitInfo {
        title: text(event, "title"),
        message: text(event, "message"),
        author: text(event, "author"),
        date: parse_date(&event["date"]).ok_or_else(|| invalid("bad date"))?,
    })
}

fn replay(dir: &Path, repos: &mut HashMap<String, Repo>, event: &Value) -> io::Result<()> {
    let repo = event["repo"].as_str().ok_or_else(|| invalid("no repo"))?;
    match event["event"].as_str() {
        Some("create") => {
            let date = parse_date(&event["date"]).ok_or_else(|| invalid("bad date"))?;
            repos.insert(repo.to_owned(), Repo::empty(date));
        }
        Some("delete") => {
            repos.remove(repo);
        }
        Some("commit") => {
            let r = repos
                .get_mut(repo)
                .ok_or_else(|| invalid("commit to an unknown repo"))?;
            let mut changes: Vec<Change> = Vec::new();
            for c in event["changes"].as_array().into_iter().flatten() {
                let path = c["path"]
                    .as_str()
                    .ok_or_else(|| invalid("no path"))?
                    .to_owned();
                let entry = if let Some(oid) = c["lfs"].as_str() {
                    let size = c["size"].as_u64().ok_or_else(|| invalid("no size"))?;
                    Some(Entry::Lfs {
                        oid: oid.to_owned(),
                        size,
                    })
                } else if let Some(oid) = c["regular"].as_str() {
                    let content = std::fs::read(objects(dir).join(oid))?;
                    Some(Entry::Regular {
                        content: Arc::from(content),
                    })
                } else {
                    None
                };
                changes.push((path, entry));
            }
            let branch = event["branch"]
                .as_str()
                .ok_or_else(|| invalid("no branch"))?;
            let mut commit = r.prepare(repo, branch, info(event)?, &changes);
            commit.id = text(event, "id");
            commit.parent = event["parent"].as_str().map(str::to_owned);
            r.insert(branch, commit);
        }
        Some("squash") => {
            let r = repos
                .get_mut(repo)
                .ok_or_else(|| invalid("squash of an unknown repo"))?;
            let branch = event["branch"]
                .as_str()
                .ok_or_else(|| invalid("no branch"))?;
            let mut commit = r
                .prepare_squash(repo, branch, info(event)?)
                .ok_or_else(|| invalid("squash of an unknown branch"))?;
            commit.id = text(event, "id");
            r.replace_history(branch, commit);
        }
        _ => return Err(invalid("unknown event")),
    }
    Ok(())
}
