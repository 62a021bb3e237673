//! Putting a sealed scratch file into an object store, once.
//!
//! **Architecture invariant:** an object is created, never replaced. Before
//! uploading, the path is checked; an object already there is compared by
//! SHA-256 (read back in ranges, so memory stays bounded): equal means the
//! batch was delivered before and nothing is done, different is a
//! [`Conflict`](crate::FileSinkError::Conflict). Files up to the single-put
//! limit are uploaded with a conditional create (`PutMode::Create`), so a
//! writer racing us cannot be overwritten on stores that support it; larger
//! files go up in multipart parts, read from disk one part at a time, after
//! the check (no store offers conditional multipart completion here).

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::local::{Published, Sealed};
use meathook_files::coverage::{
    COVERAGE_FILE, Coverage, MAX_COVERAGE_BYTES, hex, may_be_compacted, unhex,
};

/// Files up to this size are uploaded with one conditional put.
pub const DEFAULT_SINGLE_PUT_LIMIT: u64 = 16 << 20;

/// Bytes read from disk per request.
const PART: u64 = 8 << 20;

/// What went wrong, with the action for the message.
pub(crate) enum UploadError {
    Store(&'static str, object_store::Error),
    Local(&'static str, PathBuf, std::io::Error),
    Task(String),
}

type Result<T> = std::result::Result<T, UploadError>;

/// Uploads `sealed` to `path` unless an object is there already.
pub(crate) async fn upload(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    sealed: &Sealed,
    single_put_limit: u64,
) -> Result<Published> {
    if let Some(outcome) = existing(store, path, sealed).await? {
        return Ok(outcome);
    }
    if let Some(outcome) = covered(store, path, sealed).await? {
        return Ok(outcome);
    }
    if sealed.len <= single_put_limit {
        let bytes = read_range(sealed.path.clone(), 0, sealed.len).await?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match store.put_opts(path, PutPayload::from(bytes), opts).await {
            Ok(_) => Ok(Published::Created),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Someone else created it between our check and our put.
                Ok(existing(store, path, sealed)
                    .await?
                    .unwrap_or(Published::AlreadyThere))
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                let payload =
                    PutPayload::from(read_range(sealed.path.clone(), 0, sealed.len).await?);
                store
                    .put(path, payload)
                    .await
                    .map_err(|e| UploadError::Store("uploading", e))?;
                Ok(Published::Created)
            }
            Err(e) => Err(UploadError::Store("uploading", e)),
        }
    } else {
        let upload = store
            .put_multipart(path)
            .await
            .map_err(|e| UploadError::Store("starting multipart upload of", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(
            upload,
            usize::try_from(PART).unwrap_or(usize::MAX),
        );
        let mut offset = 0;
        while offset < sealed.len {
            let len = PART.min(sealed.len - offset);
            let bytes = read_range(sealed.path.clone(), offset, len).await?;
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| UploadError::Store("uploading part of", e))?;
            writer.write(&bytes);
            offset += len;
        }
        writer
            .finish()
            .await
            .map_err(|e| UploadError::Store("completing multipart upload of", e))?;
        Ok(Published::Created)
    }
}

/// What is at `path` already, compared with `sealed`; `None` if nothing.
async fn existing(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    sealed: &Sealed,
) -> Result<Option<Published>> {
    let meta = match store.head(path).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(UploadError::Store("checking", e)),
    };
    let mut hash = Sha256::new();
    let mut offset = 0;
    while offset < meta.size {
        let end = (offset + PART).min(meta.size);
        let bytes = store
            .get_range(path, offset..end)
            .await
            .map_err(|e| UploadError::Store("reading back", e))?;
        hash.update(&bytes);
        offset = end;
    }
    let existing: [u8; 32] = hash.finalize().into();
    Ok(Some(
        if meta.size == sealed.len && existing == sealed.sha256 {
            Published::AlreadyThere
        } else {
            Published::Conflict { existing }
        },
    ))
}

/// What publishing `sealed` at `path`, a free name, comes to if a
/// compaction of its day folder covers that name (see
/// [`crate::compact::StoreCompactor`]); `None` when it does not. Only the
/// folders of days that have ended are looked at: compaction takes no
/// other.
async fn covered(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    sealed: &Sealed,
) -> Result<Option<Published>> {
    let parts: Vec<_> = path.parts().collect();
    let (Some(name), Some(day)) = (
        parts.last().map(|p| p.as_ref().to_owned()),
        parts
            .len()
            .checked_sub(2)
            .map(|i| parts[i].as_ref().to_owned()),
    ) else {
        return Ok(None);
    };
    if !may_be_compacted(&day) {
        return Ok(None);
    }
    let record = ObjectPath::from_iter(parts[..parts.len() - 1].iter().cloned().chain(
        std::iter::once(object_store::path::PathPart::from(COVERAGE_FILE)),
    ));
    let got = match store.get(&record).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(UploadError::Store("reading the day's compaction record", e)),
    };
    let unreadable = |why: String| {
        UploadError::Store(
            "reading the day's compaction record",
            object_store::Error::Generic {
                store: "compaction record",
                source: format!("{record}: {why}; a part is not published beside a compacted file whose record cannot be read").into(),
            },
        )
    };
    if got.meta.size > MAX_COVERAGE_BYTES {
        return Err(unreadable(format!(
            "larger than {MAX_COVERAGE_BYTES} bytes"
        )));
    }
    let bytes = got
        .bytes()
        .await
        .map_err(|e| UploadError::Store("reading the day's compaction record", e))?;
    let coverage = Coverage::from_json(&bytes).map_err(|e| unreadable(e.to_string()))?;
    let Some(part) = coverage.part(&name) else {
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

async fn read_range(path: PathBuf, offset: u64, len: u64) -> Result<Vec<u8>> {
    meathook_core::blocking(move || {
        let io = |e| UploadError::Local("reading", path.clone(), e);
        let mut file = std::fs::File::open(&path).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut buf).map_err(io)?;
        Ok(buf)
    })
    .await
    .map_err(|e| UploadError::Task(e.to_string()))?
}
