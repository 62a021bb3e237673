//! One attempt at committing a round of files: preupload, LFS batch,
//! uploads, dataset card, commit.
//!
//! **Invariant:** an attempt starts from preupload, so a retry after any
//! failure — a timeout, a 5xx, a commit applied but answered 504, a 412 —
//! skips the files the branch already holds with our exact sha256 and
//! commits only the rest: no file is committed twice, none is dropped.

use std::collections::{BTreeSet, HashMap};

use crate::action::{Commit, CommitOp, Download, Preupload, PreuploadFile, RemoteFile};
use crate::card::{self, CARD_PATH};
use crate::committer::{Answer, Committer, Delivered, ReadyFile};
use crate::error::HfError;
use crate::hub::HubClient;

/// Runs one attempt; `Err` when the whole round must be retried or fails.
pub(crate) async fn run(
    c: &Committer,
    hub: &HubClient,
    files: &[ReadyFile],
) -> Result<Vec<Answer>, HfError> {
    let (head, remote) = preupload(hub, files).await?;
    let mut answers: Vec<Option<Answer>> = vec![None; files.len()];
    let mut to_upload = Vec::new();
    for (i, f) in files.iter().enumerate() {
        match remote.get(&f.path).and_then(|r| r.oid.as_deref()) {
            Some(oid) if oid == f.oid => answers[i] = Some(Ok(Delivered::AlreadyThere)),
            Some(other) => {
                tracing::warn!(path = %f.path, existing = other, ours = %f.oid, "replacing a file with different bytes at the same path");
                to_upload.push(i);
            }
            None => to_upload.push(i),
        }
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
    let card = card_update(c, hub, files).await?;
    let mut ops: Vec<CommitOp> = committing
        .iter()
        .map(|&i| CommitOp::LfsFile {
            path: files[i].path.clone(),
            oid: files[i].oid.clone(),
            size: files[i].size,
        })
        .collect();
    if let Some((text, _)) = &card {
        ops.push(CommitOp::File {
            path: CARD_PATH.to_owned(),
            content: text.clone().into_bytes(),
        });
    }
    if ops.is_empty() {
        return Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or(Ok(Delivered::AlreadyThere)))
            .collect());
    }
    c.await_budget().await;
    c.note_commit();
    let commit = Commit {
        target: hub.target.clone(),
        token: hub.token.clone(),
        summary: summary(files, &committing),
        parent: head,
        ops,
    };
    let done = match hub.call("commit", commit).await {
        Ok(done) => done,
        Err(e) => {
            if let HfError::RateLimited { wait, .. } = &e {
                c.pause(*wait);
            }
            return Err(e);
        }
    };
    if let Some((_, configs)) = card {
        c.state().configs = Some(configs);
    }
    tracing::info!(repo = %hub.repo(), commit = %done.commit_oid, files = committing.len(), "committed");
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Ok(Delivered::Committed(done.commit_oid.clone()))))
        .collect())
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

/// The new card text and its configs, when a pipeline of `files` lacks a
/// config. The card is read from the branch each time it may need a
/// change, so a card committed by an answer that was lost is seen.
async fn card_update(
    c: &Committer,
    hub: &HubClient,
    files: &[ReadyFile],
) -> Result<Option<(String, BTreeSet<String>)>, HfError> {
    let wanted: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.pipeline.clone(), f.glob.clone()))
        .collect();
    let known = c.state().configs.clone();
    if let Some(known) = &known
        && wanted
            .iter()
            .all(|(p, _)| known.contains(&card::config_name(p)))
    {
        return Ok(None);
    }
    let download = Download {
        target: hub.target.clone(),
        token: hub.token.clone(),
        path: CARD_PATH.to_owned(),
    };
    let existing = hub.call("reading the dataset card", download).await?;
    let existing = existing.map(|b| String::from_utf8_lossy(&b).into_owned());
    match card::merge(existing.as_deref(), &wanted) {
        None => {
            let declared = existing.as_deref().map(card::declared_configs);
            c.state().configs = Some(declared.unwrap_or_default().into_iter().collect());
            Ok(None)
        }
        Some(text) => {
            let configs = card::declared_configs(&text).into_iter().collect();
            Ok(Some((text, configs)))
        }
    }
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
