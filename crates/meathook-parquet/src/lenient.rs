//! Writing records so that one bad record does not take its neighbours
//! down: a failed `write` is retried record by record, and the records that
//! cannot be encoded on their own are left out and reported by index.

use meathook_core::{EncodeSession, Encoder};

use crate::error::EncodeError;

/// A record-level failure on the blocking pool, before it is tied to a
/// window.
pub(crate) type Rejected = Vec<(usize, EncodeError)>;

/// A chunk of records on its way to the blocking pool and back.
pub(crate) struct Records<R>(pub(crate) Vec<R>);

impl<R> AsRef<[R]> for Records<R> {
    fn as_ref(&self) -> &[R] {
        &self.0
    }
}

/// Writes `records` into `session`; records that cannot be encoded are
/// found by encoding each alone and left out. Relies on the crate's
/// encoders leaving a session unchanged when `write` fails on a record.
pub(crate) fn write_lenient<R, E, W>(
    encoder: &E,
    session: &mut E::Session<W>,
    records: &[R],
    offset: usize,
    rejected: &mut Rejected,
) -> Result<(), EncodeError>
where
    E: Encoder<R, Error = EncodeError>,
    W: std::io::Write + Send,
{
    match session.write(records) {
        Ok(()) => return Ok(()),
        Err(e) if !e.is_record() => return Err(e),
        Err(_) => {}
    }
    let mut run_start = 0;
    for (i, record) in records.iter().enumerate() {
        if let Err(e) = encoder.encode(std::slice::from_ref(record)) {
            if !e.is_record() {
                return Err(e);
            }
            session.write(&records[run_start..i])?;
            rejected.push((offset + i, e));
            run_start = i + 1;
        }
    }
    session.write(&records[run_start..])
}
