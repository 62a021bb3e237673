//! Atomic local files: how a file appears under its final name.
//!
//! **Architecture invariant:** a final name only ever holds a complete,
//! fsynced file. A file is encoded into `{root}/.meathook-tmp/{pid}-{start}-{n}.part`
//! (same file system as the destination, so publishing is a link, not a
//! copy), fsynced, then hard-linked to its final name — which fails if the
//! name exists, so two writers can never replace each other's file — and
//! the directory is fsynced. Where the file system has no hard links, the
//! file is renamed after checking the name is free. A crash at any point
//! leaves at most a `.part` file, which the next start removes.
//!
//! Everything here blocks: callers run it on the blocking thread pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The scratch folder under a local destination's root.
pub const SCRATCH_DIR: &str = ".meathook-tmp";
const PART: &str = "part";

static NEXT: AtomicU64 = AtomicU64::new(0);
static INCARNATION: OnceLock<u128> = OnceLock::new();

/// Tells this process apart from an earlier one with the same pid (a
/// restarted container is often pid 1 again).
fn incarnation() -> u128 {
    *INCARNATION.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    })
}

/// A file being written: counts and hashes what goes through it.
#[derive(Debug)]
pub struct ScratchFile {
    path: PathBuf,
    out: BufWriter<File>,
    hash: Sha256,
    len: u64,
}

/// A scratch file after [`ScratchFile::seal`]: complete and fsynced.
#[derive(Debug)]
pub struct Sealed {
    /// Where it is.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
}

impl ScratchFile {
    /// Creates a new scratch file in `dir`, creating `dir` if needed.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "{}-{}-{n}.{PART}",
            std::process::id(),
            incarnation()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            len: 0,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs the file.
    pub fn seal(self) -> io::Result<Sealed> {
        let file = self
            .out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(Sealed {
            path: self.path,
            sha256: self.hash.finalize().into(),
            len: self.len,
        })
    }
}

impl Write for ScratchFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What publishing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The file now exists under its final name.
    Created,
    /// A file with the same bytes was already there; nothing changed.
    AlreadyThere,
    /// A file with different bytes is there; nothing changed.
    Conflict {
        /// The SHA-256 of the file already there.
        existing: [u8; 32],
    },
}

/// Gives `sealed` its final name `target`, unless the name is taken.
/// Removes the scratch file in every case but an error.
pub fn publish(sealed: &Sealed, target: &Path) -> io::Result<Published> {
    let dir = target.parent().unwrap_or(Path::new("."));
    create_dirs_durably(dir)?;
    let outcome = match fs::hard_link(&sealed.path, target) {
        Ok(()) => Published::Created,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => compare(sealed, target)?,
        Err(_) if !target.exists() => {
            // No hard links here (some network and FAT file systems).
            fs::rename(&sealed.path, target)?;
            sync_dir(dir)?;
            return Ok(Published::Created);
        }
        Err(_) => compare(sealed, target)?,
    };
    fs::remove_file(&sealed.path)?;
    sync_dir(dir)?;
    if let Some(scratch) = sealed.path.parent() {
        sync_dir(scratch)?;
    }
    Ok(outcome)
}

fn compare(sealed: &Sealed, target: &Path) -> io::Result<Published> {
    let existing = sha256_of(target)?;
    Ok(if existing == sealed.sha256 {
        Published::AlreadyThere
    } else {
        Published::Conflict { existing }
    })
}

/// The SHA-256 of a file's contents, read in blocks. Only a regular file
/// is read: a symlink (to `/dev/zero`, say) or a FIFO left at a
/// destination path is an error, never followed, hashed for ever or waited
/// on.
pub fn sha256_of(path: &Path) -> io::Result<[u8; 32]> {
    let kind = fs::symlink_metadata(path)?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a symlink, directory, FIFO or device): move it away",
        ));
    }
    let mut file = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().into())
}

/// Creates `dir` and its missing parents, fsyncing each parent after a
/// child was created in it.
fn create_dirs_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    sync_dir(dir.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory, so that entries created, renamed or removed in it
/// survive a power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Removes scratch files left by processes that no longer run. Files of
/// live processes (other sinks writing to the same directory) are kept;
/// where liveness cannot be told (no `/proc`), only this process's own
/// leftovers are removed. Returns how many files were removed.
pub fn remove_stale(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let me = std::process::id();
    let proc_fs = Path::new("/proc/self").exists();
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(PART) {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let mut parts = stem.split('-');
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let born = parts.next().and_then(|p| p.parse::<u128>().ok());
        let stale = match (pid, born) {
            (Some(pid), Some(born)) if pid == me => born != incarnation(),
            (Some(pid), Some(_)) => proc_fs && !Path::new(&format!("/proc/{pid}")).exists(),
            _ => false,
        };
        if stale {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}
