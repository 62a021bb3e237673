//! The example's configuration file: parsed strictly (unknown keys, bad
//! durations and bad names are errors that name the key and line), with
//! secrets only from the environment, and the process's shard from
//! `MEATHOOK_SHARD`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The pipelines this example knows: NEA station-reading APIs.
pub(crate) const KNOWN_APIS: [&str; 3] = ["air_temperature", "rainfall", "relative_humidity"];

/// The variable naming this process's shard: it runs the collectors whose
/// `shard` is that number. On Kubernetes, the pod's index.
pub(crate) const SHARD_VAR: &str = "MEATHOOK_SHARD";

/// `examples/meathook.toml`, parsed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where each pipeline's spool lives: `spool_dir/<pipeline>`.
    pub(crate) spool_dir: PathBuf,
    /// The spool tier's windows and caps.
    pub(crate) flush: Flush,
    /// Where delivered windows go.
    #[serde(default)]
    pub(crate) sink: Sinks,
    /// The NEA API.
    #[serde(default)]
    pub(crate) api: Api,
    /// Metrics exporters.
    #[serde(default)]
    pub(crate) metrics: Metrics,
    /// What happens on SIGTERM / ctrl-c.
    #[serde(default)]
    pub(crate) shutdown: Shutdown,
    /// Where every delivered file is recorded.
    #[serde(default)]
    pub(crate) catalog: crate::catalog::CatalogSection,
    /// A day's files compacted into one per pipeline.
    #[serde(default)]
    pub(crate) compaction: Compaction,
    /// One pipeline per entry, keyed by the NEA API it polls.
    pub(crate) collectors: BTreeMap<String, Collector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Flush {
    #[serde(deserialize_with = "duration")]
    pub(crate) every: Duration,
    pub(crate) max_records: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sinks {
    pub(crate) files: Option<Files>,
    /// The old spelling of `[sink.files]`: read with a warning, and moved
    /// into `files` when the file is loaded.
    local: Option<Local>,
    pub(crate) huggingface: Option<HuggingFace>,
}

/// `[sink.files]`, the default destination: parquet files in a local
/// dataset directory or an object store.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Files {
    /// A directory, or a URL the file sink understands (`s3://`, `gs://`,
    /// `az://`, `file://`, `memory://`).
    pub(crate) destination: String,
    /// How folders are named.
    #[serde(default)]
    pub(crate) layout: LayoutName,
}

/// `layout = "folders"` (`data/{pipeline}/{date}/`, the default) or
/// `"hive"` (`data/pipeline={pipeline}/date={date}/`).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LayoutName {
    #[default]
    Folders,
    Hive,
}

impl LayoutName {
    pub(crate) fn layout(self) -> meathook::files::layout::Layout {
        match self {
            Self::Folders => meathook::files::layout::Layout::Folders,
            Self::Hive => meathook::files::layout::Layout::Hive,
        }
    }
}

/// `[sink.local] dir`, what `[sink.files] destination` was called first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Local {
    dir: String,
}

/// A HuggingFace dataset; when set it replaces `[sink.files]`. The token
/// comes from `HF_TOKEN` only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HuggingFace {
    /// `namespace/name`.
    pub(crate) repo: String,
    #[serde(default = "main_branch")]
    pub(crate) branch: String,
    /// Defaults to `https://huggingface.co`.
    pub(crate) endpoint: Option<String>,
    /// Create the dataset at start-up if it does not exist.
    #[serde(default)]
    pub(crate) create: bool,
    /// Whether a created dataset is private.
    #[serde(default = "yes")]
    pub(crate) private: bool,
    /// The commit budget of the repository (the Hub allows about 128).
    #[serde(default = "hundred")]
    pub(crate) commits_per_hour: usize,
    /// A folder inside the repository holding `data/`.
    pub(crate) path_prefix: Option<String>,
    /// How folders are named.
    #[serde(default)]
    pub(crate) layout: LayoutName,
}

fn yes() -> bool {
    true
}

fn hundred() -> usize {
    100
}

fn main_branch() -> String {
    "main".to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Api {
    /// Defaults to NEA's public endpoint.
    pub(crate) base_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Metrics {
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) textfile: Option<PathBuf>,
}

/// `[compaction]`: each finished day's files of a pipeline compacted into
/// one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Compaction {
    /// `None`: on for a local directory and a HuggingFace dataset, off for
    /// an object store.
    pub(crate) enabled: Option<bool>,
    /// How often to look for days to compact.
    #[serde(deserialize_with = "duration", default = "one_hour")]
    pub(crate) every: Duration,
    /// How long after a day ends its files are compacted.
    #[serde(deserialize_with = "duration", default = "two_hours")]
    pub(crate) horizon: Duration,
    /// With a HuggingFace dataset: squash the branch's history this often
    /// (unset: never; irreversible, see `HubCompactor::squash_history`).
    #[serde(default, deserialize_with = "some_duration")]
    pub(crate) squash_history: Option<Duration>,
}

impl Default for Compaction {
    fn default() -> Self {
        Self {
            enabled: None,
            every: one_hour(),
            horizon: two_hours(),
            squash_history: None,
        }
    }
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

fn two_hours() -> Duration {
    Duration::from_secs(7200)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Shutdown {
    #[serde(deserialize_with = "duration", default = "thirty_seconds")]
    pub(crate) deadline: Duration,
    #[serde(default)]
    pub(crate) drain: DrainMode,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            deadline: thirty_seconds(),
            drain: DrainMode::default(),
        }
    }
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DrainMode {
    #[default]
    Everything,
    KeepActiveWindow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Collector {
    #[serde(deserialize_with = "duration")]
    pub(crate) interval: Duration,
    /// The pipeline's name; defaults to the collector's key.
    pub(crate) name: Option<String>,
    /// The shard that runs this pipeline: only the process whose
    /// `MEATHOOK_SHARD` is this number. Unset everywhere: every process
    /// runs every collector.
    pub(crate) shard: Option<u32>,
}

fn some_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let parsed = humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "bad duration {text:?}: {e} (write e.g. \"30s\", \"5m\", \"1h\")"
        ))
    })?;
    if parsed.is_zero() {
        return Err(serde::de::Error::custom(format!(
            "bad duration {text:?}: must be more than zero"
        )));
    }
    Ok(parsed)
}

/// A configuration that cannot be used; the message names the file, the key
/// and, where the parser knows it, the line.
#[derive(Debug)]
pub(crate) struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks `path`; `hf_token` is the `HF_TOKEN` variable's
    /// value. Keeps only this process's collectors when they are sharded
    /// (`MEATHOOK_SHARD`, read here like the catalog reads `DATABASE_URL`).
    pub(crate) fn load(path: &Path, hf_token: Option<&str>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            ConfigError(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        config.rename_sink_local(path, &text)?;
        config.check(path, &text, hf_token)?;
        let shard = std::env::var_os(SHARD_VAR).map(|v| v.to_string_lossy().into_owned());
        config.select_shard(path, &text, shard.as_deref())?;
        Ok(config)
    }

    /// Moves `[sink.local] dir` into `[sink.files] destination`, with a
    /// warning: a file written for an earlier release keeps working, and
    /// says how to spell it now.
    fn rename_sink_local(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let Some(local) = self.sink.local.take() else {
            return Ok(());
        };
        let file = path.display();
        let line = line_of(text, "[sink.local]")
            .map(|l| format!(", line {l}"))
            .unwrap_or_default();
        if self.sink.files.is_some() {
            return Err(ConfigError(format!(
                "{file}: [sink.local]{line} and [sink.files] both name the destination: keep [sink.files] \
                 (`[sink.local] dir` is its old spelling)"
            )));
        }
        tracing::warn!(
            "{file}: [sink.local]{line}: `[sink.local] dir` is now `[sink.files] destination` \
             (same meaning); the old name is deprecated and will be refused in a later release"
        );
        self.sink.files = Some(Files {
            destination: local.dir,
            layout: LayoutName::default(),
        });
        Ok(())
    }

    fn check(&self, path: &Path, text: &str, hf_token: Option<&str>) -> Result<(), ConfigError> {
        let at = |key: &str| {
            line_of(text, key)
                .map(|l| format!(", line {l}"))
                .unwrap_or_default()
        };
        let file = path.display();
        if self.collectors.is_empty() {
            return Err(ConfigError(format!(
                "{file}: [collectors] is empty: add at least one of {}",
                KNOWN_APIS.join(", ")
            )));
        }
        for (key, collector) in &self.collectors {
            if !KNOWN_APIS.contains(&key.as_str()) {
                return Err(ConfigError(format!(
                    "{file}: unknown collector `collectors.{key}`{}: known NEA APIs are {}",
                    at(&format!("[collectors.{key}]")),
                    KNOWN_APIS.join(", ")
                )));
            }
            let name = collector.name.as_deref().unwrap_or(key);
            if let Some(reason) = bad_name(name) {
                return Err(ConfigError(format!(
                    "{file}: `collectors.{key}.name` = {name:?}{}: {reason}",
                    at("name")
                )));
            }
        }
        if self.flush.max_records == Some(0) {
            return Err(ConfigError(format!(
                "{file}: `flush.max_records`{} must be more than zero",
                at("max_records")
            )));
        }
        meathook::FlushPolicy::every(self.flush.every)
            .map_err(|e| ConfigError(format!("{file}: `flush.every`{}: {e}", at("every"))))?;
        if let Some(files) = &self.sink.files {
            meathook::parquet::Destination::parse(&files.destination).map_err(|e| {
                ConfigError(format!(
                    "{file}: `sink.files.destination`{}: {e}",
                    at("destination")
                ))
            })?;
        }
        if let Some(hf) = &self.sink.huggingface {
            if meathook::hf::RepoId::parse(&hf.repo).is_none() {
                return Err(ConfigError(format!(
                    "{file}: `sink.huggingface.repo` = {:?}{}: write the dataset as namespace/name",
                    hf.repo,
                    at("repo")
                )));
            }
            if let Some(endpoint) = &hf.endpoint
                && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
            {
                return Err(ConfigError(format!(
                    "{file}: `sink.huggingface.endpoint` = {endpoint:?}{}: an http:// or https:// URL",
                    at("endpoint")
                )));
            }
            if hf.commits_per_hour == 0 {
                return Err(ConfigError(format!(
                    "{file}: `sink.huggingface.commits_per_hour`{} must be more than zero",
                    at("commits_per_hour")
                )));
            }
            if hf_token.is_none_or(|t| t.trim().is_empty()) {
                return Err(ConfigError(format!(
                    "{file}: [sink.huggingface]{} is configured for {} (branch {}) but HF_TOKEN is not set: export a token with write access to that repo, or remove the section",
                    at("[sink.huggingface]"),
                    hf.repo,
                    hf.branch
                )));
            }
        }
        self.catalog
            .check(&file.to_string(), at)
            .map_err(ConfigError)?;
        if self.compaction.squash_history.is_some()
            && !matches!(self.compaction_place(), Some(CompactionPlace::Hub))
        {
            return Err(ConfigError(format!(
                "{file}: `compaction.squash_history`{} squashes a HuggingFace dataset's history: it needs [sink.huggingface] and compaction on",
                at("squash_history")
            )));
        }
        Ok(())
    }

    /// Keeps the collectors of this process's shard, `shard` being the
    /// `MEATHOOK_SHARD` variable's value. Sharded collectors need the
    /// variable and unsharded ones refuse it, so that no pipeline runs in
    /// two processes by mistake.
    fn select_shard(
        &mut self,
        path: &Path,
        text: &str,
        shard: Option<&str>,
    ) -> Result<(), ConfigError> {
        let file = path.display();
        let sharded: Vec<u32> = self.collectors.values().filter_map(|c| c.shard).collect();
        if sharded.is_empty() {
            return match shard {
                None => Ok(()),
                Some(value) => Err(ConfigError(format!(
                    "{file}: {SHARD_VAR} = {value:?} is set but no collector names a shard: \
                     give each [collectors.NAME] a `shard = N`, or unset {SHARD_VAR} \
                     (every process would run every pipeline)"
                ))),
            };
        }
        if let Some((key, _)) = self.collectors.iter().find(|(_, c)| c.shard.is_none()) {
            return Err(ConfigError(format!(
                "{file}: `collectors.{key}`{} has no `shard` but other collectors do: \
                 give every collector a shard, so that each pipeline runs in exactly one process",
                line_of(text, &format!("[collectors.{key}]"))
                    .map(|l| format!(", line {l}"))
                    .unwrap_or_default()
            )));
        }
        let mut shards = sharded;
        shards.sort_unstable();
        shards.dedup();
        let known = shards
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let Some(value) = shard else {
            return Err(ConfigError(format!(
                "{file}: the collectors are sharded (shards {known}) but {SHARD_VAR} is not set: \
                 set it to this process's shard (in the StatefulSet, from the pod-index label)"
            )));
        };
        let Ok(number) = value.trim().parse::<u32>() else {
            return Err(ConfigError(format!(
                "{file}: {SHARD_VAR} = {value:?} is not a shard number: the shards are {known}"
            )));
        };
        if !shards.contains(&number) {
            return Err(ConfigError(format!(
                "{file}: {SHARD_VAR} = {number} but no collector has `shard = {number}`: \
                 the shards are {known}; give this shard collectors, or run fewer processes"
            )));
        }
        self.collectors.retain(|_, c| c.shard == Some(number));
        let names: Vec<&str> = self
            .collectors
            .iter()
            .map(|(key, c)| c.name.as_deref().unwrap_or(key))
            .collect();
        tracing::info!(
            shard = number,
            pipelines = %names.join(", "),
            "this process runs shard {number} (the shards are {known})"
        );
        Ok(())
    }

    /// How the destination's folders are named.
    pub(crate) fn layout(&self) -> meathook::files::layout::Layout {
        match (&self.sink.huggingface, &self.sink.files) {
            (Some(hf), _) => hf.layout.layout(),
            (None, Some(files)) => files.layout.layout(),
            (None, None) => meathook::files::layout::Layout::default(),
        }
    }

    /// Where files go: `[sink.files] destination`, or a dataset directory
    /// beside the spools.
    pub(crate) fn destination(&self) -> String {
        match &self.sink.files {
            Some(files) => files.destination.clone(),
            None => self
                .spool_dir
                .parent()
                .unwrap_or(Path::new("."))
                .join("dataset")
                .to_string_lossy()
                .into_owned(),
        }
    }
}

impl Config {
    /// Where compaction runs, if it runs: on by default for a local
    /// directory and a HuggingFace dataset (one commit a day folder,
    /// counted against the commit budget), off by default for an object
    /// store (not atomic: see `meathook::parquet::StoreCompactor`).
    pub(crate) fn compaction_place(&self) -> Option<CompactionPlace> {
        if self.compaction.enabled == Some(false) {
            return None;
        }
        if self.sink.huggingface.is_some() {
            return Some(CompactionPlace::Hub);
        }
        match meathook::parquet::Destination::parse(&self.destination()) {
            Ok(meathook::parquet::Destination::Local { root }) => {
                Some(CompactionPlace::Local(root))
            }
            Ok(destination) => (self.compaction.enabled == Some(true))
                .then_some(CompactionPlace::Store(destination)),
            Err(_) => None,
        }
    }
}

/// Where the compaction task works.
pub(crate) enum CompactionPlace {
    /// A local dataset directory.
    Local(PathBuf),
    /// An object store.
    Store(meathook::parquet::Destination),
    /// The HuggingFace dataset of `[sink.huggingface]`.
    Hub,
}

/// Why a pipeline name cannot be used in paths, if it cannot.
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a pipeline name cannot be empty")
    } else if name.contains('/') || name.contains('\\') {
        Some("a pipeline name cannot contain a path separator")
    } else if name.contains("..") {
        Some("a pipeline name cannot contain `..`")
    } else if meathook::contracts::name::check_pipeline_name(name).is_err() {
        Some(
            "a pipeline name must fit in a file name: at most 240 bytes once escaped, where each byte other than ASCII letters, digits, `-` and `_` counts three",
        )
    } else {
        None
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}
