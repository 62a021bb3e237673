//! Encoding so that one bad record does not take its neighbours down: a
//! failed `write` is retried record by record, and the records that cannot
//! be encoded on their own are left out and reported by index.

use meathook_core::{EncodeSession, Encoder};

use crate::local::ScratchFile;

/// What the window-file pipeline needs to know about an encoder's error.
pub trait EncodeFailure: std::error::Error + Send + Sync + 'static {
    /// Whether the error is about one or more records (rather than the
    /// settings or the output): the records can then be tried one by one,
    /// and those that fail alone are left out of the file.
    fn is_record(&self) -> bool;

    /// Whether the error comes from writing bytes out: a retry may help.
    fn is_io(&self) -> bool;
}

/// An encoder the window-file pipeline can drive: its error tells record
/// failures from the rest, and its sessions over a scratch file can move to
/// the blocking pool. Every `Encoder` that fits is one; sinks name this one
/// bound instead of the three.
pub trait FileEncoder<R>:
    Encoder<R, Error: EncodeFailure, Session<ScratchFile>: 'static> + 'static
{
}

impl<R, E> FileEncoder<R> for E
where
    E: Encoder<R> + 'static,
    E::Error: EncodeFailure,
    E::Session<ScratchFile>: 'static,
{
}

/// Writes `records` into `session`; records that cannot be encoded are
/// found by encoding each alone, left out, and pushed onto `rejected` with
/// their index in the batch (`offset` + their index in `records`). Relies
/// on the encoder leaving a session unchanged when `write` fails on a
/// record.
pub(crate) fn write_lenient<R, E, W>(
    encoder: &E,
    session: &mut E::Session<W>,
    records: &[R],
    offset: usize,
    rejected: &mut Vec<(usize, E::Error)>,
) -> Result<(), E::Error>
where
    E: Encoder<R>,
    E::Error: EncodeFailure,
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
