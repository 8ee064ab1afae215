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
        Line {
            start: buf.len(),
            delimiter: self.core.get_delimiter(),
            core: &mut self.core,
            buf,
            first: true,
            quoted: false,
            engine_used: false,
        }
    }

    /// Appends a whole record to `buf`.
    pub fn record<C: AsRef<[u8]>>(
        &mut self,
        buf: &mut Vec<u8>,
        cells: impl IntoIterator<Item = C>,
    ) {
        let mut line = self.line(buf);
        for c in cells {
            line.field(c.as_ref());
        }
    }
}

/// One record being appended to a buffer. Dropping it ends the record.
///
/// csv-core writes every quoted field, every delimiter and terminator next to one, and the record
/// of one empty field. A field it would not quote it would copy as it is, and so is it copied here,
/// straight onto the buffer: most fields of most lines (GUIDs, numbers, statuses) take that way,
/// which costs a fraction of going through the engine's slice interface (measured in
/// docs/PERFORMANCE.md).
pub struct Line<'e> {
    core: &'e mut csv_core::Writer,
    buf: &'e mut Vec<u8>,
    /// Where the line starts in the buffer.
    start: usize,
    delimiter: u8,
    first: bool,
    /// The last field was quoted: the engine closes it.
    quoted: bool,
    /// The engine wrote some of this line: it must end it, to stand at a record's start again.
    engine_used: bool,
}

impl Line<'_> {
    /// Appends one field (a delimiter before it unless it is the first).
    pub fn field(&mut self, field: &[u8]) {
        if !std::mem::take(&mut self.first) {
            if std::mem::take(&mut self.quoted) {
                self.engine(2, |core, out| {
                    let (res, n) = core.delimiter(out);
                    (res, 0, n)
                });
            } else {
                self.buf.push(self.delimiter);
            }
        }
        if !self.must_quote(field) {
            self.buf.extend_from_slice(field);
            return;
        }
        self.quoted = true;
        self.engine_used = true;
        // csv-core's bound for a field: every byte a doubled quote, and the opening quote.
        let (_, taken, _) = self.engine(2 * field.len() + 1, |core, out| core.field(field, out));
        debug_assert_eq!(taken, field.len());
    }

    /// Appends a field known to need no quotes: [`Line::must_quote`] said so of it, or of text it
    /// was cut from (a row's whole text, asked once instead of cell by cell).
    pub fn plain_field(&mut self, field: &[u8]) {
        debug_assert!(!self.must_quote(field));
        if !std::mem::take(&mut self.first) {
            if std::mem::take(&mut self.quoted) {
                self.field(field);
                return;
            }
            self.buf.push(self.delimiter);
        }
        self.buf.extend_from_slice(field);
    }

    /// Whether csv-core quotes `field`: whether it holds a byte the engine's table marks (with this
    /// configuration: the delimiter, `"`, CR and LF). Asked of a row's whole text, it says whether
    /// any field cut from it needs quotes. A long field is searched with memchr, 16 or 32 bytes a
    /// step where the table takes one; debug builds (every test) check the answer is the engine's.
    pub fn must_quote(&self, field: &[u8]) -> bool {
        let quote = if field.len() < 16 {
            field.iter().any(|&b| self.core.is_special_byte(b))
        } else {
            memchr::memchr3(b'"', b'\n', b'\r', field).is_some()
                || memchr::memchr(self.delimiter, field).is_some()
        };
        debug_assert_eq!(quote, self.core.should_quote(field));
        quote
    }

    /// Lets csv-core write at most `room` bytes at the buffer's end.
    fn engine(
        &mut self,
        room: usize,
        write: impl FnOnce(&mut csv_core::Writer, &mut [u8]) -> (WriteResult, usize, usize),
    ) -> (WriteResult, usize, usize) {
        let at = self.buf.len();
        self.buf.resize(at + room, 0);
        let done = write(self.core, &mut self.buf[at..]);
        debug_assert!(matches!(done.0, WriteResult::InputEmpty));
        self.buf.truncate(at + done.2);
        done
    }
}

impl Drop for Line<'_> {
    /// Ends the record: `\n`, after the closing quote of a quoted last field; a record of no bytes
    /// (one empty field) is written `""` so it does not read as a blank line.
    fn drop(&mut self) {
        if self.engine_used || self.buf.len() == self.start {
            self.engine(4, |core, out| {
                let (res, n) = core.terminator(out);
                (res, 0, n)
            });
        } else {
            self.buf.push(b'\n');
        }
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
