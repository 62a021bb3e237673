//! `Committer`: the one writer per repository branch that every `HfSink`
//! pointing there shares.
//!
//! Sinks hand it [`ReadyFile`]s and wait for the answer. The first waiting
//! sink runs a *round* on behalf of everyone (no background task, so it
//! works on any runtime and under a paused clock): it waits until the
//! oldest pending file has waited the coalescing delay (less if `max_files`
//! are already pending), takes up to `max_files` files, prepares their
//! commit ([`attempt`](crate::attempt)), waits until the commit budget and
//! any rate-limit pause allow it, and sends it, retrying transient failures
//! from preupload so that files already there are skipped. The budget is
//! checked in one place, right before each commit request, and a 429's
//! pause is recorded in one place, where the round's failure is handled. A round the Hub
//! refuses as a bad request is split in halves, down to single files, so
//! that only the file it will never take is refused.
//!
//! **Invariants:** at most `budget` commit requests are sent in any
//! `budget_window` (default 100 per hour), counting requests that may have
//! been applied (a lost answer, a 5xx) as well as successes; over budget,
//! files queue. A file is answered exactly once: `Ok` once it is in a
//! commit on the branch (or was already there), `Err` otherwise — and a
//! round that is cancelled answers its files with a transient error.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use meathook_core::{Backoff, ErrorClass, SinkError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::attempt;
use crate::error::HfError;
use crate::hub::HubClient;
use crate::ready::{Answer, Delivered, ReadyFile};
use crate::repo::Target;

/// How the shared committer batches and paces commits.
#[derive(Debug, Clone)]
pub struct CommitSettings {
    /// Files per commit, at most (default 100; the Hub recommends 50–100).
    pub max_files: usize,
    /// Commit requests per `budget_window`, at most (default 100; the Hub
    /// allows about 128 per hour per repository).
    pub budget: usize,
    /// The budget's sliding window (default one hour).
    pub budget_window: Duration,
    /// How long a ready file waits for others to join its commit (default
    /// 2 s).
    pub coalesce: Duration,
    /// Attempts per round before the files are handed back (default 5).
    pub attempts: u32,
    /// Wait between attempts (default 1 s doubling to 8 s, jittered).
    pub backoff: Backoff,
}

impl Default for CommitSettings {
    fn default() -> Self {
        Self {
            max_files: 100,
            budget: 100,
            budget_window: Duration::from_secs(3600),
            coalesce: Duration::from_secs(2),
            attempts: 5,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(8)),
        }
    }
}

struct Pending {
    file: ReadyFile,
    since: Instant,
    tx: oneshot::Sender<Answer>,
}

#[derive(Default)]
pub(crate) struct State {
    pending: VecDeque<Pending>,
    /// When each commit request of the current window was sent.
    commits: VecDeque<Instant>,
    paused_until: Option<Instant>,
    /// Configs the card is known to declare; `None` until it is read.
    pub(crate) configs: Option<BTreeSet<String>>,
}

/// The shared committer of one repository branch; see the [module docs](self).
pub(crate) struct Committer {
    pub(crate) settings: CommitSettings,
    pub(crate) state: Mutex<State>,
    round: tokio::sync::Mutex<()>,
    /// Set once the start-up checks (whoami, create) passed; sinks opening
    /// at the same time wait for one run of them instead of each calling.
    pub(crate) started: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

static REGISTRY: LazyLock<Mutex<HashMap<Target, Weak<Committer>>>> =
    LazyLock::new(Default::default);

impl Committer {
    /// The committer of `target`, created with `settings` if no live sink
    /// shares one yet (the first sink's settings win).
    pub(crate) fn shared(target: &Target, settings: CommitSettings) -> Arc<Self> {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        registry.retain(|_, c| c.strong_count() > 0);
        if let Some(c) = registry.get(target).and_then(Weak::upgrade) {
            return c;
        }
        let c = Arc::new(Self {
            settings,
            state: Mutex::new(State::default()),
            round: tokio::sync::Mutex::new(()),
            started: tokio::sync::OnceCell::new(),
        });
        registry.insert(target.clone(), Arc::downgrade(&c));
        c
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `file` and waits until it is committed or refused.
    pub(crate) async fn submit(&self, hub: &HubClient, file: ReadyFile) -> Answer {
        let interrupted = HfError::Interrupted {
            repo: hub.repo(),
            path: file.path.clone(),
        };
        let (tx, mut rx) = oneshot::channel();
        self.state().pending.push_back(Pending {
            file,
            since: Instant::now(),
            tx,
        });
        loop {
            tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or(Err(interrupted)),
                guard = self.round.lock() => {
                    match rx.try_recv() {
                        Ok(answer) => return answer,
                        Err(oneshot::error::TryRecvError::Closed) => return Err(interrupted),
                        Err(oneshot::error::TryRecvError::Empty) => {}
                    }
                    self.run_round(hub).await;
                    drop(guard);
                }
            }
        }
    }

    /// Commits the oldest pending files in one commit, answering each.
    async fn run_round(&self, hub: &HubClient) {
        let coalesce_until = {
            let s = self.state();
            let Some(first) = s.pending.front() else {
                return;
            };
            (s.pending.len() < self.settings.max_files)
                .then_some(first.since + self.settings.coalesce)
        };
        if let Some(at) = coalesce_until {
            tokio::time::sleep_until(at).await;
        }
        let batch: Vec<Pending> = {
            let mut s = self.state();
            let n = s.pending.len().min(self.settings.max_files);
            s.pending.drain(..n).collect()
        };
        if batch.is_empty() {
            return;
        }
        let files: Vec<ReadyFile> = batch.iter().map(|p| p.file.clone()).collect();
        let answers = self.deliver(hub, &files).await;
        for (pending, answer) in batch.into_iter().zip(answers) {
            let _ = pending.tx.send(answer);
        }
    }

    /// Delivers `files`; one answer per file. A round the Hub refuses as a
    /// bad request (400, 413, 422, …) may be refusing one file for all:
    /// its halves are delivered apart, down to single files, so one file
    /// the Hub will never take does not take its neighbours down with it.
    fn deliver<'a>(
        &'a self,
        hub: &'a HubClient,
        files: &'a [ReadyFile],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Answer>> + Send + 'a>> {
        Box::pin(async move {
            let answers = self.deliver_round(hub, files).await;
            let refused = answers
                .iter()
                .all(|a| matches!(a, Err(HfError::Rejected { status, .. }) if *status != 0));
            if files.len() < 2 || !refused {
                return answers;
            }
            tracing::warn!(repo = %hub.repo(), files = files.len(), "the Hub refused the round: committing its halves apart");
            let (left, right) = files.split_at(files.len() / 2);
            let mut answers = self.deliver(hub, left).await;
            answers.extend(self.deliver(hub, right).await);
            answers
        })
    }

    /// Delivers `files` in one round, retrying transient failures; one
    /// answer per file.
    async fn deliver_round(&self, hub: &HubClient, files: &[ReadyFile]) -> Vec<Answer> {
        let mut backoff = self.settings.backoff.clone();
        let mut attempt = 1;
        loop {
            let error = match self.attempt(hub, files).await {
                Ok(answers) => return answers,
                Err(error) => error,
            };
            let last = attempt >= self.settings.attempts.max(1);
            if error.class() == ErrorClass::Permanent || last {
                tracing::warn!(repo = %hub.repo(), files = files.len(), %error, "commit round failed");
                return files.iter().map(|_| Err(error.clone())).collect();
            }
            let wait = match &error {
                HfError::StaleParent { .. } => Duration::ZERO,
                HfError::RateLimited { wait, .. } => {
                    self.state().paused_until = Some(Instant::now() + *wait);
                    *wait
                }
                _ => backoff.fail(),
            };
            tracing::info!(repo = %hub.repo(), attempt, %error, retry_in = ?wait, "retrying the commit round from preupload");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt at `files`: prepared up to the commit, then the commit
    /// request, sent once the budget and any pause allow it; one answer per
    /// file, or `Err` when the whole round must be retried or fails.
    async fn attempt(&self, hub: &HubClient, files: &[ReadyFile]) -> Result<Vec<Answer>, HfError> {
        let known = self.state().configs.clone();
        let mut round = attempt::prepare(hub, files, known).await?;
        if let Some(learned) = round.learned.take() {
            self.state().configs = Some(learned);
        }
        let Some(commit) = round.commit.take() else {
            return Ok(round.settle(|| Ok(Delivered::AlreadyThere)));
        };
        self.await_budget().await;
        self.note_commit();
        let done = hub.call("commit", commit).await?;
        if let Some(configs) = round.card_configs.take() {
            self.state().configs = Some(configs);
        }
        tracing::info!(repo = %hub.repo(), commit = %done.commit_oid, files = round.committing(), "committed");
        Ok(round.settle(|| Ok(Delivered::Committed(done.commit_oid.clone()))))
    }

    /// Waits until a commit request is allowed by the budget and any
    /// rate-limit pause.
    async fn await_budget(&self) {
        loop {
            let wait_until = {
                let mut s = self.state();
                let now = Instant::now();
                let window = self.settings.budget_window;
                while s.commits.front().is_some_and(|t| *t + window <= now) {
                    s.commits.pop_front();
                }
                let budget_at = (s.commits.len() >= self.settings.budget.max(1))
                    .then(|| s.commits.front().map(|t| *t + window))
                    .flatten();
                let paused = s.paused_until.filter(|t| *t > now);
                match (budget_at, paused) {
                    (None, None) => return,
                    (a, b) => a.max(b),
                }
            };
            if let Some(at) = wait_until {
                tracing::info!(wait = ?at.saturating_duration_since(Instant::now()), "commit budget or rate limit: queueing");
                tokio::time::sleep_until(at).await;
            }
        }
    }

    /// Records a commit request against the budget.
    fn note_commit(&self) {
        self.state().commits.push_back(Instant::now());
    }

    /// Files waiting for a commit.
    pub(crate) fn pending(&self) -> usize {
        self.state().pending.len()
    }
}
