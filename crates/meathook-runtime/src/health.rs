//! Pipeline health, as `/healthz` reports it: each pipeline's state, and
//! for a pipeline that is up, whether it keeps its schedule, delivers and
//! has room.
//!
//! A pipeline that is up fails when
//!
//! - its ticks run late: the last tick started more than the
//!   `health_tick_lateness` bound behind its schedule, or the tick in
//!   progress has run so long that the next one is overdue by more than
//!   the bound (a tick stuck in a call to the sink stack starts no other
//!   tick, so none would be measured late). The next tick is due one
//!   spacing after the tick in progress was: the spacing of the last two
//!   ticks' schedules, which is the pipeline's interval (a multiple of it
//!   after skipped ticks, give or take its jitter). Before the second tick
//!   there is no spacing yet, and a first tick that runs longer than the
//!   bound counts as late. Between ticks nothing is judged: the task waits
//!   on its timer (or its jitter), which cannot hang;
//! - its delivery is stuck: attempts have failed, with none succeeding,
//!   for longer than `health_delivery_stall`; or the oldest record its
//!   stack has not delivered is older than `health_undelivered_age`;
//! - its fullest buffer or spool is full.
//!
//! The figures come from the pipeline's own task: the tick-lateness
//! observation as each tick starts, the stack's `StackStats` as it ends. A
//! check reads them with the time elapsed since, so a pipeline whose task
//! is stuck still ages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Where a pipeline stands, as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineState {
    /// Polling.
    Up,
    /// Failed; waiting to be rebuilt from its factory.
    Restarting,
    /// Failed too often; no longer restarted.
    GivenUp,
    /// Stopped at shutdown.
    Stopped,
}

/// The bounds past which `/healthz` reports a pipeline that is up as
/// failing; set by the builder's `with_health_*` setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HealthBounds {
    /// How late a tick may start, and how overdue the next one may be.
    pub(crate) tick_lateness: Duration,
    /// How long deliveries may fail with none succeeding.
    pub(crate) delivery_stall: Duration,
    /// How old the oldest undelivered record may grow.
    pub(crate) undelivered_age: Duration,
}

impl Default for HealthBounds {
    fn default() -> Self {
        Self {
            tick_lateness: Duration::from_secs(60),
            delivery_stall: Duration::from_secs(30 * 60),
            undelivered_age: Duration::from_secs(25 * 3600),
        }
    }
}

impl HealthBounds {
    /// The first bound that cannot work, by its setting's name, and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        [
            ("health_tick_lateness", self.tick_lateness),
            ("health_delivery_stall", self.delivery_stall),
            ("health_undelivered_age", self.undelivered_age),
        ]
        .into_iter()
        .find(|(_, bound)| bound.is_zero())
        .map(|(setting, _)| {
            (
                setting,
                "a zero bound reports every running pipeline as failing".to_owned(),
            )
        })
    }
}

/// The schedule of a pipeline's ticks, as its task reported it.
#[derive(Debug, Clone, Copy, Default)]
struct Ticks {
    /// When the tick in progress started; `None` between ticks.
    running_since: Option<Instant>,
    /// How late the last tick started.
    last_lateness: Duration,
    /// When the last tick was due: its start less its lateness.
    last_due: Option<Instant>,
    /// The spacing of the last two ticks' due times.
    spacing: Option<Duration>,
}

/// A stack's figures as of the end of a tick.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// When the tick ended.
    at: Instant,
    utilisation: f64,
    spooled_bytes: u64,
    held_bytes: u64,
    /// The age of the oldest undelivered record at `at`.
    oldest_age: Option<Duration>,
    delivered: u64,
    failed: u64,
}

/// What one tick's end tells the board.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Published {
    pub(crate) utilisation: f64,
    pub(crate) spooled_bytes: u64,
    pub(crate) held_bytes: u64,
    pub(crate) oldest_age: Option<Duration>,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
}

/// Deliveries failing with none succeeding since `since`.
#[derive(Debug, Clone, Copy)]
struct Failing {
    since: Instant,
    /// Failed attempts counted before the first of these failures.
    failed_before: u64,
}

#[derive(Debug, Clone, Default)]
struct Health {
    /// `None` until the supervisor reports one: a pipeline run on its own
    /// (`Pipeline::run_until`) is not judged.
    state: Option<PipelineState>,
    ticks: Ticks,
    figures: Option<Figures>,
    failing: Option<Failing>,
}

#[derive(Debug, Default)]
struct Board {
    bounds: HealthBounds,
    pipelines: BTreeMap<String, Health>,
}

/// The health of every pipeline, shared by the runtime and each pipeline's
/// metric handles; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct HealthBoard(Arc<Mutex<Board>>);

impl HealthBoard {
    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the bounds the checks use.
    pub(crate) fn set_bounds(&self, bounds: HealthBounds) {
        self.board().bounds = bounds;
    }

    /// Records a pipeline's state.
    pub(crate) fn set_state(&self, pipeline: &str, state: PipelineState) {
        self.board()
            .pipelines
            .entry(pipeline.to_owned())
            .or_default()
            .state = Some(state);
    }

    /// Forgets a pipeline's ticks and figures: a new run of it (a rebuilt
    /// stack, a new schedule) is about to start.
    pub(crate) fn starting(&self, pipeline: &str) {
        let mut board = self.board();
        let health = board.pipelines.entry(pipeline.to_owned()).or_default();
        *health = Health {
            state: health.state,
            ..Health::default()
        };
    }

    /// A tick of `pipeline` started now, `lateness` behind its schedule.
    pub(crate) fn tick_started(&self, pipeline: &str, lateness: Duration) {
        let now = Instant::now();
        let mut board = self.board();
        let Some(health) = board.pipelines.get_mut(pipeline) else {
            return;
        };
        let ticks = &mut health.ticks;
        let due = now.checked_sub(lateness).unwrap_or(now);
        if let Some(last) = ticks.last_due
            && due > last
        {
            ticks.spacing = Some(due - last);
        }
        ticks.last_due = Some(due);
        ticks.last_lateness = lateness;
        ticks.running_since = Some(now);
    }

    /// A tick of `pipeline` ended now, leaving its stack with `figures`.
    pub(crate) fn tick_ended(&self, pipeline: &str, figures: Published) {
        let now = Instant::now();
        let mut board = self.board();
        let Some(health) = board.pipelines.get_mut(pipeline) else {
            return;
        };
        health.ticks.running_since = None;
        // The counts start again from zero in a rebuilt stack.
        let (delivered_before, failed_before) =
            health.figures.map_or((0, 0), |f| (f.delivered, f.failed));
        if figures.delivered != delivered_before || figures.failed < failed_before {
            health.failing = None;
        }
        if figures.failed > failed_before
            && figures.delivered == delivered_before
            && health.failing.is_none()
        {
            health.failing = Some(Failing {
                since: now,
                failed_before,
            });
        }
        health.figures = Some(Figures {
            at: now,
            utilisation: figures.utilisation,
            spooled_bytes: figures.spooled_bytes,
            held_bytes: figures.held_bytes,
            oldest_age: figures.oldest_age,
            delivered: figures.delivered,
            failed: figures.failed,
        });
    }

    /// Whether every pipeline is up and healthy, and if not, one line per
    /// failing pipeline saying why.
    pub(crate) fn check(&self) -> Result<(), Vec<String>> {
        let now = Instant::now();
        let board = self.board();
        let problems: Vec<String> = board
            .pipelines
            .iter()
            .filter_map(|(name, health)| match health.state? {
                PipelineState::Up => {
                    let reasons = reasons(health, &board.bounds, now);
                    (!reasons.is_empty()).then(|| format!("{name}: {}", reasons.join("; ")))
                }
                state => Some(format!("{name}: {state:?}")),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The state of each pipeline.
    pub(crate) fn states(&self) -> BTreeMap<String, PipelineState> {
        self.board()
            .pipelines
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.state?)))
            .collect()
    }
}

/// Why a pipeline that is up fails, if it does.
fn reasons(health: &Health, bounds: &HealthBounds, now: Instant) -> Vec<String> {
    let mut reasons = Vec::new();
    let ticks = &health.ticks;
    let bound = bounds.tick_lateness;
    if ticks.last_lateness > bound {
        reasons.push(format!(
            "ticks late: the last tick started {} behind schedule (bound {})",
            Shown(ticks.last_lateness),
            Shown(bound)
        ));
    } else if let Some(since) = ticks.running_since {
        let running = now.saturating_duration_since(since);
        match (ticks.last_due, ticks.spacing) {
            (Some(due), Some(spacing)) => {
                let overdue = now.saturating_duration_since(due).saturating_sub(spacing);
                if overdue > bound {
                    reasons.push(format!(
                        "ticks late: the next tick is {} overdue (bound {}), the tick in progress has run for {}",
                        Shown(overdue),
                        Shown(bound),
                        Shown(running)
                    ));
                }
            }
            _ if running > bound => reasons.push(format!(
                "ticks late: the first tick has run for {} (bound {})",
                Shown(running),
                Shown(bound)
            )),
            _ => {}
        }
    }
    let Some(figures) = &health.figures else {
        return reasons;
    };
    let since_published = now.saturating_duration_since(figures.at);
    if let Some(failing) = &health.failing {
        let stalled = now.saturating_duration_since(failing.since);
        if stalled > bounds.delivery_stall {
            reasons.push(format!(
                "delivery stuck: attempts have failed for {} with none delivered ({} failed; bound {})",
                Shown(stalled),
                figures.failed.saturating_sub(failing.failed_before),
                Shown(bounds.delivery_stall)
            ));
        }
    }
    if let Some(age) = figures.oldest_age.map(|age| age + since_published)
        && age > bounds.undelivered_age
    {
        reasons.push(format!(
            "delivery stuck: the oldest undelivered record is {} old (bound {})",
            Shown(age),
            Shown(bounds.undelivered_age)
        ));
    }
    if figures.utilisation >= 1.0 {
        reasons.push(format!(
            "full: the fullest buffer or spool is at {:.0}% ({} bytes spooled, {} bytes held in memory)",
            figures.utilisation * 100.0,
            figures.spooled_bytes,
            figures.held_bytes
        ));
    }
    reasons
}

/// A duration as a person reads it: `0.25 s`, `75 s`, `31 min`, `26.0 h`.
struct Shown(Duration);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs_f64();
        if s < 10.0 {
            write!(f, "{s:.2} s")
        } else if s < 120.0 {
            write!(f, "{s:.0} s")
        } else if s < 2.0 * 3600.0 {
            write!(f, "{:.0} min", s / 60.0)
        } else {
            write!(f, "{:.1} h", s / 3600.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Published {
        Published {
            utilisation: 0.1,
            spooled_bytes: 10,
            held_bytes: 0,
            oldest_age: None,
            delivered: 0,
            failed: 0,
        }
    }

    fn board(bounds: HealthBounds) -> HealthBoard {
        let board = HealthBoard::default();
        board.set_bounds(bounds);
        board.set_state("p", PipelineState::Up);
        board.starting("p");
        board
    }

    fn bounds(secs: u64) -> HealthBounds {
        HealthBounds {
            tick_lateness: Duration::from_secs(secs),
            delivery_stall: Duration::from_secs(secs),
            undelivered_age: Duration::from_secs(secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_are_late_when_one_starts_late_or_the_next_is_overdue() {
        let board = board(bounds(5));
        let tick = |lateness: u64| {
            board.tick_started("p", Duration::from_secs(lateness));
            board.tick_ended("p", figures());
        };
        tick(0);
        tokio::time::advance(Duration::from_secs(10)).await;
        tick(0);
        assert_eq!(board.check(), Ok(()), "on time, every 10 s");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(board.check(), Ok(()), "between ticks nothing is judged");
        tick(0);
        tokio::time::advance(Duration::from_secs(10)).await;
        tick(0);
        tokio::time::advance(Duration::from_secs(10)).await;
        // A tick that runs on: 10 s after it was due, the next one is.
        board.tick_started("p", Duration::ZERO);
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(board.check(), Ok(()), "4 s overdue is within 5 s");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            board.check(),
            Err(vec!["p: ticks late: the next tick is 6.00 s overdue (bound 5.00 s), the tick in progress has run for 16 s".to_owned()])
        );
        board.tick_ended("p", figures());
        // It fired late when that tick ended.
        tick(6);
        assert_eq!(
            board.check(),
            Err(vec![
                "p: ticks late: the last tick started 6.00 s behind schedule (bound 5.00 s)"
                    .to_owned()
            ])
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        tick(0);
        assert_eq!(board.check(), Ok(()), "back on schedule");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_tick_that_runs_past_the_bound_is_late() {
        let board = board(bounds(5));
        board.tick_started("p", Duration::ZERO);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(board.check(), Ok(()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            board.check(),
            Err(vec![
                "p: ticks late: the first tick has run for 6.00 s (bound 5.00 s)".to_owned()
            ])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delivery_is_stuck_when_attempts_fail_for_too_long_or_records_age() {
        let board = board(bounds(60));
        let end = |delivered, failed, oldest: u64| {
            board.tick_started("p", Duration::ZERO);
            board.tick_ended(
                "p",
                Published {
                    oldest_age: Some(Duration::from_secs(oldest)),
                    delivered,
                    failed,
                    ..figures()
                },
            );
        };
        end(5, 2, 0);
        tokio::time::advance(Duration::from_secs(30)).await;
        end(5, 3, 30);
        tokio::time::advance(Duration::from_secs(30)).await;
        end(5, 7, 40);
        assert_eq!(board.check(), Ok(()), "failing for 30 s of 60");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            board.check(),
            Err(vec![
                "p: delivery stuck: attempts have failed for 61 s with none delivered (5 failed; bound 60 s); \
                 delivery stuck: the oldest undelivered record is 71 s old (bound 60 s)"
                    .to_owned()
            ]),
            "the ages grow between ticks"
        );
        end(6, 7, 0);
        assert_eq!(board.check(), Ok(()), "a delivery clears both");
        // A rebuilt stack counts from zero again: not a failure.
        end(0, 0, 0);
        assert_eq!(board.check(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_spool_and_states_are_reported() {
        let board = board(bounds(60));
        board.tick_started("p", Duration::ZERO);
        board.tick_ended(
            "p",
            Published {
                utilisation: 1.0,
                spooled_bytes: 4096,
                held_bytes: 12,
                ..figures()
            },
        );
        board.set_state("q", PipelineState::GivenUp);
        board.starting("alone");
        assert_eq!(
            board.check(),
            Err(vec![
                "p: full: the fullest buffer or spool is at 100% (4096 bytes spooled, 12 bytes held in memory)"
                    .to_owned(),
                "q: GivenUp".to_owned(),
            ]),
            "a pipeline without a state is not judged"
        );
    }

    #[test]
    fn a_zero_bound_is_refused_by_name() {
        assert_eq!(HealthBounds::default().problem(), None);
        let zero = HealthBounds {
            delivery_stall: Duration::ZERO,
            ..HealthBounds::default()
        };
        assert_eq!(zero.problem().map(|p| p.0), Some("health_delivery_stall"));
    }

    #[test]
    fn durations_read_well() {
        for (secs, shown) in [
            (0.25, "0.25 s"),
            (75.0, "75 s"),
            (1860.0, "31 min"),
            (93960.0, "26.1 h"),
        ] {
            assert_eq!(Shown(Duration::from_secs_f64(secs)).to_string(), shown);
        }
    }
}
