//! The metrics textfile (for node_exporter's textfile collector): written
//! in the Prometheus text format 0.0.4, which that collector parses (in
//! OpenMetrics text every counter would arrive `untyped`), at start, every
//! interval in the background, and a last time at shutdown, each time
//! replaced atomically. Its directory is created if it is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use meathook_core::ErrorChain;
use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::exposition::MetricsFormat;
use crate::metrics::Telemetry;

/// Writes the metrics to `path` now, failing with the path named.
pub(crate) fn write_now(telemetry: &Telemetry, path: &Path) -> Result<(), RuntimeError> {
    write(path, &telemetry.encode_as(MetricsFormat::PrometheusText))
}

/// Rewrites `path` every `every` in the background; a
/// failed write is logged and tried again at the next interval.
pub(crate) fn spawn(path: PathBuf, every: Duration, telemetry: Telemetry) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let text = telemetry.encode_as(MetricsFormat::PrometheusText);
            let path = path.clone();
            let written = meathook_core::blocking(move || write(&path, &text)).await;
            if let Ok(Err(error)) = written {
                tracing::warn!(error = %ErrorChain(&error), "cannot write the metrics textfile; trying again at the next interval");
            }
        }
    })
}

/// Creates `path`'s directory if it is missing, then replaces `path` with
/// `text`.
fn write(path: &Path, text: &str) -> Result<(), RuntimeError> {
    use meathook_files::fs::{Fs as _, StdFs};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        StdFs
            .create_dir_all(dir)
            .map_err(|source| RuntimeError::MetricsTextfileDir {
                dir: dir.to_owned(),
                path: path.to_owned(),
                source,
            })?;
    }
    write_textfile(path, text).map_err(|source| RuntimeError::MetricsTextfile {
        path: path.to_owned(),
        source,
    })
}

/// Replaces `path` atomically: a reader sees the old file or the new one.
/// The temporary file is created anew: whatever sits at its name (a
/// symlink planted in a shared textfile directory included) is removed,
/// never written through.
fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    use meathook_files::fs::{Fs as _, FsFile as _, StdFs};
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    match StdFs.remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = StdFs.create_new(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    drop(file);
    StdFs.rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("meathook-textfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_textfile_never_writes_through_a_planted_symlink() {
        let dir = scratch("symlink");
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.join("meathook.prom");
        std::os::unix::fs::symlink(&victim, dir.join("meathook.prom.tmp")).unwrap();
        write_textfile(&path, "# TYPE x gauge\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# TYPE x gauge\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_directory_is_created_and_the_text_is_prometheus_text() {
        let dir = scratch("missing");
        let path = dir
            .join("node-exporter")
            .join("textfile")
            .join("meathook.prom");
        let telemetry = Telemetry::new();
        telemetry.pipeline("p").collected.inc_by(2);
        write_now(&telemetry, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# TYPE meathook_records_collected_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("meathook_records_collected_total{pipeline=\"p\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_named_with_its_cause() {
        let dir = scratch("blocked");
        std::fs::create_dir_all(&dir).unwrap();
        // A regular file where a directory should be.
        let blocker = dir.join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        let path = blocker.join("sub").join("meathook.prom");
        let error = write_now(&Telemetry::new(), &path).unwrap_err();
        let shown = ErrorChain(&error).to_string();
        assert!(
            matches!(error, RuntimeError::MetricsTextfileDir { .. }),
            "{error:?}"
        );
        assert!(
            shown.starts_with(&format!(
                "cannot create the directory {} for the metrics textfile {}: ",
                blocker.join("sub").display(),
                path.display()
            )),
            "{shown}"
        );
        let cause = std::io::Error::from_raw_os_error(20).to_string(); // ENOTDIR
        assert!(shown.ends_with(&cause), "{shown}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
