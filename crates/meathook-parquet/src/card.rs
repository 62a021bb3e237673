//! The dataset card beside a [`FileSink`](crate::FileSink)'s files: the
//! same `README.md` the HuggingFace sink commits, one `configs:` entry per
//! pipeline (see [`meathook_files::card`]), so `datasets.load_dataset(dir,
//! name=PIPELINE)` reads one pipeline's files, locally or from an object
//! store.
//!
//! **Invariant:** the card is rewritten only when it lacks the pipeline's
//! config, and never loses another writer's config or the user's text:
//! locally under a lock, with an atomic rename ([`meathook_files::card::local`]);
//! in an object store by a conditional put on the e-tag read (or a
//! conditional create when there is no card), re-read and merged again when
//! another writer got there first. A store that offers no conditional put
//! gets a plain put, which a concurrent writer may overwrite.
//!
//! A card that cannot be updated fails the window's `ingest` transiently,
//! after its file landed: the window stays with the layer above, and its
//! replay finds the file in place and tries the card again.
//!
//! **Many pipelines:** the sinks of one process that write to one
//! destination share its card. A config once written (or found) is
//! remembered for the life of the process, so later windows do not read the
//! card again; and pipelines whose first windows arrive together are added
//! in one rewrite: each waits its turn to write, and the one whose turn
//! comes writes every config still waiting. Ten thousand pipelines cost a
//! few rewrites of the card, not ten thousand rewrites of a growing file.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, PoisonError};

use meathook_files::card::{self, CARD_PATH, local::MAX_CARD_BYTES};
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};

use crate::sink_error::FileSinkError;
use crate::store::Destination;

/// Conditional puts tried before giving up for this window.
const ATTEMPTS: usize = 8;

/// Configs known to be in a card, and those waiting to be written.
#[derive(Default)]
struct Configs {
    written: HashSet<String>,
    waiting: Vec<(String, String)>,
}

/// What this process knows of one destination's card.
#[derive(Default)]
struct Shared {
    state: std::sync::Mutex<Configs>,
    /// Held by the one writing the card.
    turn: tokio::sync::Mutex<()>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Configs> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The shared state of the card at `key` (the destination's description).
fn shared(key: String) -> Arc<Shared> {
    static CARDS: std::sync::Mutex<BTreeMap<String, Arc<Shared>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut cards = CARDS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(cards.entry(key).or_default())
}

/// Adds a config for `pipeline` (its files matching `glob`) to the card
/// of `destination`, unless it has one; with the configs of other pipelines
/// waiting at the same time (see the module docs).
pub(crate) async fn ensure(
    destination: &Destination,
    window: &str,
    pipeline: &str,
    glob: &str,
) -> Result<(), FileSinkError> {
    let name = card::config_name(pipeline);
    let ours = (pipeline.to_owned(), glob.to_owned());
    let card = shared(destination.describe(CARD_PATH));
    {
        let mut state = card.lock();
        if state.written.contains(&name) {
            return Ok(());
        }
        state.waiting.push(ours.clone());
    }
    let _turn = card.turn.lock().await;
    let mut wanted = {
        let mut state = card.lock();
        if state.written.contains(&name) {
            return Ok(());
        }
        std::mem::take(&mut state.waiting)
    };
    // A writer before us that failed took ours with it.
    if !wanted.iter().any(|(p, _)| *p == ours.0) {
        wanted.push(ours);
    }
    write(destination, window, &wanted).await?;
    card.lock()
        .written
        .extend(wanted.iter().map(|(p, _)| card::config_name(p)));
    Ok(())
}

/// Adds every config of `wanted` missing from the card of `destination`.
async fn write(
    destination: &Destination,
    window: &str,
    wanted: &[(String, String)],
) -> Result<(), FileSinkError> {
    match destination {
        Destination::Local { root } => {
            let (root, wanted) = (root.clone(), wanted.to_vec());
            let path = root.join(CARD_PATH);
            meathook_core::blocking(move || card::local::ensure_all(&root, &wanted))
                .await
                .map_err(|e| FileSinkError::Task {
                    window: window.to_owned(),
                    reason: e.to_string(),
                })?
                .map(drop)
                .map_err(|source| FileSinkError::Local {
                    action: "updating the dataset card",
                    path,
                    source,
                })
        }
        Destination::Remote { store, prefix, .. } => {
            let path = ObjectPath::from_iter(prefix.parts().chain(std::iter::once(
                object_store::path::PathPart::from(CARD_PATH),
            )));
            let label = destination.describe(CARD_PATH);
            let store_error = |action, source| FileSinkError::Store {
                action,
                path: label.clone(),
                source,
            };
            for _ in 0..ATTEMPTS {
                let (existing, version) = read(store, &path)
                    .await
                    .map_err(|e| store_error("reading the dataset card", e))?;
                let Some(text) = card::merge(existing.as_deref(), wanted) else {
                    return Ok(());
                };
                let mode = match version {
                    Some(version) => PutMode::Update(version),
                    None => PutMode::Create,
                };
                let opts = PutOptions {
                    mode,
                    ..PutOptions::default()
                };
                let payload = PutPayload::from(text.clone().into_bytes());
                match store.put_opts(&path, payload, opts).await {
                    Ok(_) => return Ok(()),
                    // Another writer changed the card: read and merge again.
                    Err(
                        object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. },
                    ) => {}
                    Err(object_store::Error::NotImplemented { .. }) => {
                        return store
                            .put(&path, PutPayload::from(text.into_bytes()))
                            .await
                            .map(drop)
                            .map_err(|e| store_error("writing the dataset card", e));
                    }
                    Err(e) => return Err(store_error("writing the dataset card", e)),
                }
            }
            Err(FileSinkError::Task {
                window: window.to_owned(),
                reason: format!(
                    "the dataset card {label} changed under each of {ATTEMPTS} conditional writes; it is tried again with the window"
                ),
            })
        }
    }
}

/// The card and the version to update it from, or `(None, None)` if there
/// is none.
async fn read(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
) -> Result<(Option<String>, Option<UpdateVersion>), object_store::Error> {
    let got = match store.get_opts(path, GetOptions::default()).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok((None, None)),
        Err(e) => return Err(e),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    if got.meta.size > MAX_CARD_BYTES {
        return Err(object_store::Error::Generic {
            store: "dataset card",
            source: format!("the card is larger than {MAX_CARD_BYTES} bytes").into(),
        });
    }
    let bytes = got.bytes().await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| object_store::Error::Generic {
        store: "dataset card",
        source: Box::new(e),
    })?;
    Ok((Some(text), Some(version)))
}
