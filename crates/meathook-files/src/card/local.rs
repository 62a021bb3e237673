//! The dataset card of a local dataset directory, kept up to date by every
//! writer of the directory at once.
//!
//! **Invariant:** `README.md` is only ever replaced whole (written to a
//! temporary file, fsynced, renamed over it, the directory fsynced), under
//! an exclusive `flock` on `.meathook-card.lock` beside it, and re-read
//! under that lock before it is merged: several sinks in one process, or
//! several processes, never lose another pipeline's config or the user's
//! text, and a reader never sees a torn card. A crash leaves either the old
//! card or the new one (and perhaps a stale temporary file, replaced by the
//! next writer).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{CARD_PATH, declared_configs, merge};
use crate::layout;

/// The lock file every writer of a directory's card holds while it merges.
pub const LOCK_FILE: &str = ".meathook-card.lock";

/// The temporary name a new card is written under before the rename.
const TMP_FILE: &str = ".README.md.meathook-tmp";

/// The largest card read (the Hub's limit for a dataset card).
pub const MAX_CARD_BYTES: u64 = 10 << 20;

/// Adds a config for `pipeline` (files ending in `extension`) to the card
/// of the dataset directory `root`, unless it has one. Returns whether the
/// card was rewritten.
///
/// Blocks while another writer holds the card's lock: call it from a
/// blocking thread.
///
/// # Errors
///
/// When the card cannot be read (larger than [`MAX_CARD_BYTES`], not UTF-8,
/// not a regular file) or the new one cannot be written durably.
pub fn ensure(root: &Path, pipeline: &str, extension: &str) -> io::Result<bool> {
    ensure_all(
        root,
        &[(
            pipeline.to_owned(),
            layout::pipeline_glob(pipeline, extension),
        )],
    )
}

/// [`ensure`] for several pipelines at once, each with its file glob: one
/// rewrite of the card adds every missing config.
pub fn ensure_all(root: &Path, wanted: &[(String, String)]) -> io::Result<bool> {
    let card = root.join(CARD_PATH);
    if read(&card)?.is_some_and(|text| {
        let declared = declared_configs(&text);
        wanted
            .iter()
            .all(|(p, _)| declared.contains(&super::config_name(p)))
    }) {
        return Ok(false);
    }
    fs::create_dir_all(root)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(root.join(LOCK_FILE))?;
    lock.lock()?;
    let existing = read(&card)?;
    let Some(text) = merge(existing.as_deref(), wanted) else {
        return Ok(false);
    };
    let tmp = root.join(TMP_FILE);
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &card)?;
    crate::local::sync_dir(root)?;
    drop(lock);
    Ok(true)
}

/// The card at `path`, `None` if there is none.
fn read(path: &Path) -> io::Result<Option<String>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut bytes = Vec::new();
    read_capped(file, &mut bytes)?;
    String::from_utf8(bytes).map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

fn read_capped(file: File, out: &mut Vec<u8>) -> io::Result<()> {
    file.take(MAX_CARD_BYTES + 1).read_to_end(out)?;
    if out.len() as u64 > MAX_CARD_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the dataset card is larger than {MAX_CARD_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_config_is_added_once_and_user_text_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let card = dir.path().join(CARD_PATH);
        fs::write(&card, "---\nlicense: mit\n---\n# Weather\n\nNotes.\n").unwrap();
        assert!(ensure(dir.path(), "rainfall", "parquet").unwrap());
        assert!(!ensure(dir.path(), "rainfall", "parquet").unwrap());
        let text = fs::read_to_string(&card).unwrap();
        assert!(text.starts_with("---\nlicense: mit\nconfigs:\n- config_name: rainfall\n"));
        assert!(
            text.contains("path: \"data/rainfall/**/*.parquet\""),
            "{text}"
        );
        assert!(text.ends_with("---\n# Weather\n\nNotes.\n"), "{text}");
        assert!(!dir.path().join(TMP_FILE).exists());
    }

    #[test]
    fn a_stale_temporary_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TMP_FILE), "half a card").unwrap();
        assert!(ensure(dir.path(), "a", "csv").unwrap());
        let text = fs::read_to_string(dir.path().join(CARD_PATH)).unwrap();
        assert_eq!(declared_configs(&text), ["a"]);
        assert!(text.contains("data/a/**/*.csv"));
    }

    #[test]
    fn a_card_that_is_not_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(CARD_PATH)).unwrap();
        assert!(ensure(dir.path(), "a", "parquet").is_err());
        // A card that is a symlink is not followed, nor its target written.
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.md");
        fs::write(&elsewhere, "# Not a card\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(CARD_PATH)).unwrap();
        assert!(ensure(dir.path(), "a", "parquet").is_err());
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "# Not a card\n");
    }

    /// Threads and processes alike go through the lock: 16 threads, each
    /// with its own open of the lock file, each add a pipeline; every
    /// config survives and the user's text is kept.
    #[test]
    fn concurrent_writers_lose_no_config() {
        let dir = tempfile::tempdir().unwrap();
        let card = dir.path().join(CARD_PATH);
        fs::write(&card, "# Mine\n").unwrap();
        std::thread::scope(|s| {
            for i in 0..16 {
                let root = dir.path();
                s.spawn(move || ensure(root, &format!("p{i:02}"), "parquet").unwrap());
            }
        });
        let text = fs::read_to_string(&card).unwrap();
        let mut declared = declared_configs(&text);
        declared.sort();
        let want: Vec<String> = (0..16).map(|i| format!("p{i:02}")).collect();
        assert_eq!(declared, want);
        assert!(text.ends_with("---\n# Mine\n"), "{text}");
    }
}
