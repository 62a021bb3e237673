//! Settings for a [`FileSink`].

use std::path::PathBuf;

use meathook_core::Deliveries;

use crate::file_sink::FileSink;
use crate::layout::Layout;
use crate::store::{Destination, DestinationError};

pub use crate::remote::DEFAULT_SINGLE_PUT_LIMIT;

/// Settings for a [`FileSink`].
#[derive(Debug, Clone)]
pub struct FileSinkBuilder {
    destination: Result<Destination, String>,
    scratch_dir: Option<PathBuf>,
    single_put_limit: u64,
    deliveries: Option<Deliveries>,
    dataset_card: bool,
    layout: Layout,
}

impl FileSinkBuilder {
    /// A sink writing to `url`: a local directory or one of the URL forms of
    /// [`Destination::parse`]. The URL is checked by [`build`](Self::build).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            destination: Err(url.into()),
            scratch_dir: None,
            single_put_limit: DEFAULT_SINGLE_PUT_LIMIT,
            deliveries: None,
            dataset_card: true,
            layout: Layout::default(),
        }
    }

    /// Reports every file landed, and every file a replay finds already
    /// there, to `deliveries` (the catalog) before `ingest` returns `Ok`.
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// A sink writing to a destination built by the caller.
    pub fn with_destination(mut self, destination: Destination) -> Self {
        self.destination = Ok(destination);
        self
    }

    /// Where files are encoded before upload to a remote store (by
    /// default, the system temporary directory). Local destinations always
    /// use `.meathook-tmp` under their root, so publishing is a link.
    pub fn with_scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }

    /// Files larger than this go to remote stores in multipart parts,
    /// without a conditional create (default
    /// [`DEFAULT_SINGLE_PUT_LIMIT`]); smaller ones are read into memory for
    /// one conditional put.
    pub fn with_single_put_limit(mut self, bytes: u64) -> Self {
        self.single_put_limit = bytes;
        self
    }

    /// Whether the destination's dataset card (`README.md`, one `configs:`
    /// entry per pipeline, the user's text kept) is kept up to date beside
    /// the files (default `true`): `datasets.load_dataset(dir,
    /// name=PIPELINE)` then reads one pipeline.
    pub fn with_dataset_card(mut self, keep: bool) -> Self {
        self.dataset_card = keep;
        self
    }

    /// How folders are named (default [`Layout::Folders`],
    /// `data/{pipeline}/{date}/`; [`Layout::Hive`] writes
    /// `data/pipeline={pipeline}/date={date}/` for engines that prune
    /// partitions). The dataset card's configs follow it. Keep one layout
    /// per destination: compaction and replays look for a batch's file in
    /// the layout of the sink that asks.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Builds the sink with `encoder`.
    ///
    /// # Errors
    ///
    /// [`DestinationError`] when the URL is refused.
    pub fn build<R, E>(self, encoder: E) -> Result<FileSink<R, E>, DestinationError> {
        let destination = match self.destination {
            Ok(d) => d,
            Err(url) => Destination::parse(&url)?,
        };
        let scratch = destination.scratch_dir(self.scratch_dir);
        let sink = FileSink::from_parts(destination, scratch, self.single_put_limit, encoder)
            .with_dataset_card(self.dataset_card)
            .with_layout(self.layout);
        Ok(match self.deliveries {
            Some(deliveries) => sink.with_deliveries(deliveries),
            None => sink,
        })
    }
}
