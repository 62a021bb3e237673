//! `HfSink`: the terminal sink that commits each window as one parquet
//! file to a HuggingFace dataset — the window-file pipeline plus
//! publishing to the Hub. The type and its setters are in `settings`,
//! what it does with windows in `ingest`, the Hub as a place files land in
//! `publish`.

mod ingest;
mod publish;
mod settings;

pub use self::settings::{DEFAULT_ANSWER_LIMIT, HfSink};
