//! `Committer`: the one writer per repository branch that every `HfSink`
//! pointing there shares.
//!
//! Sinks hand it [`ReadyFile`]s and wait for the answer. The first waiting
//! sink runs a *round* on behalf of everyone (no background task, so it
//! works on any runtime and under a paused clock): it waits for the round's
//! slot, takes everything pending (up to `max_files`), prepares their
//! commit ([`attempt`](crate::attempt)), waits until the commit budget and
//! any rate-limit pause allow it, and sends it, retrying transient failures
//! from preupload so that files already there are skipped. The budget is
//! checked in one place, right before each commit request, and a 429's
//! pause is recorded in one place, where the round's failure is handled. A
//! round the Hub refuses as a bad request is split in halves, down to
//! single files, so that only the file it will never take is refused.
//!
//! **Pacing.** Commits are spread over the budget's window: a round starts
//! no sooner than one *slot* (`budget_window / budget`, 36 s at 100 an
//! hour) after the last commit request, and no sooner than the coalescing
//! delay after its oldest file arrived, and then takes everything queued.
//! Spending the budget greedily on one-file commits would leave later
//! windows waiting for the hour to roll over; paced, a file waits at most
//! about one slot while the budget can carry the load.
//!
//! **The budget is the repository's.** When the committer starts (the
//! first sink on a repository branch in this process, and again after
//! every sink there was dropped), it reads the branch's recent commits
//! from the Hub and counts those of the last `budget_window` as spent,
//! aged by the Hub's own clock (all but the repository's first commit,
//! which the Hub made when it created it). A restart, a crash loop, a rebuild of the
//! sinks, or another writer to the same branch therefore cannot push the
//! repository past the budget.
//!
//! **Invariants:** at most `budget` commit requests are sent in any
//! `budget_window` (default 100 per hour), counting requests that may have
//! been applied (a lost answer, a 5xx) as well as successes and the
//! branch's commits seen at start; over budget, files queue. A file is
//! answered exactly once: `Ok` once it is in a commit on the branch (or was
//! already there), `Err` otherwise — and a round that is cancelled answers
//! its files with a transient error.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use meathook_core::{Backoff, ErrorClass, SinkError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::action::ListCommits;
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
    /// allows about 128 per hour per repository, and the rest is headroom
    /// for other writers). Commits are paced one slot
    /// (`budget_window / budget`) apart.
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

    /// The pace of commits: the budget's window shared evenly.
    fn slot(&self) -> Duration {
        let budget = u32::try_from(self.settings.budget.max(1)).unwrap_or(u32::MAX);
        self.settings.budget_window / budget
    }

    /// Counts the branch's commits of the last `budget_window` as spent,
    /// aged by the Hub's clock (its `Date` header), reading pages of the
    /// branch's history until they are older than the window or fill the
    /// budget. A branch that does not exist yet has spent nothing.
    pub(crate) async fn seed_budget(&self, hub: &HubClient) -> Result<(), HfError> {
        /// Pages read at most (the Hub sends 50 commits a page).
        const MAX_PAGES: usize = 10;
        let (window, budget) = (self.settings.budget_window, self.settings.budget);
        let mut url = hub.target.commits_url();
        let mut ages = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = hub
                .call(
                    "reading the branch's recent commits",
                    ListCommits {
                        url,
                        token: hub.token.clone(),
                    },
                )
                .await?;
            if !page.listed {
                tracing::warn!(
                    repo = %hub.repo(),
                    "the endpoint does not list commits: the commit budget counts only this process's commits"
                );
                return Ok(());
            }
            let now = page.now.unwrap_or_else(time::OffsetDateTime::now_utc);
            let before = ages.len();
            let mut dates = page.dates.as_slice();
            if page.next.is_none() {
                // The last page ends with the repository's first commit,
                // which the Hub made when it created the repository.
                dates = dates.split_last().map_or(dates, |(_, rest)| rest);
            }
            // A date after the Hub's clock (sub-second rounding) is new.
            ages.extend(
                dates
                    .iter()
                    .map(|date| Duration::try_from(now - *date).unwrap_or(Duration::ZERO))
                    .take_while(|age| *age < window),
            );
            let exhausted = ages.len() - before < dates.len();
            match page.next {
                Some(next)
                    if !exhausted && ages.len() < budget && hub.target.same_origin(&next) =>
                {
                    url = next;
                }
                _ => break,
            }
        }
        // Only the newest `budget` matter: the oldest of them decides when
        // the next request may go.
        ages.truncate(budget);
        let now = Instant::now();
        let mut s = self.state();
        s.commits
            .extend(ages.iter().map(|age| now.checked_sub(*age).unwrap_or(now)));
        s.commits.make_contiguous().sort_unstable();
        if !ages.is_empty() {
            tracing::info!(
                repo = %hub.repo(),
                commits = ages.len(),
                budget,
                window = ?window,
                "counting the branch's recent commits against the commit budget"
            );
        }
        Ok(())
    }

    /// Commits the oldest pending files in one commit, answering each.
    async fn run_round(&self, hub: &HubClient) {
        let start_at = {
            let s = self.state();
            let Some(first) = s.pending.front() else {
                return;
            };
            let coalesced = (s.pending.len() < self.settings.max_files)
                .then_some(first.since + self.settings.coalesce);
            let slot = s.commits.back().map(|last| *last + self.slot());
            coalesced.max(slot)
        };
        if let Some(at) = start_at {
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

    /// Holds off every round until the guard is dropped: for a commit of
    /// another kind (a compaction's), prepared and sent while no round
    /// changes the branch.
    pub(crate) async fn hold_rounds(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.round.lock().await
    }

    /// Sends `commit` (under [`hold_rounds`](Self::hold_rounds)) as a round
    /// sends its own (see [`spend_commit`](Self::spend_commit)); the new
    /// head.
    pub(crate) async fn send_alone(
        &self,
        hub: &HubClient,
        commit: crate::action::Commit,
    ) -> Result<String, HfError> {
        self.spend_commit(async { hub.call("commit", commit).await.map(|done| done.commit_oid) })
            .await
    }

    /// Spends one commit request of the budget on `call`, a request that
    /// makes a commit of another kind (a super-squash), sent under
    /// [`hold_rounds`](Self::hold_rounds) as [`send_alone`](Self::send_alone)
    /// sends a commit: one slot after the last commit request, once the
    /// budget and any rate-limit pause allow. It counts whatever its
    /// outcome, as every commit request does, and a 429's pause holds
    /// every round back. `call` is not polled before then.
    pub(crate) async fn spend_commit<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, HfError>>,
    ) -> Result<T, HfError> {
        let slot = self.state().commits.back().map(|last| *last + self.slot());
        if let Some(at) = slot {
            tokio::time::sleep_until(at).await;
        }
        self.await_budget().await;
        self.note_commit();
        let outcome = call.await;
        if let Err(HfError::RateLimited { wait, .. }) = &outcome {
            self.state().paused_until = Some(Instant::now() + *wait);
        }
        outcome
    }

    /// Files waiting for a commit.
    pub(crate) fn pending(&self) -> usize {
        self.state().pending.len()
    }
}
