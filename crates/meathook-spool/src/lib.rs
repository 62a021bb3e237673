//! The durable tier of meathook — [`DiskSpool`], a crash-safe write-ahead
//! spool — and the combinators that build sink stacks ([`SinkExt`]).
//!
//! # Overview
//!
//! ```text
//!  ingest(window, records)                    worker task (owns the inner sink)
//!        │ frame, append, fdatasync                 ▲ oldest sealed segment first
//!        ▼                                          │ ingest_chunks(window+BatchId, chunks)
//!  ┌────────────── spool directory ──────────────┐  │ delete + dir fsync on Ok
//!  │ LOCK            one writer (flock + holder) │  │ backoff on transient Err
//!  │ sequence        leased seq / id limits      │  │ dead-letter/ after N permanent Errs
//!  │ 0…0041.seg      sealed window ──────────────┼──┘
//!  │ 0…0042.open     window being written        │
//!  │ quarantine/     copies of damaged segments + .reason
//!  │ dead-letter/    segments refused permanently + .reason
//!  └─────────────────────────────────────────────┘
//! ```
//!
//! `ingest` files a batch under `window.widen(policy.window())`, encodes
//! each record (a record that fails to serialise or is larger than
//! `max_record_bytes` is rejected on its own, with its index, in the
//! [`Receipt`](meathook_core::Receipt)), appends the batch as one or more
//! frames to the open segment of that window and, under the default
//! [`Durability::EveryIngest`], makes it durable before returning. Records
//! are encoded on the caller's thread. File IO that can wait on the disk
//! runs off the executor threads: appends, syncs and seals on a writer
//! thread that every spool of the process shares ([`WriterPool`], one
//! hand-off per call), which commits the appends of many spools together
//! with one sync per filesystem ([`pool`]); reads on blocking threads,
//! bounded process-wide ([`meathook_core::blocking`]). The one exception is
//! an append under [`Durability::Os`] that only writes to a segment file
//! already open (no segment to create, seal or drop, nothing to sync): it
//! is a copy into the page cache, and runs on the caller's thread without
//! a hand-off. Spools under a
//! [`SpoolRoot`] share its one lock. A segment is sealed when its window closes
//! (`advance`), when it reaches `max_segment_bytes`, or on `flush`; sealing
//! writes a seal frame, syncs, renames `.open` to `.seg` and fsyncs the
//! directory. A worker task delivers sealed segments
//! to the inner sink, oldest first, reading them back lazily in chunks, so a
//! slow or failing inner sink never slows `ingest`, and a window of millions
//! of records is never in memory. A batch arriving for a window whose
//! segment was already sealed gets a segment of its own.
//!
//! # On-disk format
//!
//! A segment is a header followed by frames:
//!
//! ```text
//! segment = header frame* seal?
//! header  = "MHSPOOL\n" version:u16 encoding:u8 0:u8 header_len:u32
//!           window_start:i64 window_end:i64 created_ns:i64 id:u64
//!           pipeline_len:u16 pipeline:[u8] incarnation:u64 crc32c:u32
//! frame   = F5 4D 48 46 payload_len:u32 first_seq:u64 index:u64 count:u32
//!           kind:u8 0:[u8;3] header_crc32c:u32 payload_crc32c:u32 payload
//! payload = raw_len:u32 lz4(names record*)
//! names   = count:u16 (len:u8 name:[u8])*   the record type's field names
//! record  = len:u32 msgpack(value)          top bit of len: value is an
//!                                           array of the named fields
//! seal    = a frame of kind 2, count 0, first_seq = the next sequence number
//! ```
//!
//! All integers are little endian; the field-by-field layouts, with their
//! "do not reorder" warnings, are in `segment.rs`, `frame.rs` and `codec.rs`.
//! Sequence numbers count records, are global to the spool and never reused
//! (they are leased in blocks through the `sequence` file, so they keep
//! growing after every segment was delivered and deleted). Each run of a
//! spool also draws a random 64-bit *incarnation* and writes it into every
//! segment it creates. A delivered segment's
//! [`BatchId`](meathook_core::BatchId) is that incarnation with its first
//! and last sequence number: stable across replays, unique across batches,
//! and unique across spools too, so a spool on a fresh volume (or one whose
//! `sequence` file was lost), which numbers from 0 again, never names a file
//! an earlier spool delivered. Segments of format version 1 (before the
//! incarnation) are still read and keep their old names. The pipeline name
//! and window come from the segment header, never from the directory.
//!
//! The payload encoding is MessagePack with the field names written once per
//! frame, compressed per frame with lz4: self-describing (a field added to,
//! removed from or moved in the record type between runs decodes from old
//! segments, by name), `f64` bit-exact (NaN payloads, ±Inf, -0.0,
//! subnormals), any Unicode, nested types and options. It was chosen by
//! measurement against JSON, CBOR and zstd; the table is in `codec.rs`.
//! Bench records take about 17 bytes each on disk. Segments of format
//! versions 1 and 2 (payload encoding 1: field names in every record) are
//! still read; an open one is delivered as it is, never appended to.
//!
//! # Durability
//!
//! | [`Durability`] | `ingest` returns after | a process crash loses | a power loss loses |
//! |---|---|---|---|
//! | `EveryIngest` (default) | write + `fdatasync` | nothing acknowledged | nothing acknowledged |
//! | `Interval(d)` | write; a sync at most every `d` | nothing acknowledged | up to `d` (plus one tick) of acknowledged records |
//! | `Os` | write | nothing acknowledged | what the OS had not written back (typically ≤ 30 s) |
//!
//! Creating, renaming and deleting a segment are each followed by a
//! directory fsync. A failed write or fsync is returned as
//! [`SpoolError::Io`] with the records handed back; the segment is
//! *abandoned*: cut back to its last acknowledged frame and renamed
//! `.abandoned`, never written or synced again, and delivered up to that
//! frame; the next batch starts a new segment. A failed fsync is never
//! retried on the same file. The worker delivers an abandoned segment only
//! once its cut and rename are durable, so a restart after the delivery
//! finds exactly what was delivered and never appends to it.
//!
//! Once a batch is written and synced it is acknowledged: a failure later in
//! the same call (the seal of a segment the batch filled, a group sync)
//! abandons that segment with the batch in it, is logged, and does not turn
//! the call into an error, so a caller that retries refused batches never
//! stores one twice.
//!
//! # Recovery
//!
//! `open` (or the first `ingest` / `advance`) takes the lock and recovers,
//! segment by segment with one frame in memory at a time; see
//! `recovery.rs`. A torn tail of an open segment is cut; damage inside a
//! segment costs exactly the damaged frames (counted through the frame
//! indexes), a bounded copy of the segment (at most 256 MiB) goes to
//! `quarantine/` with a `.reason` file and the rest is delivered; a segment
//! with an unreadable header is renamed into `quarantine/`; lengths are
//! bounded before any allocation; stray files are reported in the
//! [`RecoveryReport`] and left alone.
//!
//! Nothing in a spool directory is trusted: every file is opened without
//! following symlinks and without blocking, and only regular files are read
//! ([`StdFs`]). A symlink, FIFO, device or directory under a segment's name,
//! or a name whose number is too large to be ours, is skipped and reported;
//! a flush or drain that leaves such a file behind fails with
//! [`SpoolError::Unread`] rather than claiming the spool is empty. A `LOCK`
//! that is a symlink, or a `quarantine` or `dead-letter` that is not a real
//! directory, stops the start with [`SpoolError::Start`], naming the path.
//! Resyncing over damage searches for the frame magic with `memchr`, so a
//! valid header followed by a gigabyte of zeros costs about one read of the
//! file.
//!
//! # Failure table (as the tests in `tests/` measure it)
//!
//! | fault | acknowledged records lost | duplicated at the destination | test |
//! |---|---|---|---|
//! | SIGKILL at any point (`EveryIngest`) | none | none (replays reuse the BatchId; the file sink skips existing batches) | `tests/it/sigkill_soak.rs` |
//! | crash with unsynced bytes dropped (model) | none | none | `tests/it/model.rs` |
//! | torn tail, cut at every byte offset | none; exactly the complete frames survive | none | `tests/it/recovery.rs` |
//! | bit flip in a middle frame's header, length or payload | that frame's records, counted exactly, segment quarantined | none | `tests/it/recovery.rs` |
//! | garbage tails: zeros, random bytes, `u32::MAX` lengths | none | none | `tests/it/recovery.rs` |
//! | an open segment ending in the zeros written ahead of its frames (a restart, a crash) | none; kept, written over, cut at the seal | none | `tests/it/recovery.rs`, `tests/it/model.rs` |
//! | ENOSPC during append | none; the batch is refused and handed back | none | `tests/it/faults.rs` |
//! | fsync failure | none; the batch is refused, the segment abandoned | none | `tests/it/faults.rs` |
//! | seal or group sync fails after a durable append | none; the batch is acknowledged, the segment abandoned with it | none | `tests/it/model.rs` |
//! | crash after an abandoned segment was delivered, before its delete | none | none: it is renamed `.abandoned` before delivery, never continued | `tests/it/model.rs` |
//! | a directory sync fails after a seal's or an abandon's rename, then a crash | none | none: an `.open` file holding a seal frame is sealed, never continued; retiring is idempotent, so delivery does not stall | `tests/it/model.rs`, `tests/it/faults.rs` |
//! | a group sync fails for one window while an append fills another | none | none: the append seals its own segment | `tests/it/model.rs` (group commit), `tests/it/faults.rs` |
//! | fresh spool (wiped volume, lost `sequence` file) before a destination that holds files | none | none: a new incarnation names new paths | `tests/it/model.rs`, `tests/it/fresh_spool.rs` (workspace) |
//! | symlink (to `/dev/zero`, to a 50 GB file), FIFO, directory named like a segment, `sequence` or `LOCK` | none; skipped and reported, never followed, copied or waited on | none | `tests/it/hostile_dir.rs` |
//! | segment named with id `u64::MAX`, `sequence` claiming numbers near 2^64 | none; skipped, numbering goes on | none | `tests/it/hostile_dir.rs` |
//! | valid header then 512 MiB–2 GiB of zeros | none; read once, copy to quarantine bounded at 256 MiB | none | `tests/it/hostile_dir.rs` |
//! | `quarantine` / `dead-letter` a file or a symlink | none; the start fails with `SpoolError::Start` naming it, `verify` exits 1 | none | `tests/it/hostile_dir.rs` |
//! | random frames, headers and segments (fuzzed) | none; no panic, no unbounded allocation | none | `tests/it/fuzz_corpus.rs`, `cargo xtask fuzz` |
//! | a spool directory written by segment format version 1 (a sealed and an open segment) | none | none: delivered under the batch names version 1 gave them | `tests/it/format_v1.rs` |
//! | inner sink down for 24 windows | none, delivered once, in order | none | `tests/it/outage.rs` |
//! | inner sink refuses permanently | none: moved to `dead-letter/` with the error | none | `tests/it/delivery.rs` |
//! | full spool, `Block` / `DropOldest` / `DropNewest` | none / oldest segments, counted / the batch, counted | none | `tests/it/limits.rs` |
//!
//! One limit of the table: damage to the *last* frame of a segment that is
//! still open cannot be told apart from a torn write, so recovery cuts it as
//! a torn tail without counting its records as lost (under `EveryIngest` a
//! torn last frame was never acknowledged).
//!
//! A second: after a power loss (not a process crash), an unacknowledged
//! frame may survive with zeros before it where the frame before it should
//! be, since appends overwrite the zeros written ahead of them (see
//! `pool.rs`). Recovery reports that gap as damage and its records as lost,
//! though none of them was acknowledged, and delivers the frame.
//!
//! Deliveries are at-least-once: if the process dies after the inner sink
//! accepted a segment and before its file was deleted, the segment is
//! offered again after restart with the same `BatchId`.
//!
//! # Limits and backpressure
//!
//! [`Limits`] bound bytes on disk, free space left on the disk, the size of
//! one record and of one segment. At a limit the [`FullPolicy`] applies:
//! `Block` refuses the batch (backpressure: the caller keeps the records and
//! slows down), `DropOldest` deletes the oldest undelivered sealed segments,
//! `DropNewest` drops the batch; every dropped record is counted by reason.
//! [`SpoolStats::utilisation`] and [`SpoolStats::credits`] say how close
//! the spool is to its limit; the runtime reads them without `&mut`.
//!
//! # Inspection
//!
//! `meathook-spool inspect DIR` prints every segment (state, window,
//! pipeline, records, bytes, age, damage); `meathook-spool verify DIR` does
//! the same and exits with status 1 if anything is damaged or anything would
//! stop a spool from starting there ([`Inspection::blockers`]); both print
//! one JSON document with `--json`. `meathook-spool inspect --records FILE`
//! prints one segment's records as JSON lines, decoded without knowing the
//! record type ([`SegmentRecords`]). None of them modifies the directory,
//! follows a symlink or blocks on a FIFO. The binary needs the `cli` feature
//! (on by default); the library alone does not depend on `clap`.
#![forbid(unsafe_code)]

mod codec;
mod delivery;
mod error;
mod ext;
mod frame;
mod fs;
mod inspect;
mod limits;
pub mod pool;
mod positional;
mod queue;
mod reader;
mod records;
mod recovery;
mod root;
mod segment;
mod spool;
mod stats;
mod writer;

pub use delivery::MAX_CONCURRENT_DELIVERIES;
pub use error::{ReadError, SpoolError};
pub use ext::SinkExt;
pub use inspect::{Inspection, SegmentReport, inspect};
pub use limits::{Durability, FullPolicy, Limits, MAX_RECORD_BYTES};
pub use meathook_files::fs::{DirEntry, EntryKind, Fs, FsFile, StdFile, StdFs, StdLock};
pub use pool::{PoolStats, WriterPool};
pub use records::{FrameRecords, SegmentRecords};
pub use recovery::{DEAD_LETTER_DIR, LOCK_FILE, QUARANTINE_DIR, RecoveryReport};
pub use root::SpoolRoot;
pub use spool::DiskSpool;
pub use stats::{Credits, SpoolStats, StatsSnapshot};
