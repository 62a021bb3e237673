//! The filesystem seam: every byte the spool reads or writes goes through
//! [`Fs`], and the runtime's journal and metrics textfile use [`StdFs`] for
//! the same guarantees.
//!
//! The real implementation, [`StdFs`], is `std::fs` plus `fdatasync`,
//! directory fsyncs, `flock` and `statvfs`. Tests put a filesystem behind the
//! same trait that tears writes, fails fsyncs, runs out of space or forgets
//! unsynced bytes at a simulated crash, and run the unchanged spool on it.
//!
//! **Invariant:** the spool never touches `std::fs` directly; `grep std::fs`
//! in `meathook-spool` finds only its inspection command.
//!
//! **Invariant:** [`StdFs`] never follows a symlink and never blocks on an
//! open: every file is opened with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` and
//! refused unless it is a regular file, so a spool directory whose `LOCK`
//! points at another file, or whose segment is a FIFO or a link to
//! `/dev/zero`, can neither clobber that file nor hang or flood the spool.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name (no directory part).
    pub name: OsString,
    /// What the entry is itself (a symlink is not followed).
    pub kind: EntryKind,
    /// The file's length in bytes (0 for anything but a regular file).
    pub len: u64,
}

/// What a directory entry is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "a regular file",
            Self::Dir => "a directory",
            Self::Symlink => "a symlink",
            Self::Other => "a FIFO, socket or device",
        })
    }
}

/// A file opened for writing, by one handle at a time.
pub trait FsFile: Send + 'static {
    /// Writes all of `buf` at the end of the file: its length when it was
    /// opened, moved on by this handle's `write_all` and `set_len` (not by
    /// [`write_all_at`](FsFile::write_all_at)). On error some prefix of
    /// `buf` may have been written.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Writes all of `buf` at byte `offset`, over what is there and past
    /// the end if it reaches there. On error some prefix of `buf` may have
    /// been written.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`), with its length if that
    /// changed.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes; the next `write_all` goes
    /// there.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// The filesystem operations the spool needs.
pub trait Fs: Clone + Send + Sync + 'static {
    /// A file opened for writing.
    type File: FsFile;
    /// A file opened for reading from its start.
    type Reader: Read + Send + 'static;
    /// Holds a directory lock until dropped.
    type Lock: Send + Sync + 'static;

    /// Creates `path` and every missing parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new, empty file; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for writing, at its end.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing regular file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Self::Reader>;
    /// The length of the regular file at `path`.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Lists a directory, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// Renames a file, replacing any file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Bytes available to this process on the filesystem holding `dir`.
    fn available_space(&self, dir: &Path) -> io::Result<u64>;
    /// Takes an exclusive lock on `path` (creating it) and writes `holder`
    /// into it. `Ok(None)` when another holder has it.
    fn try_lock(&self, path: &Path, holder: &str) -> io::Result<Option<Self::Lock>>;

    /// Which filesystem holds the lock file `lock` was taken on. Spools
    /// whose locks name the same filesystem share one
    /// [`sync_filesystem`](Fs::sync_filesystem) when their appends are
    /// committed together. `None` (the default) syncs every file on its own.
    /// An `Fs` that names a filesystem must be able to sync it.
    fn filesystem_id(&self, lock: &Self::Lock) -> Option<u64> {
        let _ = lock;
        None
    }

    /// Makes everything written to the filesystem holding `lock`'s file
    /// durable, data, sizes and directory entries alike (`syncfs`), and
    /// fails if writing back any file on that filesystem failed since the
    /// lock was taken or since the last call. The lock is held from before
    /// the spool's first write, so no failure of the spool's own writes can
    /// go unreported. Unsupported by default.
    fn sync_filesystem(&self, lock: &Self::Lock) -> io::Result<()> {
        let _ = lock;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

/// A file of [`StdFs`].
#[derive(Debug)]
pub struct StdFile(File);

/// The lock of [`StdFs`]: an `flock` held on the open lock file.
pub struct StdLock(#[allow(dead_code)] File); // held for its Drop, which unlocks

impl fmt::Debug for StdLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StdLock")
    }
}

impl FsFile for StdFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.seek(io::SeekFrom::Start(len)).map(|_| ())
    }
}

/// Opens `path` with `options`, never following a symlink at its last
/// component and never blocking (a FIFO opens at once), and refuses
/// anything that is not a regular file.
fn open_regular(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = options
        .custom_flags(
            rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32,
        )
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symlink; the spool never follows one",
                )
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {}, not a regular file", kind_of(kind)),
        ));
    }
    Ok(file)
}

fn kind_of(kind: std::fs::FileType) -> EntryKind {
    if kind.is_file() {
        EntryKind::File
    } else if kind.is_dir() {
        EntryKind::Dir
    } else if kind.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

impl Fs for StdFs {
    type File = StdFile;
    type Reader = File;
    type Lock = StdLock;

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    // Not `O_APPEND`: Linux writes a positioned write to such a file at its
    // end, and the spool overwrites space it wrote ahead. `write_all` follows
    // the handle's offset, which starts at the end.
    fn create_new(&self, path: &Path) -> io::Result<StdFile> {
        open_regular(OpenOptions::new().write(true).create_new(true), path).map(StdFile)
    }

    fn open_append(&self, path: &Path) -> io::Result<StdFile> {
        let mut file = open_regular(OpenOptions::new().write(true), path)?;
        file.seek(io::SeekFrom::End(0))?;
        Ok(StdFile(file))
    }

    fn open_read(&self, path: &Path) -> io::Result<File> {
        open_regular(OpenOptions::new().read(true), path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("is {}, not a regular file", kind_of(meta.file_type())),
            ))
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // `DirEntry::metadata` does not follow symlinks. An entry gone
            // since the listing (a delivered segment deleted by a live
            // spool) is simply not there.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let kind = kind_of(meta.file_type());
            out.push(DirEntry {
                name: entry.file_name(),
                kind,
                len: if kind == EntryKind::File {
                    meta.len()
                } else {
                    0
                },
            });
        }
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        OpenOptions::new()
            .read(true)
            .custom_flags(
                rustix::fs::OFlags::DIRECTORY.bits() as i32
                    | rustix::fs::OFlags::NONBLOCK.bits() as i32,
            )
            .open(dir)?
            .sync_all()
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(dir)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn try_lock(&self, path: &Path, holder: &str) -> io::Result<Option<StdLock>> {
        let mut file = open_regular(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            path,
        )?;
        // A hard link to a file elsewhere would be truncated below.
        if std::os::unix::fs::MetadataExt::nlink(&file.metadata()?) > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "has other hard links; the spool writes only a lock file of its own: move it away",
            ));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.write_all(holder.as_bytes())?;
        file.sync_data()?;
        Ok(Some(StdLock(file)))
    }

    fn filesystem_id(&self, lock: &StdLock) -> Option<u64> {
        use std::os::unix::fs::MetadataExt as _;
        syncfs_reports_errors()
            .then(|| lock.0.metadata().ok().map(|m| m.dev()))
            .flatten()
    }

    fn sync_filesystem(&self, lock: &StdLock) -> io::Result<()> {
        if !syncfs_reports_errors() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        rustix::fs::syncfs(&lock.0).map_err(io::Error::from)
    }
}

/// Whether `syncfs` reports write-back errors: Linux since 5.8. On older
/// kernels it returns success after a failed write-back, so each file is
/// synced on its own instead.
fn syncfs_reports_errors() -> bool {
    static REPORTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REPORTS.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return false;
        }
        let uname = rustix::system::uname();
        let release = uname.release().to_string_lossy();
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (5, 8)
    })
}

/// Reads a small file (at most `max` bytes) through `fs`, for lock holders
/// and reason files.
pub fn read_small<F: Fs>(fs: &F, path: &Path, max: u64) -> io::Result<String> {
    let mut out = String::new();
    fs.open_read(path)?.take(max).read_to_string(&mut out)?;
    Ok(out)
}

/// Writes a whole new file through `fs` and makes it and its directory entry
/// durable: write to `path.tmp`, fsync, rename, fsync the directory.
pub fn write_file_durably<F: Fs>(fs: &F, path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(fs, path, bytes, true)?;
    sync_parent(fs, path)
}

/// [`write_file_durably`] without its syncs: for a caller that makes the
/// whole filesystem durable next ([`Fs::sync_filesystem`]) before it
/// relies on the file.
pub fn write_file_replacing<F: Fs>(fs: &F, path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(fs, path, bytes, false)
}

/// Writes `bytes` to `path.tmp` (synced if `sync`) and renames it over
/// `path`.
fn replace_file<F: Fs>(fs: &F, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    clear_tmp(fs, tmp)?;
    let mut file = fs.create_new(tmp)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    drop(file);
    fs.rename(tmp, path)
}

/// Copies at most `max` bytes of `from` to a new file `to` in bounded
/// chunks, durably.
pub fn copy_durably<F: Fs>(fs: &F, from: &Path, to: &Path, max: u64) -> io::Result<u64> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    clear_tmp(fs, tmp)?;
    let mut reader = fs.open_read(from)?.take(max);
    let mut out = fs.create_new(tmp)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.sync_data()?;
    drop(out);
    fs.rename(tmp, to)?;
    sync_parent(fs, to)?;
    Ok(total)
}

/// Removes whatever an earlier attempt left at a temporary name. Anything
/// that cannot be removed there (a directory, say) is an error naming it, not
/// a "file exists" for the file it stands in for.
fn clear_tmp<F: Fs>(fs: &F, tmp: &Path) -> io::Result<()> {
    match fs.remove_file(tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "cannot clear the temporary file {}: {e}; move it away",
                tmp.display()
            ),
        )),
    }
}

/// Fsyncs the directory holding `path`.
pub fn sync_parent<F: Fs>(fs: &F, path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => fs.sync_dir(dir),
        None => Ok(()),
    }
}
