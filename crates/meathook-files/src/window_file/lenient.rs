//! Encoding so that one bad record does not take its neighbours down: a
//! failed `write` is retried record by record, and the records that cannot
//! be encoded on their own are left out and reported by index.

use meathook_core::{EncodeSession, Encoder};

/// What the window-file pipeline needs to know about an encoder's error.
pub trait EncodeFailure: std::error::Error + Send + Sync + 'static {
    /// Whether the error is about one or more records (rather than the
    /// settings or the output): the records can then be tried one by one,
    /// and those that fail alone are left out of the file.
    fn is_record(&self) -> bool;

    /// Whether the error comes from writing bytes out: a retry may help.
    fn is_io(&self) -> bool;
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
