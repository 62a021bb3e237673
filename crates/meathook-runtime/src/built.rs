//! A pipeline behind one type: the factory that builds it, building with a
//! panic caught, starting its task, and the message of a task that panicked.
//!
//! Pipelines differ in collector and sink stack types; the supervisor holds
//! them all as `Box<dyn Built>`, made by a [`Factory`].

use std::panic::AssertUnwindSafe;

use meathook_core::{Collector, Sink};
use tokio::task::{Id, JoinSet};

use crate::error::PipelineError;
use crate::pipeline::{Ctx, Pipeline};

/// A pipeline built by a factory, ready to run.
pub(crate) trait Built: Send {
    /// The pipeline's name.
    fn name(&self) -> String;
    /// A setting of the pipeline that cannot work.
    fn check(&self) -> Result<(), PipelineError>;
    /// Spawns the pipeline's task into `tasks`.
    fn start(self: Box<Self>, ctx: Ctx, tasks: &mut JoinSet<Result<(), PipelineError>>) -> Id;
}

impl<C, S> Built for Pipeline<C, S>
where
    C: Collector,
    S: Sink<C::Record> + 'static,
{
    fn name(&self) -> String {
        Pipeline::name(self).to_owned()
    }

    fn check(&self) -> Result<(), PipelineError> {
        Pipeline::check(self)
    }

    fn start(self: Box<Self>, ctx: Ctx, tasks: &mut JoinSet<Result<(), PipelineError>>) -> Id {
        tasks.spawn((*self).run(ctx)).id()
    }
}

/// Builds a pipeline, and builds it again after a failure.
pub(crate) type Factory = Box<dyn FnMut() -> Box<dyn Built> + Send>;

/// Boxes a user's factory.
pub(crate) fn boxed<F, C, S>(mut factory: F) -> Factory
where
    F: FnMut() -> Pipeline<C, S> + Send + 'static,
    C: Collector,
    S: Sink<C::Record> + 'static,
{
    Box::new(move || Box::new(factory()) as Box<dyn Built>)
}

/// Calls a factory, turning a panic into its message.
pub(crate) fn build(factory: &mut Factory) -> Result<Box<dyn Built>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(factory))
        .map_err(|payload| payload_message(payload.as_ref()))
}

/// Why a pipeline's task ended without a result: its panic message, or
/// that it was cancelled.
pub(crate) fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => format!("panicked: {}", payload_message(payload.as_ref())),
        Err(error) => error.to_string(),
    }
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}
