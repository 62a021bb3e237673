//! Where files go: a destination URL turned into a local directory or an
//! `object_store` backend.
//!
//! | URL | destination | cargo feature |
//! |---|---|---|
//! | `/var/lib/data`, `./data`, `file:///var/lib/data` | local directory (the default; atomic writes, see [`local`](crate::local)) | always |
//! | `s3://bucket/prefix` | Amazon S3 or an S3-compatible store, configured from `AWS_*` variables | `s3` |
//! | `gs://bucket/prefix` | Google Cloud Storage, from `GOOGLE_*` variables | `gcs` |
//! | `az://container/prefix` | Azure Blob Storage, from `AZURE_*` variables | `azure` |
//! | `memory://` | an in-process store, for tests and examples | always |
//!
//! A cloud URL given to a build without its feature is refused with
//! [`DestinationError::FeatureDisabled`], which names the feature to turn on.
//!
//! **Architecture invariant:** credentials come from the environment only,
//! through `object_store`'s `from_env` builders; they never appear in this
//! crate's `Debug` output, errors or files. [`Destination`]'s `Debug` shows
//! the scheme and the bucket, nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
#[cfg(feature = "s3")]
use object_store::aws::AmazonS3Builder;
#[cfg(feature = "azure")]
use object_store::azure::MicrosoftAzureBuilder;
#[cfg(feature = "gcs")]
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use url::Url;

/// Why a destination URL was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// The URL does not parse. What to do: check the spelling; a plain path
    /// needs no scheme.
    #[error("invalid destination url `{url}`: {reason}")]
    BadUrl {
        /// The URL as given (a URL with a password is not echoed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is none of `file`, `s3`, `gs`, `az`, `memory` (whether or
    /// not the cloud ones are compiled in).
    #[error(
        "unknown destination scheme `{scheme}`; use a local path, file://, s3://, gs://, az:// or memory://"
    )]
    UnknownScheme {
        /// The scheme.
        scheme: String,
    },
    /// The URL's store is one this build was compiled without: `s3://`,
    /// `gs://` and `az://` each need a cargo feature (`s3`, `gcs`, `azure`,
    /// on `meathook` or `meathook-parquet`). What to do: turn the feature on
    /// and rebuild.
    #[error(
        "`{scheme}://` destinations are not compiled into this build; turn on the `{feature}` cargo feature \
         of meathook (or meathook-parquet), e.g. `meathook = {{ version = \"…\", features = [\"{feature}\"] }}`"
    )]
    FeatureDisabled {
        /// The scheme as given (`s3`, `gs`, `az`, …).
        scheme: String,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// The URL names no bucket or container (`s3:///x`).
    #[error(
        "destination url `{url}` names no bucket or container; write it as {scheme}://BUCKET/PREFIX"
    )]
    MissingBucket {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: &'static str,
    },
    /// The store's builder refused its configuration (a missing region,
    /// malformed credentials in the environment, …). The message comes from
    /// `object_store` and names the setting, never its value.
    #[error("cannot configure {scheme} store for bucket `{bucket}`: {source}")]
    Store {
        /// The scheme.
        scheme: &'static str,
        /// The bucket or container.
        bucket: String,
        /// What the builder reported.
        source: object_store::Error,
    },
}

/// Why a destination cannot be written to now ([`Destination::probe`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The local directory (or, while it does not exist, the nearest
    /// directory above it, where it would be created) cannot be written.
    #[error("cannot write under {path}: {source}")]
    Local {
        /// The directory tried.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The store did not answer, or refused the credentials.
    #[error("{label}: {source}")]
    Remote {
        /// The store, as `s3://bucket/prefix`.
        label: String,
        /// What the store's client said (never a credential).
        #[source]
        source: object_store::Error,
    },
}

/// A parsed destination: a local directory or a remote object store with a
/// prefix inside it.
#[derive(Clone)]
pub enum Destination {
    /// A directory on this machine.
    Local {
        /// The directory files are written under.
        root: PathBuf,
    },
    /// An object store.
    Remote {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The prefix every path is written under (may be empty).
        prefix: ObjectPath,
        /// What to call it in messages: `s3://bucket`, `memory://`, …
        label: String,
    },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { root } => f.debug_struct("Local").field("root", root).finish(),
            Self::Remote { prefix, label, .. } => f
                .debug_struct("Remote")
                .field("store", label)
                .field("prefix", &prefix.as_ref())
                .finish(),
        }
    }
}

impl Destination {
    /// Parses `url`: a local path or `file:///path` (the default; atomic
    /// writes, see [`local`](crate::local)), `s3://bucket/prefix` (S3 or an
    /// S3-compatible store, from `AWS_*` variables), `gs://bucket/prefix`
    /// (from `GOOGLE_*`), `az://container/prefix` (from `AZURE_*`), or
    /// `memory://` (in-process, for tests). Remote stores read their
    /// credentials and settings from the environment only. The cloud
    /// schemes need the cargo features `s3`, `gcs` and `azure`.
    ///
    /// # Errors
    ///
    /// [`DestinationError`] naming what is wrong with the URL;
    /// [`DestinationError::FeatureDisabled`] for a cloud scheme this build
    /// was compiled without.
    pub fn parse(url: &str) -> Result<Self, DestinationError> {
        if !url.contains("://") {
            if url.is_empty() {
                return Err(DestinationError::BadUrl {
                    url: String::new(),
                    reason: "empty; give a directory or a url".into(),
                });
            }
            return Ok(Self::Local {
                root: PathBuf::from(url),
            });
        }
        let parsed = Url::parse(url).map_err(|e| DestinationError::BadUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        if parsed.password().is_some() {
            return Err(DestinationError::BadUrl {
                url: redact(url),
                reason: "credentials in the url are refused; set them in the environment".into(),
            });
        }
        let cloud = match parsed.scheme() {
            "file" => {
                let root = parsed
                    .to_file_path()
                    .map_err(|()| DestinationError::BadUrl {
                        url: url.to_owned(),
                        reason: "not an absolute local path".into(),
                    })?;
                return Ok(Self::Local { root });
            }
            "memory" => {
                return Ok(Self::Remote {
                    store: Arc::new(InMemory::new()),
                    prefix: prefix_of(&parsed, url)?,
                    label: "memory://".into(),
                });
            }
            "s3" | "s3a" => Cloud::S3,
            "gs" => Cloud::Gcs,
            "az" | "azure" | "abfs" | "abfss" => Cloud::Azure,
            other => {
                return Err(DestinationError::UnknownScheme {
                    scheme: other.to_owned(),
                });
            }
        };
        if !cloud.compiled_in() {
            return Err(DestinationError::FeatureDisabled {
                scheme: parsed.scheme().to_owned(),
                feature: cloud.feature(),
            });
        }
        let scheme = cloud.scheme();
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(DestinationError::MissingBucket {
                url: url.to_owned(),
                scheme,
            });
        }
        let store = cloud_store(cloud, &bucket)?;
        Ok(Self::Remote {
            store,
            prefix: prefix_of(&parsed, url)?,
            label: format!("{scheme}://{bucket}"),
        })
    }

    /// A destination in a store configured by the caller, under `prefix`.
    ///
    /// # Errors
    ///
    /// [`DestinationError::BadUrl`] when `prefix` is not a valid object path.
    pub fn store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        label: impl Into<String>,
    ) -> Result<Self, DestinationError> {
        let prefix = ObjectPath::parse(prefix).map_err(|e| DestinationError::BadUrl {
            url: prefix.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self::Remote {
            store,
            prefix,
            label: label.into(),
        })
    }

    /// The destination as delivery records name it: the local root, or the
    /// store URL with its prefix.
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Local { root } => root.display().to_string(),
            Self::Remote { .. } => self.describe("").trim_end_matches('/').to_owned(),
        }
    }

    /// Where files are encoded before they are published: `.meathook-tmp`
    /// under a local root (same file system, so publishing is a link), or
    /// for a remote store `remote_scratch` (by default
    /// `{temp dir}/meathook-upload`).
    pub(crate) fn scratch_dir(&self, remote_scratch: Option<PathBuf>) -> PathBuf {
        match (self, remote_scratch) {
            (Self::Local { root }, _) => root.join(crate::local::SCRATCH_DIR),
            (Self::Remote { .. }, Some(dir)) => dir,
            (Self::Remote { .. }, None) => std::env::temp_dir().join("meathook-upload"),
        }
    }

    /// Checks that files could be written here now, changing nothing a
    /// reader sees: locally, a probe file is created and removed in the
    /// directory (or, while it does not exist, in the nearest directory
    /// above it, where a sink would create it); in an object store, the
    /// prefix is listed (one page), which proves the bucket exists and the
    /// store takes the credentials — it needs the list permission
    /// (`s3:ListBucket`), which the sink itself does not. For a `--check`
    /// before a deployment.
    ///
    /// # Errors
    ///
    /// [`ProbeError`] with the file system's or the store's cause.
    pub async fn probe(&self) -> Result<(), ProbeError> {
        match self {
            Self::Local { root } => {
                let root = root.clone();
                meathook_core::blocking(move || probe_local(&root))
                    .await
                    .unwrap_or_else(|join| {
                        Err(ProbeError::Local {
                            path: PathBuf::new(),
                            source: std::io::Error::other(join.to_string()),
                        })
                    })
            }
            Self::Remote { store, prefix, .. } => {
                // A listing, not a lookup: a lookup in a missing bucket is
                // a plain 404, like a missing key.
                let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
                match store.list_with_delimiter(prefix).await {
                    Ok(_) => Ok(()),
                    Err(source) => Err(ProbeError::Remote {
                        label: self.describe("").trim_end_matches('/').to_owned(),
                        source,
                    }),
                }
            }
        }
    }

    /// Where a relative layout path lands, for messages: a local path or
    /// `scheme://bucket/prefix/path`.
    pub fn describe(&self, relative: &str) -> String {
        match self {
            Self::Local { root } => root.join(relative).display().to_string(),
            Self::Remote { prefix, label, .. } => {
                let sep = if label.ends_with('/') { "" } else { "/" };
                if prefix.as_ref().is_empty() {
                    format!("{label}{sep}{relative}")
                } else {
                    format!("{label}{sep}{}/{relative}", prefix.as_ref())
                }
            }
        }
    }
}

/// Creates and removes a probe file in `root`, or in the nearest existing
/// directory above it.
fn probe_local(root: &Path) -> Result<(), ProbeError> {
    let dir = root
        .ancestors()
        .find(|d| d.as_os_str().is_empty() || d.exists())
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .unwrap_or(root);
    let fail = |source| ProbeError::Local {
        path: dir.to_owned(),
        source,
    };
    if !dir.is_dir() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let probe = dir.join(format!(".meathook-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

/// The cloud stores, each compiled in by its own cargo feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    S3,
    Gcs,
    Azure,
}

impl Cloud {
    /// The scheme used in labels and messages.
    const fn scheme(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Gcs => "gs",
            Self::Azure => "az",
        }
    }

    /// The cargo feature (of meathook and of meathook-parquet) that adds it.
    const fn feature(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Gcs => "gcs",
            Self::Azure => "azure",
        }
    }

    /// Whether this build has the backend.
    const fn compiled_in(self) -> bool {
        match self {
            Self::S3 => cfg!(feature = "s3"),
            Self::Gcs => cfg!(feature = "gcs"),
            Self::Azure => cfg!(feature = "azure"),
        }
    }
}

/// The store for `bucket`, configured from the environment. A backend that
/// is not compiled in is [`DestinationError::FeatureDisabled`] (checked
/// before, by [`Destination::parse`]; repeated here so every arm exists in
/// every build).
fn cloud_store(cloud: Cloud, bucket: &str) -> Result<Arc<dyn ObjectStore>, DestinationError> {
    #[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
    let store_error = |source| DestinationError::Store {
        scheme: cloud.scheme(),
        bucket: bucket.to_owned(),
        source,
    };
    match cloud {
        #[cfg(feature = "s3")]
        Cloud::S3 => Ok(Arc::new(
            AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(store_error)?,
        )),
        #[cfg(feature = "gcs")]
        Cloud::Gcs => Ok(Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(store_error)?,
        )),
        #[cfg(feature = "azure")]
        Cloud::Azure => Ok(Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_container_name(bucket)
                .build()
                .map_err(store_error)?,
        )),
        #[cfg(not(all(feature = "s3", feature = "gcs", feature = "azure")))]
        _ => {
            let _ = bucket;
            Err(DestinationError::FeatureDisabled {
                scheme: cloud.scheme().to_owned(),
                feature: cloud.feature(),
            })
        }
    }
}

fn prefix_of(parsed: &Url, url: &str) -> Result<ObjectPath, DestinationError> {
    ObjectPath::from_url_path(parsed.path()).map_err(|e| DestinationError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// A URL with anything between `://` and `@` removed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://***@{}", &url[..start], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms_are_recognised() {
        assert!(
            matches!(Destination::parse("./out").unwrap(), Destination::Local { root } if root == std::path::Path::new("./out"))
        );
        assert!(
            matches!(Destination::parse("file:///srv/data").unwrap(), Destination::Local { root } if root == std::path::Path::new("/srv/data"))
        );
        let mem = Destination::parse("memory:///some/prefix").unwrap();
        assert_eq!(mem.describe("data/x"), "memory://some/prefix/data/x");
    }

    #[cfg(feature = "s3")]
    #[test]
    fn s3_urls_are_recognised() {
        let s3 = Destination::parse("s3://bucket/a/b").unwrap();
        assert_eq!(s3.describe("data/x"), "s3://bucket/a/b/data/x");
        assert!(format!("{s3:?}").contains("s3://bucket"));
        let s3a = Destination::parse("s3a://bucket").unwrap();
        assert_eq!(s3a.describe("data/x"), "s3://bucket/data/x");
    }

    /// Each cloud scheme either builds its store or, without its feature,
    /// is refused with a message naming the feature to turn on: in every
    /// feature combination, so `cargo test -p meathook-parquet` (no
    /// features) checks the refusal and `--all-features` the stores.
    #[test]
    fn cloud_schemes_need_their_feature() {
        for (url, cloud) in [
            ("s3://bucket/a", Cloud::S3),
            ("s3a://bucket/a", Cloud::S3),
            ("gs://bucket/a", Cloud::Gcs),
            ("az://container/a", Cloud::Azure),
            ("abfss://container/a", Cloud::Azure),
        ] {
            let parsed = Destination::parse(url);
            if cloud.compiled_in() {
                // A store builder may still refuse the configuration it
                // finds in the environment; it must not be the feature.
                if let Err(e) = parsed {
                    assert!(
                        !matches!(e, DestinationError::FeatureDisabled { .. }),
                        "{url}: {e}"
                    );
                }
                continue;
            }
            let e = parsed.unwrap_err();
            let DestinationError::FeatureDisabled { scheme, feature } = &e else {
                panic!("{url}: {e}");
            };
            assert_eq!(*feature, cloud.feature());
            assert!(url.starts_with(&format!("{scheme}://")), "{url}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!(
                    "`{scheme}://` destinations are not compiled into this build"
                )),
                "{msg}"
            );
            assert!(
                msg.contains(&format!("turn on the `{}` cargo feature", cloud.feature())),
                "{msg}"
            );
            // Checked before the bucket: the missing feature is the news.
            let e = Destination::parse(&format!("{scheme}:///x")).unwrap_err();
            assert!(matches!(e, DestinationError::FeatureDisabled { .. }), "{e}");
        }
    }

    #[test]
    fn the_feature_message_says_what_to_do() {
        let e = DestinationError::FeatureDisabled {
            scheme: "s3".into(),
            feature: "s3",
        }
        .to_string();
        assert_eq!(
            e,
            "`s3://` destinations are not compiled into this build; turn on the `s3` cargo feature \
             of meathook (or meathook-parquet), e.g. `meathook = { version = \"…\", features = [\"s3\"] }`"
        );
    }

    #[test]
    fn bad_urls_are_refused_clearly() {
        let e = Destination::parse("ftp://host/x").unwrap_err().to_string();
        assert!(e.contains("unknown destination scheme `ftp`"), "{e}");
        if cfg!(feature = "s3") {
            let e = Destination::parse("s3:///x").unwrap_err().to_string();
            assert!(e.contains("names no bucket"), "{e}");
        }
        let e = Destination::parse("s3://user:hunter2@bucket/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("credentials in the url are refused"), "{e}");
        let e = Destination::parse("").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }
}
