//! The metrics textfile (for node_exporter's textfile collector): written
//! at start, every interval in the background, and a last time at
//! shutdown, each time replaced atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::metrics::Telemetry;

/// Writes the metrics to `path` now, failing with the path named.
pub(crate) fn write_now(telemetry: &Telemetry, path: &Path) -> Result<(), RuntimeError> {
    write_textfile(path, &telemetry.encode()).map_err(|source| RuntimeError::MetricsTextfile {
        path: path.to_owned(),
        source,
    })
}

/// Rewrites `path` every `every` in the background; a
/// failed write is logged and tried again at the next interval.
pub(crate) fn spawn(path: PathBuf, every: Duration, telemetry: Telemetry) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let text = telemetry.encode();
            let path = path.clone();
            let written = tokio::task::spawn_blocking(move || write_textfile(&path, &text)).await;
            if let Ok(Err(error)) = written {
                tracing::warn!(%error, "cannot write the metrics textfile");
            }
        }
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

    #[test]
    fn the_textfile_never_writes_through_a_planted_symlink() {
        let dir = std::env::temp_dir().join(format!("meathook-textfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.join("meathook.prom");
        std::os::unix::fs::symlink(&victim, dir.join("meathook.prom.tmp")).unwrap();
        write_textfile(&path, "# EOF\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# EOF\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}
