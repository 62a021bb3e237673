//! `Pipeline`: one collector, one sink stack, one schedule.
//!
//! Every tick the pipeline polls its collector (unless backpressure says
//! wait), stamps the batch with the one-second window of its collection time,
//! drops keys accepted within the dedupe horizon, offers what it holds to the
//! sink stack in order, and advances the stack's time so windows close even
//! when polls return nothing. A batch the stack refuses stays here and is
//! offered again first on the next tick: backpressure never drops a record
//! that was collected. Collector errors and timeouts are counted and logged,
//! never fatal. The drain at the stop cuts every call to the stack off at the
//! drain deadline, so a stack that never answers cannot hang it; a batch in
//! the stack's hands at the deadline counts as not drained.
//!
//! **Tracing.** A pipeline runs in a `pipeline` span (field `pipeline`, its
//! name) and each tick in a `tick` span (field `tick`, counted from 1), so
//! a collector's own spans and events nest under them; every warning and
//! error carries its whole cause chain ([`ErrorChain`]). When it stops, a
//! pipeline logs what it did at INFO: polls, failed polls, records
//! collected and accepted by its stack, and records left undrained.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use meathook_core::{
    Clock, Collector, Drain, ErrorChain, Sink, StackStats, SystemClock, WindowMeta,
};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument as _;

use crate::budget::{Backpressure, Share};
use crate::dedupe::{KeyHash, Seen, hash_key};
use crate::error::PipelineError;
use crate::journal::KeyJournal;
use crate::metrics::Telemetry;
use crate::pipeline_metrics::PipelineMetrics;
use crate::trial::{Trial, TrialError};

type KeyFn<R> = Box<dyn Fn(&R) -> KeyHash + Send>;

/// A collector polled on an interval into a sink stack.
pub struct Pipeline<C: Collector, S> {
    collector: C,
    sink: S,
    interval: Duration,
    jitter: Duration,
    collect_timeout: Duration,
    key_fn: Option<KeyFn<C::Record>>,
    horizon: Duration,
    dedupe_file: Option<std::path::PathBuf>,
    memory_limit: u64,
    drain_deadline: Duration,
    clock: Arc<dyn Clock>,
}

impl<C: Collector, S> std::fmt::Debug for Pipeline<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.collector.name())
            .field("interval", &self.interval)
            .field("jitter", &self.jitter)
            .field("collect_timeout", &self.collect_timeout)
            .field("dedupe", &self.key_fn.is_some())
            .field("horizon", &self.horizon)
            .field("memory_limit", &self.memory_limit)
            .field("drain_deadline", &self.drain_deadline)
            .finish_non_exhaustive()
    }
}

/// A batch collected but not yet accepted by the stack, with its records'
/// dedupe keys.
struct Held<R> {
    window: WindowMeta,
    records: Vec<R>,
    keys: Vec<KeyHash>,
}

/// What the supervisor hands a running pipeline.
pub(crate) struct Ctx {
    pub(crate) stop: watch::Receiver<Option<Drain>>,
    pub(crate) metrics: PipelineMetrics,
    pub(crate) share: Option<Share>,
    pub(crate) backpressure: Backpressure,
    pub(crate) drain_deadline: Duration,
}

impl<C, S> Pipeline<C, S>
where
    C: Collector,
    S: Sink<C::Record>,
{
    /// Polls `collector` every `interval` into `sink`.
    ///
    /// Defaults: no jitter, a collect timeout equal to the interval (at least
    /// one second), no dedupe, a 64 MiB memory limit, the system clock.
    pub fn new(collector: C, sink: S, interval: Duration) -> Self {
        Self {
            collector,
            sink,
            interval,
            jitter: Duration::ZERO,
            collect_timeout: interval.max(Duration::from_secs(1)),
            key_fn: None,
            horizon: Duration::from_secs(24 * 3600),
            dedupe_file: None,
            memory_limit: 64 << 20,
            drain_deadline: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }

    /// Drops records whose key was accepted within the dedupe horizon
    /// (default 24 hours). A key is remembered only after the sink stack
    /// accepted its record.
    pub fn with_key_fn<K, F>(mut self, key: F) -> Self
    where
        K: Hash,
        F: Fn(&C::Record) -> K + Send + 'static,
    {
        self.key_fn = Some(Box::new(move |r| hash_key(&key(r))));
        self
    }

    /// Keeps the dedupe memory in a journal at `path`, so a restarted
    /// pipeline does not store again a reading the API still serves (see the
    /// journal's format and its one-fsync window in the crate docs of
    /// `meathook-runtime`). Without it, dedupe starts empty after a restart.
    pub fn with_dedupe_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.dedupe_file = Some(path.into());
        self
    }

    /// How long accepted keys are remembered.
    pub fn with_dedupe_horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon;
        self
    }

    /// Delays each poll by a random amount below `jitter`, so that many
    /// pipelines on one interval do not poll in step.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Gives up on a poll after `timeout` (counted as a `timeout` error).
    pub fn with_collect_timeout(mut self, timeout: Duration) -> Self {
        self.collect_timeout = timeout;
        self
    }

    /// The most memory this pipeline and its stack may hold before polling
    /// pauses (see [`Backpressure`]); zero is refused when the pipeline
    /// starts.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// How long the drain of [`run_until`](Self::run_until) may take
    /// (default 30 s): past it, `run_until` returns an error even if the
    /// sink stack never answers. Under [`Meathook`](crate::Meathook), the
    /// runtime's own drain deadline applies instead.
    pub fn with_drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// Reads collection times from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The pipeline's name: its collector's.
    pub fn name(&self) -> &str {
        self.collector.name()
    }

    /// Polls the collector once, as a tick would (with the collect timeout
    /// and the key function's dedupe within the batch), and returns what
    /// it collected and the window the batch is stamped with — without
    /// opening or touching the sink stack, so nothing is written anywhere.
    /// For trying a collector out (`nea_weather --once`); call it again for
    /// more polls.
    ///
    /// # Errors
    ///
    /// [`TrialError`] when the collector fails or times out: unlike a
    /// running pipeline, a trial does not retry.
    pub async fn try_once(&mut self) -> Result<Trial<C::Record>, TrialError<C::Error>> {
        let collected_at = self.clock.now();
        let started = Instant::now();
        let records =
            match tokio::time::timeout(self.collect_timeout, self.collector.collect()).await {
                Err(_) => {
                    return Err(TrialError::TimedOut {
                        timeout: self.collect_timeout,
                    });
                }
                Ok(Err(source)) => {
                    let retry_after = C::retry_after(&source);
                    return Err(TrialError::Collect {
                        source,
                        retry_after,
                    });
                }
                Ok(Ok(records)) => records,
            };
        let took = started.elapsed();
        let count = records.len();
        let records = match &self.key_fn {
            None => records,
            Some(key_fn) => {
                let mut seen = HashSet::new();
                records
                    .into_iter()
                    .filter(|r| seen.insert(key_fn(r)))
                    .collect()
            }
        };
        Ok(Trial {
            window: WindowMeta::instant(self.collector.name(), collected_at),
            deduped: count - records.len(),
            records,
            took,
        })
    }

    /// Runs this pipeline alone until `stop` completes, then drains
    /// everything it holds; for embedding and tests. [`Meathook`](crate::Meathook)
    /// runs many, supervised.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send,
        telemetry: &Telemetry,
    ) -> Result<(), PipelineError> {
        let (tx, rx) = watch::channel(None);
        let deadline = self.drain_deadline;
        let name = self.name().to_owned();
        let ctx = Ctx {
            stop: rx,
            metrics: telemetry.pipeline(self.name()),
            share: None,
            backpressure: Backpressure::default(),
            drain_deadline: deadline,
        };
        let run = self.run(ctx);
        tokio::pin!(run);
        tokio::select! {
            result = &mut run => result,
            () = stop => {
                let _ = tx.send(Some(Drain::Everything));
                // A stack stuck in a call from before the stop (an ingest
                // that never returns) cannot hold the caller past the
                // deadline either; the second of slack lets the drain report
                // its own deadline first.
                tokio::time::timeout(deadline + Duration::from_secs(1), run)
                    .await
                    .unwrap_or_else(|_| {
                        Err(PipelineError::Drain {
                            pipeline: name,
                            message: format!(
                                "the sink stack did not answer within the drain deadline of {deadline:?}; spooled records are kept for the next start"
                            ),
                        })
                    })
            }
        }
    }

    /// The first setting that cannot work, by its name (its setter is
    /// `with_` and the name; `interval` is `new`'s).
    pub(crate) fn check(&self) -> Result<(), PipelineError> {
        let problem = if self.interval.is_zero() {
            Some(("interval", "a zero interval would poll without pause"))
        } else if self.collect_timeout.is_zero() {
            Some(("collect_timeout", "a zero timeout fails every poll"))
        } else if self.memory_limit == 0 {
            Some(("memory_limit", "a limit of zero bytes holds nothing"))
        } else {
            None
        };
        match problem {
            Some((setting, reason)) => Err(PipelineError::InvalidSetting {
                pipeline: self.name().to_owned(),
                setting,
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) async fn run(self, ctx: Ctx) -> Result<(), PipelineError> {
        let span = tracing::info_span!("pipeline", pipeline = %self.name());
        self.run_in_span(ctx).instrument(span).await
    }

    async fn run_in_span(mut self, mut ctx: Ctx) -> Result<(), PipelineError> {
        self.check()?;
        let name = self.collector.name().to_owned();
        self.sink.open().await.map_err(|e| PipelineError::Open {
            pipeline: name.clone(),
            message: ErrorChain(&e).to_string(),
        })?;
        let mut state = State {
            seen: Seen::new(self.horizon),
            in_flight: HashSet::new(),
            held: VecDeque::new(),
            stats: StackStats::default(),
            refusing: false,
            journal: None,
            offering: 0,
            tally: Tally::default(),
        };
        if let (Some(path), Some(_)) = (&self.dedupe_file, &self.key_fn) {
            let journal = KeyJournal::open(path.clone(), &mut state.seen, self.clock.now())
                .await
                .map_err(|e| PipelineError::Open {
                    pipeline: name.clone(),
                    message: format!("dedupe journal {}: {e}", path.display()),
                })?;
            state.journal = Some(journal);
        }
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut next_poll = Instant::now();
        let mut tick: u64 = 0;
        let drain = loop {
            let scheduled = tokio::select! {
                biased;
                mode = stop_requested(&mut ctx.stop) => break mode,
                at = ticker.tick() => at,
            };
            let delay = self.jitter.mul_f64(fastrand::f64());
            if !delay.is_zero() {
                tokio::select! {
                    biased;
                    mode = stop_requested(&mut ctx.stop) => break mode,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            tick += 1;
            self.tick(&mut state, &mut ctx, (scheduled, delay), &mut next_poll)
                .instrument(tracing::info_span!("tick", tick))
                .await;
        };
        self.drain(&mut state, &mut ctx, drain).await
    }

    /// One tick, scheduled at `scheduled` and held back by `jitter`: poll
    /// (unless backpressure or the source's wish says wait), offer what is
    /// held, advance the stack's time.
    async fn tick(
        &mut self,
        state: &mut State<C::Record>,
        ctx: &mut Ctx,
        (scheduled, jitter): (Instant, Duration),
        next_poll: &mut Instant,
    ) {
        let started = Instant::now();
        ctx.metrics.tick_lateness_seconds.observe(
            started
                .saturating_duration_since(scheduled + jitter)
                .as_secs_f64(),
        );
        let (utilisation, held_bytes, credits) = self.pressure(state, ctx);
        let stretch = ctx.backpressure.stretch(utilisation);
        if let Some(factor) = stretch.filter(|_| started >= *next_poll) {
            *next_poll = scheduled + self.interval.mul_f64(factor);
            if let Some(wait) = self.poll(state, ctx).await {
                *next_poll = (*next_poll).max(Instant::now() + wait);
            }
        }
        self.offer(state, ctx).await;
        self.advance(state, ctx).await;
        let now = self.clock.now();
        ctx.metrics.publish(
            &state.stats,
            now,
            held_bytes,
            credits,
            stretch.unwrap_or(0.0),
        );
    }

    /// Utilisation, bytes held and bytes of credit left.
    fn pressure(&self, state: &State<C::Record>, ctx: &mut Ctx) -> (f64, u64, u64) {
        let record = std::mem::size_of::<C::Record>() as u64;
        let held_records: u64 = state.held.iter().map(|h| h.records.len() as u64).sum();
        let held = state.stats.held_bytes + held_records * record;
        #[allow(clippy::cast_precision_loss)] // a ratio
        let own = held as f64 / self.memory_limit as f64;
        let mut utilisation = own.max(state.stats.utilisation);
        let mut credits = self.memory_limit.saturating_sub(held);
        if let Some(share) = ctx.share.as_mut() {
            share.set(held);
            let budget = share.budget();
            utilisation = utilisation.max(budget.utilisation());
            credits = credits.min(budget.limit().saturating_sub(budget.used()));
        }
        (utilisation, held, credits)
    }

    /// Polls once. Returns how long the source asked to be left alone, if it
    /// did.
    async fn poll(&mut self, state: &mut State<C::Record>, ctx: &Ctx) -> Option<Duration> {
        let collected_at = self.clock.now();
        state.seen.expire(collected_at);
        state.tally.polls += 1;
        let records =
            match tokio::time::timeout(self.collect_timeout, self.collector.collect()).await {
                Err(_) => {
                    ctx.metrics.collect_error("timeout");
                    ctx.metrics.polled(
                        collected_at,
                        Err(format!("poll timed out after {:?}", self.collect_timeout)),
                    );
                    state.tally.failed += 1;
                    tracing::warn!(timeout = ?self.collect_timeout, "poll timed out");
                    return None;
                }
                Ok(Err(error)) => {
                    ctx.metrics.collect_error(C::error_kind(&error));
                    ctx.metrics
                        .polled(collected_at, Err(ErrorChain(&error).to_string()));
                    state.tally.failed += 1;
                    let wait = C::retry_after(&error);
                    match wait {
                        Some(wait) => tracing::warn!(
                            error = %ErrorChain(&error),
                            retry_after = ?wait,
                            "poll failed; the source asked to wait"
                        ),
                        None => tracing::warn!(error = %ErrorChain(&error), "poll failed"),
                    }
                    return wait;
                }
                Ok(Ok(records)) => records,
            };
        ctx.metrics.collected.inc_by(records.len() as u64);
        ctx.metrics.polled(collected_at, Ok(records.len()));
        state.tally.collected += records.len() as u64;
        let (records, keys) = match &self.key_fn {
            None => (records, Vec::new()),
            Some(key_fn) => {
                let mut kept = Vec::with_capacity(records.len());
                let mut keys = Vec::with_capacity(records.len());
                for record in records {
                    let key = key_fn(&record);
                    if state.seen.contains(key) || !state.in_flight.insert(key) {
                        ctx.metrics.deduped.inc();
                        continue;
                    }
                    kept.push(record);
                    keys.push(key);
                }
                (kept, keys)
            }
        };
        if !records.is_empty() {
            let window = WindowMeta::instant(self.collector.name(), collected_at);
            state.held.push_back(Held {
                window,
                records,
                keys,
            });
        }
        None
    }

    /// Offers held batches to the stack, oldest first, until one is refused.
    async fn offer(&mut self, state: &mut State<C::Record>, ctx: &Ctx) {
        while let Some(Held {
            window,
            records,
            keys,
        }) = state.held.pop_front()
        {
            let count = records.len();
            let started = Instant::now();
            state.offering = count;
            let ingested = self.sink.ingest(&window, records).await;
            state.offering = 0;
            match ingested {
                Ok(receipt) => {
                    ctx.metrics
                        .ingest_seconds
                        .observe(started.elapsed().as_secs_f64());
                    ctx.metrics.accepted.inc_by(receipt.accepted() as u64);
                    state.tally.accepted += receipt.accepted() as u64;
                    let now = self.clock.now();
                    // Rejected records are final (they cannot be serialised):
                    // their keys are remembered too, so a source repeating them
                    // does not produce the same rejection every poll.
                    for key in keys {
                        state.in_flight.remove(&key);
                        state.seen.remember(key, now);
                        if let Some(journal) = state.journal.as_mut() {
                            journal.push(key, now);
                        }
                    }
                    for rejected in receipt.rejected() {
                        tracing::warn!(%window, index = rejected.index, error = %ErrorChain(&rejected.error), "record rejected by the sink stack");
                    }
                    if state.refusing {
                        tracing::info!("sink stack accepts batches again");
                        state.refusing = false;
                    }
                }
                Err(refused) => {
                    let (records, error) = refused.into_parts();
                    if !state.refusing {
                        tracing::warn!(%window, error = %ErrorChain(&error), records = count, "sink stack refused a batch; holding it and slowing down");
                        state.refusing = true;
                    }
                    let keys = if records.len() == keys.len() {
                        keys
                    } else {
                        Vec::new()
                    };
                    state.held.push_front(Held {
                        window,
                        records,
                        keys,
                    });
                    break;
                }
            }
        }
    }

    async fn advance(&mut self, state: &mut State<C::Record>, ctx: &Ctx) {
        if let Some(journal) = state.journal.as_mut()
            && let Err(error) = journal.sync().await
        {
            tracing::warn!(
                path = %journal.path().display(),
                error = %ErrorChain(&error),
                "cannot write the dedupe journal; a restart may store recent readings twice"
            );
        }
        let now = self.clock.now();
        state.seen.expire(now);
        if let Err(error) = self.sink.advance(now).await {
            ctx.metrics.collect_error("sink");
            tracing::error!(error = %ErrorChain(&error), "sink stack failed to advance");
        }
        let mut stats = StackStats::default();
        self.sink.observe(&mut stats);
        state.stats = stats;
    }

    /// Offers what is held until the deadline, then drains the stack.
    async fn drain(
        &mut self,
        state: &mut State<C::Record>,
        ctx: &mut Ctx,
        mode: Drain,
    ) -> Result<(), PipelineError> {
        let name = self.collector.name().to_owned();
        let deadline = Instant::now() + ctx.drain_deadline;
        tracing::info!(?mode, "draining");
        // Every call to the stack is cut off at the deadline: a stack that
        // never answers cannot hang the drain.
        loop {
            if tokio::time::timeout_at(deadline, self.offer(state, ctx))
                .await
                .is_err()
                || state.held.is_empty()
                || Instant::now() >= deadline
                || tokio::time::timeout_at(deadline, self.advance(state, ctx))
                    .await
                    .is_err()
            {
                break;
            }
            tokio::time::sleep(
                Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        // A batch in the stack's hands at the deadline was not acknowledged.
        let undrained: usize =
            state.held.iter().map(|h| h.records.len()).sum::<usize>() + state.offering;
        let result = match tokio::time::timeout_at(deadline, self.sink.drain(mode)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PipelineError::Drain {
                pipeline: name.clone(),
                message: ErrorChain(&e).to_string(),
            }),
            Err(_) => Err(PipelineError::Drain {
                pipeline: name.clone(),
                message: format!("did not finish within {:?}", ctx.drain_deadline),
            }),
        };
        let mut stats = StackStats::default();
        self.sink.observe(&mut stats);
        ctx.metrics.publish(&stats, self.clock.now(), 0, 0, 0.0);
        let tally = &state.tally;
        tracing::info!(
            polls = tally.polls,
            failed_polls = tally.failed,
            collected = tally.collected,
            accepted = tally.accepted,
            undrained,
            "stopped"
        );
        if undrained > 0 {
            return Err(PipelineError::Undrained {
                pipeline: name,
                records: undrained,
            });
        }
        result
    }
}

/// What a running pipeline keeps between ticks.
struct State<R> {
    seen: Seen,
    in_flight: HashSet<KeyHash>,
    held: VecDeque<Held<R>>,
    stats: StackStats,
    refusing: bool,
    journal: Option<KeyJournal>,
    /// Records of the batch being offered to the stack right now.
    offering: usize,
    /// What this run did, for the line logged when it stops.
    tally: Tally,
}

/// Counts of one run of a pipeline.
#[derive(Default)]
struct Tally {
    polls: u64,
    failed: u64,
    collected: u64,
    accepted: u64,
}

/// Resolves once a stop is requested, with the drain mode.
async fn stop_requested(stop: &mut watch::Receiver<Option<Drain>>) -> Drain {
    match stop.wait_for(Option::is_some).await {
        Ok(mode) => mode.unwrap_or_default(),
        // The supervisor is gone: stop, delivering everything.
        Err(_) => Drain::Everything,
    }
}
