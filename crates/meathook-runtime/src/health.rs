//! Pipeline health, as `/healthz` reports it: each pipeline's state and
//! whether its buffers are full.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

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

#[derive(Debug, Clone, Copy)]
struct Health {
    state: PipelineState,
    full: bool,
}

/// The health of every pipeline, shared by the runtime and each pipeline's
/// metric handles; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct HealthBoard(Arc<Mutex<BTreeMap<String, Health>>>);

impl HealthBoard {
    /// Records a pipeline's state.
    pub(crate) fn set_state(&self, pipeline: &str, state: PipelineState) {
        let mut health = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        health
            .entry(pipeline.to_owned())
            .or_insert(Health { state, full: false })
            .state = state;
    }

    /// Records whether a pipeline's fullest buffer is full; a pipeline with
    /// no state yet is left out.
    pub(crate) fn set_full(&self, pipeline: &str, full: bool) {
        if let Some(h) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(pipeline)
        {
            h.full = full;
        }
    }

    /// Whether every pipeline is up and no buffer is full, and if not, why.
    pub(crate) fn check(&self) -> Result<(), Vec<String>> {
        let health = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let problems: Vec<String> = health
            .iter()
            .filter_map(|(name, h)| match (h.state, h.full) {
                (PipelineState::Up, false) => None,
                (PipelineState::Up, true) => Some(format!("{name}: buffer or spool full")),
                (state, _) => Some(format!("{name}: {state:?}")),
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
        let health = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        health.iter().map(|(k, v)| (k.clone(), v.state)).collect()
    }
}
