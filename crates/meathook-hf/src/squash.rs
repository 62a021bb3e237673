//! The history squash of a dataset's branch on the Hub (the Hub's
//! "super-squash"), by hand: [`HubCompactor::squash_history`].
//!
//! **Invariant:** nothing in this crate squashes on its own; a squash is a
//! commit request like any other for the branch's committer (held apart
//! from the sinks' rounds, paced, counted against the commit budget).

use crate::action::SuperSquash;
use crate::compact::HubCompactor;
use crate::error::HfError;

impl HubCompactor {
    /// Squashes the history of the branch on the Hub into one new commit
    /// holding the files the branch holds, and returns that commit's id.
    ///
    /// **Opt-in and irreversible.** Nothing calls it but you. The Hub's
    /// docs suggest it when a repository's history grows long (its pages
    /// slow down after a few thousand commits) and warn that it cannot be
    /// undone.
    ///
    /// **What it discards:** every earlier commit of the branch, for good:
    /// their ids, their diffs, and the ability to download a file as it
    /// was at one of them (the Hub removes the LFS file history; the
    /// storage this frees shows in the account's quota within 36 hours,
    /// its docs say). Readers pinned to an old revision (a commit id given
    /// as `revision`, a cached snapshot of one, a catalog entry's commit)
    /// break: that id no longer resolves.
    ///
    /// **What it keeps:** every file at the branch's head, byte for byte,
    /// at the same path. The squash is of this branch alone: pull-request
    /// refs keep their history, and the branch can no longer be merged
    /// into another branch (their histories have diverged).
    ///
    /// **The commit budget:** it makes a commit, so it is paced and counted
    /// like one. While it waits and runs, the sinks' rounds on this branch
    /// are held back (their files queue and go in the next round, on top
    /// of the new commit); it waits one slot after the last commit request
    /// and until the budget and any rate-limit pause allow, and spends one
    /// commit of the budget. A committer started after it (a restart,
    /// another process) seeds its budget from the branch's history, in
    /// which the commits it folded in no longer show.
    ///
    /// An empty `message` becomes `meathook: squash the history of
    /// {branch}`.
    ///
    /// # Errors
    ///
    /// The [`HfError`] of the call, classified as every call's is: a
    /// refused or read-only token, a missing repository or branch are
    /// permanent; 5xx, 429, timeouts and resets transient. It is not
    /// retried here. A transient error may follow a squash the Hub applied
    /// (its answer lost): squashing again folds one commit into one, which
    /// changes no file but spends another commit of the budget.
    pub async fn squash_history(&mut self, message: &str) -> Result<String, HfError> {
        let hub = &self.hub;
        let branch = hub.target.branch.clone();
        let message = if message.trim().is_empty() {
            format!("meathook: squash the history of {branch}")
        } else {
            message.to_owned()
        };
        let squash = SuperSquash {
            target: hub.target.clone(),
            token: hub.token.clone(),
            message,
        };
        let _rounds = self.committer.hold_rounds().await;
        let id = self
            .committer
            .spend_commit(async {
                tracing::warn!(
                    repo = %hub.repo(),
                    %branch,
                    "SQUASHING THE HISTORY of the branch on the Hub, irreversibly: every earlier \
                     commit of it is discarded, with its id, its diff and the ability to download \
                     files as they were at it; readers pinned to an old commit id break. The files \
                     at the head are kept, in one new commit. Pull-request refs keep their history."
                );
                hub.call("super-squash", squash).await
            })
            .await?;
        tracing::info!(repo = %hub.repo(), %branch, commit = %id, "squashed the branch's history into one commit");
        Ok(id)
    }
}
