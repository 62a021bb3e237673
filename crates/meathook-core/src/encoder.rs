//! The `Encoder` contract: records to the bytes of one file.

use std::io::Write;

/// Turns records into the bytes of one file (parquet, JSON lines, CSV, …).
///
/// Encoding is incremental: [`begin`](Encoder::begin) opens an
/// [`EncodeSession`] over any [`Write`], the caller feeds it records in
/// slices as they stream out of a spool, and
/// [`finish`](EncodeSession::finish) writes the footer. A window of a million
/// records therefore needs memory for one slice (or one row group), not for
/// the window. [`encode`](Encoder::encode) is the one-call form.
///
/// The same records and settings must give the same bytes, so that replays
/// of a batch are recognised as identical by content hash.
pub trait Encoder<R>: Send + Sync {
    /// Why records could not be encoded.
    type Error: std::error::Error + Send + Sync + 'static;
    /// An encoding in progress, writing into `W`.
    type Session<W: Write + Send>: EncodeSession<R, W, Error = Self::Error>;

    /// The file extension, without the dot (`"parquet"`).
    fn extension(&self) -> &str;

    /// The media type of the encoded bytes (`"application/vnd.apache.parquet"`).
    fn content_type(&self) -> &str;

    /// Starts encoding one file into `out`.
    fn begin<W: Write + Send>(&self, out: W) -> Result<Self::Session<W>, Self::Error>;

    /// Encodes `records` into one file held in memory.
    ///
    /// By default, this opens a session over a `Vec<u8>`, writes `records`
    /// and finishes it.
    fn encode(&self, records: &[R]) -> Result<Vec<u8>, Self::Error> {
        let mut session = self.begin(Vec::new())?;
        session.write(records)?;
        session.finish()
    }
}

/// One file being encoded: records in, bytes out to `W`.
pub trait EncodeSession<R, W: Write + Send>: Send {
    /// Why records could not be encoded.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Encodes `records`, appending them after those written before.
    fn write(&mut self, records: &[R]) -> Result<(), Self::Error>;

    /// Completes the file and returns the writer.
    fn finish(self) -> Result<W, Self::Error>;
}
