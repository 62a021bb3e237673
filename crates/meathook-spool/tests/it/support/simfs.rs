//! An in-memory filesystem behind the spool's `Fs` seam that models what a
//! crash keeps: file data up to the last `sync_data`, directory entries as of
//! the last `sync_dir` of their directory. It also injects faults: a write
//! that runs out of space part way, fsyncs that fail, a disk with little
//! free space.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use meathook_spool::{DirEntry, EntryKind, Fs, FsFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct Sim {
    inodes: HashMap<u64, Inode>,
    live: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<PathBuf, Node>,
    next_inode: u64,
    locks: HashSet<PathBuf>,
    /// Bytes writes may still add before failing with ENOSPC.
    write_budget: Option<usize>,
    /// The next `n` data fsyncs (of a file or of the filesystem) fail.
    fail_syncs: u32,
    /// Filesystem syncs that succeeded.
    filesystem_syncs: u64,
    /// Reported free space.
    space: u64,
    /// The next `n` renames fail.
    fail_renames: u32,
    /// The next `n` file removals fail.
    fail_removes: u32,
    /// Directory syncs to let through before failing `fail_dir_syncs`.
    dir_syncs_before_failing: u32,
    /// Directory syncs to fail, once the ones let through have passed.
    fail_dir_syncs: u32,
    /// Segment files open for writing now, and the most ever open at once.
    open_files: usize,
    most_open_files: usize,
}

/// The simulated filesystem; clones share state.
#[derive(Debug, Clone)]
pub struct SimFs(Arc<Mutex<Sim>>);

impl Default for SimFs {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Sim {
            space: u64::MAX / 2,
            ..Sim::default()
        })))
    }
}

impl SimFs {
    fn sim(&self) -> MutexGuard<'_, Sim> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes fail with ENOSPC once `bytes` more have been written (the
    /// failing write keeps its prefix up to the budget).
    pub fn fail_writes_after(&self, bytes: usize) {
        self.sim().write_budget = Some(bytes);
    }

    /// Writes succeed again.
    pub fn heal_writes(&self) {
        self.sim().write_budget = None;
    }

    /// The next `n` data fsyncs (of a file or of the filesystem) fail with
    /// EIO.
    pub fn fail_next_syncs(&self, n: u32) {
        self.sim().fail_syncs = n;
    }

    /// The most segment files (`.open`) ever open for writing at once.
    pub fn most_open_files(&self) -> usize {
        self.sim().most_open_files
    }

    /// A handle on `inode` at `path`; a segment file is counted as open
    /// until the handle is dropped.
    fn file(&self, sim: &mut Sim, inode: u64, path: &Path) -> SimFile {
        let segment = path.extension().is_some_and(|e| e == "open");
        if segment {
            sim.open_files += 1;
            sim.most_open_files = sim.most_open_files.max(sim.open_files);
        }
        SimFile {
            fs: self.clone(),
            inode,
            segment,
        }
    }

    /// Filesystem syncs that succeeded so far.
    pub fn filesystem_syncs(&self) -> u64 {
        self.sim().filesystem_syncs
    }

    /// The next `n` renames fail with EIO (a seal, an abandon, a move to
    /// dead-letter).
    pub fn fail_next_renames(&self, n: u32) {
        self.sim().fail_renames = n;
    }

    /// The next `n` file removals fail with EIO: a delivered segment stays
    /// on disk, as after a kill between the upload and the delete.
    pub fn fail_next_removes(&self, n: u32) {
        self.sim().fail_removes = n;
    }

    /// After `skip` more directory syncs succeed, the next `n` fail with EIO
    /// (and make nothing durable): a rename or a create that a crash then
    /// undoes.
    pub fn fail_dir_syncs(&self, skip: u32, n: u32) {
        let mut sim = self.sim();
        sim.dir_syncs_before_failing = skip;
        sim.fail_dir_syncs = n;
    }

    /// Removes a file durably at once, as an operator (or a lost volume)
    /// would.
    pub fn delete(&self, path: &Path) {
        let mut sim = self.sim();
        sim.live.remove(path);
        sim.durable.remove(path);
    }

    /// Sets the free space `available_space` reports.
    pub fn set_space(&self, bytes: u64) {
        self.sim().space = bytes;
    }

    /// A crash: every file reverts to its synced data, plus (if `torn` gives
    /// a part) a prefix, in file order, of what was written after the last
    /// sync (`torn` is given its length and says how much of it stays); every
    /// directory to its last synced entries; locks are released.
    pub fn crash(&self, mut torn: impl FnMut(usize) -> usize) {
        let mut sim = self.sim();
        sim.live = sim.durable.clone();
        sim.locks.clear();
        for inode in sim.inodes.values_mut() {
            // Writes since the last sync reach the disk in file order, and
            // the crash stops them part way: the live bytes up to a point
            // past where they first differ from the synced ones, the synced
            // bytes after it.
            let common = inode
                .data
                .iter()
                .zip(&inode.synced)
                .take_while(|(a, b)| a == b)
                .count();
            let extra = inode.data.len() - common;
            let kept = if extra > 0 {
                let cut = common + torn(extra).min(extra);
                let mut kept = inode.data[..cut].to_vec();
                kept.extend_from_slice(inode.synced.get(cut..).unwrap_or_default());
                kept
            } else {
                inode.synced.clone()
            };
            inode.data = kept.clone();
            inode.synced = kept;
        }
    }

    /// The live bytes of a file, for tests that damage files.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let sim = self.sim();
        match sim.live.get(path)? {
            Node::File(i) => Some(sim.inodes.get(i)?.data.clone()),
            Node::Dir => None,
        }
    }

    fn inode(&self, path: &Path) -> io::Result<u64> {
        match self.sim().live.get(path) {
            Some(Node::File(i)) => Ok(*i),
            Some(Node::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                path.display().to_string(),
            )),
        }
    }
}

/// A file of [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    fs: SimFs,
    inode: u64,
    segment: bool,
}

impl Drop for SimFile {
    fn drop(&mut self) {
        if self.segment {
            self.fs.sim().open_files -= 1;
        }
    }
}

impl FsFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let end = self
            .fs
            .sim()
            .inodes
            .get(&self.inode)
            .map_or(0, |i| i.data.len());
        self.write_all_at(buf, end as u64)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut sim = self.fs.sim();
        let (take, fail) = match sim.write_budget {
            Some(budget) if buf.len() > budget => (budget, true),
            _ => (buf.len(), false),
        };
        if let Some(b) = sim.write_budget.as_mut() {
            *b -= take;
        }
        let inode = sim.inodes.entry(self.inode).or_default();
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        if inode.data.len() < at + take {
            inode.data.resize(at + take, 0);
        }
        inode.data[at..at + take].copy_from_slice(&buf[..take]);
        if fail {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            ))
        } else {
            Ok(())
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut sim = self.fs.sim();
        if sim.fail_syncs > 0 {
            sim.fail_syncs -= 1;
            return Err(io::Error::other(
                "input/output error (simulated fsync failure)",
            ));
        }
        let inode = sim.inodes.entry(self.inode).or_default();
        inode.synced = inode.data.clone();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut sim = self.fs.sim();
        let inode = sim.inodes.entry(self.inode).or_default();
        inode
            .data
            .resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
        Ok(())
    }
}

/// The lock of [`SimFs`].
#[derive(Debug)]
pub struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.sim().locks.remove(&self.path);
    }
}

impl Fs for SimFs {
    type File = SimFile;
    type Reader = Cursor<Vec<u8>>;
    type Lock = SimLock;

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.sim();
        for p in path.ancestors() {
            sim.live.insert(p.to_path_buf(), Node::Dir);
            sim.durable.insert(p.to_path_buf(), Node::Dir);
        }
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        let mut sim = self.sim();
        if sim.live.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                path.display().to_string(),
            ));
        }
        sim.next_inode += 1;
        let inode = sim.next_inode;
        sim.inodes.insert(inode, Inode::default());
        sim.live.insert(path.to_path_buf(), Node::File(inode));
        Ok(self.file(&mut sim, inode, path))
    }

    fn open_append(&self, path: &Path) -> io::Result<SimFile> {
        let inode = self.inode(path)?;
        Ok(self.file(&mut self.sim(), inode, path))
    }

    fn open_read(&self, path: &Path) -> io::Result<Cursor<Vec<u8>>> {
        let inode = self.inode(path)?;
        let data = self
            .sim()
            .inodes
            .get(&inode)
            .map(|i| i.data.clone())
            .unwrap_or_default();
        Ok(Cursor::new(data))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let inode = self.inode(path)?;
        Ok(self
            .sim()
            .inodes
            .get(&inode)
            .map_or(0, |i| i.data.len() as u64))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let sim = self.sim();
        Ok(sim
            .live
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, node)| DirEntry {
                name: p.file_name().unwrap_or_default().to_owned(),
                kind: if *node == Node::Dir {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
                len: match node {
                    Node::File(i) => sim.inodes.get(i).map_or(0, |i| i.data.len() as u64),
                    Node::Dir => 0,
                },
            })
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = self.sim();
        if sim.fail_renames > 0 {
            sim.fail_renames -= 1;
            return Err(io::Error::other("injected rename failure"));
        }
        let node = sim
            .live
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.display().to_string()))?;
        sim.live.insert(to.to_path_buf(), node);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.sim();
        if sim.fail_removes > 0 {
            sim.fail_removes -= 1;
            return Err(io::Error::other("injected remove failure"));
        }
        sim.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.sim();
        if sim.fail_dir_syncs > 0 {
            if sim.dir_syncs_before_failing > 0 {
                sim.dir_syncs_before_failing -= 1;
            } else {
                sim.fail_dir_syncs -= 1;
                return Err(io::Error::other("injected directory sync failure"));
            }
        }
        let live: Vec<(PathBuf, Node)> = sim
            .live
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        sim.durable.retain(|p, _| p.parent() != Some(dir));
        sim.durable.extend(live);
        Ok(())
    }

    fn available_space(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.sim().space)
    }

    fn filesystem_id(&self, lock: &SimLock) -> Option<u64> {
        Some(Arc::as_ptr(&lock.fs.0) as u64)
    }

    /// Everything becomes durable, or (a failing sync) nothing does.
    fn sync_filesystem(&self, _lock: &SimLock) -> io::Result<()> {
        let mut sim = self.sim();
        if sim.fail_syncs > 0 {
            sim.fail_syncs -= 1;
            return Err(io::Error::other("simulated filesystem sync failure"));
        }
        sim.filesystem_syncs += 1;
        for inode in sim.inodes.values_mut() {
            inode.synced.clone_from(&inode.data);
        }
        sim.durable = sim.live.clone();
        Ok(())
    }

    fn try_lock(&self, path: &Path, holder: &str) -> io::Result<Option<SimLock>> {
        if !self.sim().locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        // Built first so that a failure below releases the lock again.
        let lock = SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        };
        let _ = self.remove_file(path);
        let mut f = self.create_new(path)?;
        f.write_all(holder.as_bytes())?;
        Ok(Some(lock))
    }
}
