//! Writing CSV: csv-core's writer (the csv crate's own engine, so the bytes are the csv crate's)
//! encodes each record into a byte buffer. It holds no buffer of its own, so a line can be encoded
//! on any thread, into any buffer: the checking pass encodes a piece's lines end to end into one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use csv_core::WriteResult;

use super::BOM;

/// Encodes records with one delimiter: quoted (quotes doubled) exactly where the csv crate quotes
/// them (a field holding the delimiter, a quote or a line break; a record of one empty field), each
/// ended by `\n`.
pub struct Encoder {
    core: csv_core::Writer,
}

impl Encoder {
    pub fn new(delimiter: u8) -> Self {
        Encoder {
            core: csv_core::WriterBuilder::new().delimiter(delimiter).build(),
        }
    }

    /// A record appended to `buf` field by field; it ends when the [`Line`] is dropped.
    pub fn line<'e>(&'e mut self, buf: &'e mut Vec<u8>) -> Line<'e> {
        let at = buf.len();
        Line {
            core: &mut self.core,
            buf,
            at,
            first: true,
        }
    }

    /// Appends a whole record to `buf`.
    pub fn record<C: AsRef<[u8]>>(&mut self, buf: &mut Vec<u8>, cells: impl IntoIterator<Item = C>) {
        let mut line = self.line(buf);
        for c in cells {
            line.field(c.as_ref());
        }
    }
}

/// Bytes made ready past the end of a line at a time: csv-core writes into a slice, so the buffer
/// is grown (zeroed) ahead of it and cut back to what was written when the line ends.
const SLACK: usize = 256;

/// One record being appended to a buffer. Dropping it ends the record.
pub struct Line<'e> {
    core: &'e mut csv_core::Writer,
    buf: &'e mut Vec<u8>,
    /// Where the next byte goes; the buffer may hold zeroes beyond it.
    at: usize,
    first: bool,
}

impl Line<'_> {
    /// Appends one field (a delimiter before it unless it is the first).
    pub fn field(&mut self, field: &[u8]) {
        if !std::mem::take(&mut self.first) {
            self.room(2);
            let (res, n) = self.core.delimiter(&mut self.buf[self.at..]);
            debug_assert!(matches!(res, WriteResult::InputEmpty));
            self.at += n;
        }
        // csv-core's bound for a field: every byte a doubled quote, and the two quotes around it.
        self.room(2 * field.len() + 2);
        let (res, _, n) = self.core.field(field, &mut self.buf[self.at..]);
        debug_assert!(matches!(res, WriteResult::InputEmpty));
        self.at += n;
    }

    /// Makes room for `n` more bytes at [`Line::at`].
    fn room(&mut self, n: usize) {
        if self.buf.len() - self.at < n {
            self.buf.resize(self.at + n.max(SLACK), 0);
        }
    }
}

impl Drop for Line<'_> {
    /// Ends the record (closing quote, the `""` of a record of one empty field, `\n`) and cuts the
    /// buffer back to what was written.
    fn drop(&mut self) {
        self.room(4);
        let (res, n) = self.core.terminator(&mut self.buf[self.at..]);
        debug_assert!(matches!(res, WriteResult::InputEmpty));
        self.buf.truncate(self.at + n);
    }
}

/// A CSV file (or stream) written a record at a time through an [`Encoder`].
pub struct Writer<W: Write> {
    out: BufWriter<W>,
    enc: Encoder,
    line: Vec<u8>,
}

impl Writer<File> {
    /// Creates (or empties) the file at `path` through [`crate::fsafe::create`] (which refuses a
    /// path pcbulk must not write, saying `fix`), and starts it with the [`BOM`].
    pub fn create(path: &Path, fix: &'static str, delimiter: u8) -> io::Result<Self> {
        Self::with_bom(crate::fsafe::create(path, fix)?, delimiter)
    }

    /// Flushes, and waits until the file is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

impl<W: Write> Writer<W> {
    /// A file for people (a spreadsheet opens it): the [`BOM`] first.
    pub fn with_bom(mut out: W, delimiter: u8) -> io::Result<Self> {
        out.write_all(BOM)?;
        Ok(Self::plain(out, delimiter))
    }

    /// A stream without a BOM (standard output).
    pub fn plain(out: W, delimiter: u8) -> Self {
        Writer {
            out: BufWriter::with_capacity(1 << 20, out),
            enc: Encoder::new(delimiter),
            line: Vec::with_capacity(512),
        }
    }

    /// Writes one record, its cells as given (neutralise them first: see
    /// [`neutralize`](super::neutralize)).
    pub fn record<C: AsRef<[u8]>>(&mut self, cells: impl IntoIterator<Item = C>) -> io::Result<()> {
        self.write_with(|line| {
            for c in cells {
                line.field(c.as_ref());
            }
        })
    }

    /// Writes one record whose fields `fill` appends.
    pub fn write_with(&mut self, fill: impl FnOnce(&mut Line<'_>)) -> io::Result<()> {
        self.line.clear();
        fill(&mut self.enc.line(&mut self.line));
        self.out.write_all(&self.line)
    }

    /// Appends lines encoded elsewhere (by an [`Encoder`] with the same delimiter).
    pub fn write_encoded(&mut self, lines: &[u8]) -> io::Result<()> {
        self.out.write_all(lines)
    }

    /// Hands what is buffered to the OS.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, and hands back the file or stream.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}
