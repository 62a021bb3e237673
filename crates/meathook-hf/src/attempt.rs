//! One attempt at committing a round of files, prepared up to its commit:
//! preupload, LFS batch, uploads, dataset card. What is left is one commit
//! request ([`Round::commit`]), which the committer sends when its budget
//! allows; this module knows nothing of the committer or its budget.
//!
//! **Invariants:** an attempt starts from preupload, so a retry after any
//! failure — a timeout, a 5xx, a commit applied but answered 504, a 412 —
//! skips the files the branch already holds with our exact sha256 and
//! commits only the rest: no file is committed twice, none is dropped.
//! A file is never replaced: a path the branch holds with other bytes is a
//! permanent [`HfError::Conflict`] for that file alone, and the rest of
//! the round is committed (the commit names the head preupload saw, so a
//! file that appears in between sends the round back to preupload with a
//! 412 rather than being overwritten). Two files of one round at the same
//! path are one file if their bytes agree and a conflict if not. A path
//! the repository's `.gitignore` excludes is refused
//! ([`HfError::Ignored`]), never reported as committed.

use std::collections::{BTreeSet, HashMap};

use meathook_files::card::{self, CARD_PATH};
use meathook_files::coverage::{COVERAGE_FILE, Coverage, MAX_COVERAGE_BYTES, may_be_compacted};

use crate::action::{Commit, CommitOp, Download, MAX_INLINE, Preupload, PreuploadFile, RemoteFile};
use crate::error::HfError;
use crate::hub::{CARD_LIMIT, HubClient};
use crate::ready::{Answer, Delivered, ReadyFile};

/// A round prepared up to its commit: the files the branch already has or
/// refuses are answered, the rest uploaded; what is left is one commit
/// request, if any, which the committer sends once the budget allows.
#[derive(Debug)]
pub(crate) struct Round {
    answers: Vec<Option<Answer>>,
    /// Later files of a path in the round that share the first one's bytes,
    /// and that first file.
    same_as: Vec<(usize, usize)>,
    /// The files the commit adds.
    committing: usize,
    /// The commit to send; `None` when the branch needs nothing.
    pub(crate) commit: Option<Commit>,
    /// The configs the card declares once the commit lands.
    pub(crate) card_configs: Option<BTreeSet<String>>,
    /// Configs learned without a commit (the card read as it is, or left
    /// as it is): to be remembered at once.
    pub(crate) learned: Option<BTreeSet<String>>,
}

impl Round {
    /// How many data files the commit adds.
    pub(crate) fn committing(&self) -> usize {
        self.committing
    }

    /// Every file's answer, the files without one of their own answered
    /// with `rest` (the commit that carried them, or "already there" when
    /// nothing was committed).
    pub(crate) fn settle(self, rest: impl Fn() -> Answer) -> Vec<Answer> {
        settle(self.answers, &self.same_as, rest)
    }
}

/// Prepares one attempt: preupload, LFS batch, uploads, dataset card;
/// `known` are the configs the card is known to declare. `Err` when the
/// whole round must be retried or fails.
pub(crate) async fn prepare(
    hub: &HubClient,
    files: &[ReadyFile],
    known: Option<BTreeSet<String>>,
) -> Result<Round, HfError> {
    let (head, remote) = preupload(hub, files).await?;
    let mut answers: Vec<Option<Answer>> = vec![None; files.len()];
    let mut to_upload = Vec::new();
    // The first file of each path in the round speaks for the path; a later
    // one with the same bytes shares its answer.
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    let mut same_as: Vec<(usize, usize)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if let Some(&j) = first_at.get(f.path.as_str()) {
            if files[j].oid == f.oid {
                same_as.push((i, j));
            } else {
                answers[i] = Some(Err(conflict(hub, f, &files[j].oid)));
            }
            continue;
        }
        first_at.insert(&f.path, i);
        let there = remote.get(&f.path);
        if there.is_some_and(|r| r.should_ignore) {
            answers[i] = Some(Err(HfError::Ignored {
                repo: hub.repo(),
                branch: hub.target.branch.clone(),
                path: f.path.clone(),
            }));
            continue;
        }
        match there.and_then(|r| r.oid.as_deref()) {
            Some(oid) if oid.eq_ignore_ascii_case(&f.oid) => {
                answers[i] = Some(Ok(Delivered::AlreadyThere));
            }
            Some(other) => {
                tracing::warn!(repo = %hub.repo(), path = %f.path, existing = other, ours = %f.oid, "the path holds other bytes: refusing the window, never replacing the file");
                answers[i] = Some(Err(conflict(hub, f, other)));
            }
            None => to_upload.push(i),
        }
    }
    // A part missing from the branch may have been compacted since it was
    // first committed: its folder's record then says so, and a replay is
    // not committed again beside the compacted file.
    if !to_upload.is_empty() {
        let records = compaction_records(hub, to_upload.iter().map(|&i| &files[i])).await?;
        to_upload.retain(|&i| {
            let f = &files[i];
            let covered = f
                .path
                .rsplit_once('/')
                .and_then(|(folder, name)| records.get(folder)?.part(name));
            let Some(part) = covered else {
                return true;
            };
            answers[i] = Some(if part.sha256.eq_ignore_ascii_case(&f.oid) {
                Ok(Delivered::AlreadyThere)
            } else {
                Err(conflict(hub, f, &part.sha256))
            });
            false
        });
    }
    if !to_upload.is_empty() {
        let mut objects: Vec<(String, u64)> = to_upload
            .iter()
            .map(|&i| (files[i].oid.clone(), files[i].size))
            .collect();
        objects.sort();
        objects.dedup();
        let answered = hub.batch(objects).await?;
        let by_oid: HashMap<&str, _> = answered.iter().map(|o| (o.oid.as_str(), o)).collect();
        for &i in &to_upload {
            let f = &files[i];
            let Some(object) = by_oid.get(f.oid.as_str()) else {
                return Err(HfError::Decode {
                    repo: hub.repo(),
                    call: "LFS batch",
                    reason: format!("no answer for {} ({})", f.path, f.oid),
                });
            };
            match hub.upload(object, &f.local, f.size, &f.path).await {
                Ok(()) => {}
                Err(e @ HfError::Object { .. }) => answers[i] = Some(Err(e)),
                Err(e) => return Err(e),
            }
        }
    }
    let committing: Vec<usize> = to_upload
        .into_iter()
        .filter(|&i| answers[i].is_none())
        .collect();
    // Configs only for files that land (or are there already), not for
    // refused ones.
    let landing: Vec<ReadyFile> = files
        .iter()
        .zip(&answers)
        .filter(|(_, a)| !matches!(a, Some(Err(_))))
        .map(|(f, _)| f.clone())
        .collect();
    let card = card_update(hub, &landing, known).await?;
    let mut ops: Vec<CommitOp> = committing
        .iter()
        .map(|&i| CommitOp::LfsFile {
            path: files[i].path.clone(),
            oid: files[i].oid.clone(),
            size: files[i].size,
        })
        .collect();
    let (card_configs, learned) = match card {
        CardUpdate::Commit(text, configs) => {
            ops.push(CommitOp::File {
                path: CARD_PATH.to_owned(),
                content: text.into_bytes(),
            });
            (Some(configs), None)
        }
        CardUpdate::Learned(configs) => (None, Some(configs)),
        CardUpdate::Known => (None, None),
    };
    let commit = (!ops.is_empty()).then(|| Commit {
        target: hub.target.clone(),
        token: hub.token.clone(),
        summary: summary(files, &committing),
        parent: head,
        ops,
    });
    Ok(Round {
        answers,
        same_as,
        committing: committing.len(),
        commit,
        card_configs,
        learned,
    })
}

/// Every file's answer: its own, the one of the file it shares a path and
/// bytes with, or `rest`.
fn settle(
    answers: Vec<Option<Answer>>,
    same_as: &[(usize, usize)],
    rest: impl Fn() -> Answer,
) -> Vec<Answer> {
    let mut answers: Vec<Answer> = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(&rest))
        .collect();
    for &(later, first) in same_as {
        answers[later] = answers[first].clone();
    }
    answers
}

fn conflict(hub: &HubClient, f: &ReadyFile, existing: &str) -> HfError {
    HfError::Conflict {
        repo: hub.repo(),
        branch: hub.target.branch.clone(),
        path: f.path.clone(),
        existing: crate::action::snippet(existing.as_bytes()),
        ours: f.oid.clone(),
    }
}

/// The compaction records of the folders of `files` that compaction may
/// have reached: day folders of days that have ended (compaction never
/// takes a day before it ends), and folders whose name is not a date.
async fn compaction_records<'a>(
    hub: &HubClient,
    files: impl Iterator<Item = &'a ReadyFile>,
) -> Result<HashMap<String, Coverage>, HfError> {
    let folders: BTreeSet<&str> = files
        .filter_map(|f| f.path.rsplit_once('/').map(|(folder, _)| folder))
        .filter(|folder| may_be_compacted(folder.rsplit('/').next().unwrap_or(folder)))
        .collect();
    let mut records = HashMap::new();
    for folder in folders {
        let path = format!("{folder}/{COVERAGE_FILE}");
        let limit = usize::try_from(MAX_COVERAGE_BYTES).unwrap_or(usize::MAX);
        let Some(bytes) = hub
            .download("reading a day's compaction record", &path, limit)
            .await?
        else {
            continue;
        };
        let record = Coverage::from_json(&bytes).map_err(|e| HfError::Decode {
            repo: hub.repo(),
            call: "reading a day's compaction record",
            reason: format!("{path}: {e}; a part is not committed beside a compacted file whose record cannot be read"),
        })?;
        records.insert(folder.to_owned(), record);
    }
    Ok(records)
}

/// Preuploads every path; returns the head and each path's status.
async fn preupload(
    hub: &HubClient,
    files: &[ReadyFile],
) -> Result<(Option<String>, HashMap<String, RemoteFile>), HfError> {
    let mut head = None;
    let mut remote = HashMap::new();
    for chunk in files.chunks(crate::action::MAX_PATHS) {
        let action = Preupload {
            target: hub.target.clone(),
            token: hub.token.clone(),
            files: chunk
                .iter()
                .map(|f| PreuploadFile {
                    path: f.path.clone(),
                    size: f.size,
                    sample: f.sample.clone(),
                })
                .collect(),
        };
        let answer = hub.call("preupload", action).await?;
        head = answer.commit_oid.or(head);
        remote.extend(answer.files.into_iter().map(|r| (r.path.clone(), r)));
    }
    Ok((head, remote))
}

/// What the card needs.
enum CardUpdate {
    /// Nothing: it declares every pipeline of the round, as far as known.
    Known,
    /// Nothing committed, but its configs are now known (read from the
    /// branch, or given up on for this process).
    Learned(BTreeSet<String>),
    /// This text, declaring these configs, goes into the commit.
    Commit(String, BTreeSet<String>),
}

/// What the card needs for the pipelines of `files`, given the configs
/// `known` to be declared. The card is read from the branch each time it
/// may need a change, so a card committed by an answer that was lost is
/// seen.
async fn card_update(
    hub: &HubClient,
    files: &[ReadyFile],
    known: Option<BTreeSet<String>>,
) -> Result<CardUpdate, HfError> {
    let wanted: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.pipeline.clone(), f.glob.clone()))
        .collect();
    if wanted.is_empty() {
        return Ok(CardUpdate::Known);
    }
    if let Some(known) = &known
        && wanted
            .iter()
            .all(|(p, _)| known.contains(&card::config_name(p)))
    {
        return Ok(CardUpdate::Known);
    }
    let download = Download {
        target: hub.target.clone(),
        token: hub.token.clone(),
        path: CARD_PATH.to_owned(),
    };
    let read = hub
        .send(
            "reading the dataset card",
            download,
            hub.request_timeout,
            CARD_LIMIT,
        )
        .await;
    let existing = match read {
        Ok(existing) => existing.map(|b| String::from_utf8_lossy(&b).into_owned()),
        // A card too large to commit back inline is left as it is: the
        // data files matter more than their configs.
        Err(HfError::TooLarge { .. }) => {
            return Ok(leave_card(hub, known, &wanted, "it is larger than 10 MiB"));
        }
        Err(e) => return Err(e),
    };
    Ok(match card::merge(existing.as_deref(), &wanted) {
        None => {
            let declared = existing.as_deref().map(card::declared_configs);
            CardUpdate::Learned(declared.unwrap_or_default().into_iter().collect())
        }
        Some(text) if text.len() >= MAX_INLINE || text.contains('\0') => leave_card(
            hub,
            known,
            &wanted,
            "with the configs added it could not be committed inline (10 MiB of text at most)",
        ),
        Some(text) => {
            let configs = card::declared_configs(&text).into_iter().collect();
            CardUpdate::Commit(text, configs)
        }
    })
}

/// Gives up adding `wanted`'s configs to the card for this process, with
/// a warning saying why: they count as known from now on.
fn leave_card(
    hub: &HubClient,
    known: Option<BTreeSet<String>>,
    wanted: &[(String, String)],
    why: &str,
) -> CardUpdate {
    tracing::warn!(repo = %hub.repo(), "the dataset card is left without configs for these pipelines, because {why}; add them by hand");
    let mut known = known.unwrap_or_default();
    known.extend(wanted.iter().map(|(p, _)| card::config_name(p)));
    CardUpdate::Learned(known)
}

fn summary(files: &[ReadyFile], committing: &[usize]) -> String {
    let pipelines: BTreeSet<&str> = committing
        .iter()
        .map(|&i| files[i].pipeline.as_str())
        .collect();
    let names: Vec<&str> = pipelines.into_iter().collect();
    let n = committing.len();
    let windows = if n == 1 { "window" } else { "windows" };
    if n == 0 {
        "meathook: dataset card".to_owned()
    } else {
        format!("meathook: {n} {windows} of {}", names.join(", "))
    }
}
