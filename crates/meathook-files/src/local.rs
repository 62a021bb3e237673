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
//! A day folder that compaction may swap (see `meathook_parquet::compact`)
//! is held by a [`FolderLock`]: shared while a file is published into it,
//! exclusive while it is swapped, so no file is ever linked into a folder
//! that is being replaced. A name that is free but covered by the folder's
//! compacted file ([`crate::coverage`]) is not published again.
//!
//! Everything here blocks: callers run it on the blocking thread pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::coverage::{COVERAGE_FILE, Coverage, MAX_COVERAGE_BYTES, hex, unhex};

/// The scratch folder under a local destination's root.
pub const SCRATCH_DIR: &str = ".meathook-tmp";
const PART: &str = "part";
const STAGE: &str = "stage";

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The file now exists under its final name.
    Created,
    /// A file with the same bytes was already there; nothing changed.
    AlreadyThere,
    /// The same bytes were published before and have since been compacted
    /// into `file`, in the same folder (see [`crate::coverage`]); nothing
    /// changed.
    Compacted {
        /// The compacted file's name.
        file: String,
    },
    /// A file with different bytes is there (or was, before compaction);
    /// nothing changed.
    Conflict {
        /// The SHA-256 of the file already there.
        existing: [u8; 32],
    },
}

/// Gives `sealed` its final name `target`, unless the name is taken or a
/// compacted file in the folder covers it. Removes the scratch file in
/// every case but an error. Holds the folder's lock shared meanwhile (see
/// [`FolderLock`]), so a compaction never swaps the folder under it.
pub fn publish(sealed: &Sealed, target: &Path) -> io::Result<Published> {
    let dir = target.parent().unwrap_or(Path::new("."));
    create_dirs_durably(dir)?;
    let _folder = FolderLock::shared(dir)?;
    let covered = match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => covered(sealed, target)?,
        _ => None,
    };
    let outcome = match covered {
        Some(outcome) => outcome,
        None => match fs::hard_link(&sealed.path, target) {
            Ok(()) => Published::Created,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => compare(sealed, target)?,
            Err(_) if !target.exists() => {
                // No hard links here (some network and FAT file systems).
                fs::rename(&sealed.path, target)?;
                sync_dir(dir)?;
                return Ok(Published::Created);
            }
            Err(_) => compare(sealed, target)?,
        },
    };
    fs::remove_file(&sealed.path)?;
    sync_dir(dir)?;
    if let Some(scratch) = sealed.path.parent() {
        sync_dir(scratch)?;
    }
    Ok(outcome)
}

/// What publishing `sealed` at `target`, a free name, comes to if the
/// folder's compacted file covers that name; `None` when it does not.
fn covered(sealed: &Sealed, target: &Path) -> io::Result<Option<Published>> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name().and_then(|n| n.to_str()))
    else {
        return Ok(None);
    };
    let Some(coverage) = read_coverage(dir)? else {
        return Ok(None);
    };
    let Some(part) = coverage.part(name) else {
        return Ok(None);
    };
    Ok(Some(if part.sha256 == hex(&sealed.sha256) {
        Published::Compacted {
            file: coverage.file,
        }
    } else {
        Published::Conflict {
            existing: unhex(&part.sha256).unwrap_or_default(),
        }
    }))
}

/// The compaction record of the day folder `dir`, if it has one.
///
/// # Errors
///
/// A record that is not a regular file, too large, or unreadable: an
/// [`io::ErrorKind::InvalidData`] error naming it (a part is never
/// published beside a compacted file whose record cannot be read).
pub fn read_coverage(dir: &Path) -> io::Result<Option<Coverage>> {
    let path = dir.join(COVERAGE_FILE);
    let kind = match fs::symlink_metadata(&path) {
        Ok(meta) => meta.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}; move it away or repair it", path.display()),
        )
    };
    if !kind.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    File::open(&path)?
        .take(MAX_COVERAGE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_COVERAGE_BYTES {
        return Err(invalid(format!("larger than {MAX_COVERAGE_BYTES} bytes")));
    }
    Coverage::from_json(&bytes)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

/// A day folder's lock: shared while a part is published into it,
/// exclusive while a compaction swaps it (a `flock` on the directory).
///
/// A swap replaces the directory at the folder's path with another, so a
/// lock taken on the old directory is worthless: after locking, the path
/// is checked to still name the locked directory, and if it does not the
/// new one is locked instead. Released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    _dir: File,
}

impl FolderLock {
    /// Locks `dir` shared, waiting for an exclusive holder.
    pub fn shared(dir: &Path) -> io::Result<Self> {
        Self::lock(dir, rustix::fs::FlockOperation::LockShared)
    }

    /// Locks `dir` exclusively, waiting for every holder.
    pub fn exclusive(dir: &Path) -> io::Result<Self> {
        Self::lock(dir, rustix::fs::FlockOperation::LockExclusive)
    }

    fn lock(dir: &Path, operation: rustix::fs::FlockOperation) -> io::Result<Self> {
        use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
        loop {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(
                    (rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW).bits() as i32,
                )
                .open(dir)?;
            rustix::fs::flock(&file, operation)?;
            let held = file.metadata()?;
            let named = fs::symlink_metadata(dir)?;
            if (held.dev(), held.ino()) == (named.dev(), named.ino()) {
                return Ok(Self { _dir: file });
            }
        }
    }
}

/// Swaps two directories in one step: afterwards each path names the
/// other's directory, and no moment exists at which either path is missing
/// or names a mix (Linux `renameat2` with `RENAME_EXCHANGE`; ext4, XFS,
/// btrfs and tmpfs have it). Both must be on one filesystem. The parents
/// are not synced: see [`sync_dir`].
pub fn exchange_dirs(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "this filesystem cannot swap two directories in one step ({e}): compaction needs ext4, XFS, btrfs or tmpfs"
                ),
            )
        } else {
            io::Error::from(e)
        }
    })
}

/// A directory to build a folder's next contents in, under the scratch
/// folder (`{root}/.meathook-tmp/{pid}-{start}-{n}.stage`, on the
/// destination's filesystem), removed with the scratch files of processes
/// that no longer run (see [`remove_stale`]).
pub fn stage_dir(scratch: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(scratch)?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = scratch.join(format!(
        "{}-{}-{n}.{STAGE}",
        std::process::id(),
        incarnation()
    ));
    fs::create_dir(&path)?;
    sync_dir(scratch)?;
    Ok(path)
}

/// A staging directory ([`stage_dir`]) removed, with what it holds, when
/// dropped: a compaction's downloads and merge.
#[derive(Debug)]
pub struct StageDir(PathBuf);

impl StageDir {
    /// A new staging directory under `scratch` (created if needed).
    pub fn new(scratch: &Path) -> io::Result<Self> {
        fs::create_dir_all(scratch)?;
        stage_dir(scratch).map(Self)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StageDir {
    fn drop(&mut self) {
        let _ = remove_stage(&self.0);
    }
}

/// Removes a staging directory and everything in it (files only: a
/// staging directory holds no folders), then syncs its parent.
pub fn remove_stage(dir: &Path) -> io::Result<()> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                fs::remove_file(entry?.path())?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    fs::remove_dir(dir)?;
    sync_dir(dir.parent().unwrap_or(Path::new(".")))
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
        let extension = path.extension().and_then(|e| e.to_str());
        if extension != Some(PART) && extension != Some(STAGE) {
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
            if extension == Some(STAGE) {
                remove_stage(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}
