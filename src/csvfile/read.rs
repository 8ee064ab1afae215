//! Reading CSV: one record reader, csv-core's push parser over any byte stream, with the line each
//! record starts on counted exactly (blank lines and line breaks inside quotes included: the csv
//! crate's own count skips blank lines), in constant memory. A quoted field still open at the end of
//! the stream is an error: csv-core would end it there, one value swallowing every line after its
//! quote. The input reader (`input::reader`) decodes and checks what it returns; [`Reader`] reads
//! pcbulk's own files back (results files, plans) through it.

use std::io::{self, BufRead, Read};

use csv_core::{ReadRecordResult, ReaderBuilder};
use thiserror::Error;

/// Why no record could be read.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A field's opening quote is never closed: the field would run to the end of the file.
    #[error("line {line}: the quoted value in column {column} is never closed")]
    UnclosedQuote { line: u64, column: usize },
}

/// The most bytes one row may hold (a file that never ends a row, `/dev/zero` say, must not take
/// all memory), and the most cells.
pub const MAX_ROW: usize = 64 << 20;
pub const MAX_CELLS: usize = 1 << 20;

fn too_long(line: u64) -> RecordError {
    RecordError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the row that starts on line {line} runs past {} MiB (or {} cells) without ending: \
             this does not look like a CSV file of changes",
            MAX_ROW >> 20,
            MAX_CELLS
        ),
    ))
}

impl From<RecordError> for io::Error {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Reads records one at a time from a stream of UTF-8 (or ASCII-compatible) bytes.
pub struct Records<R> {
    parser: csv_core::Reader,
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Line breaks consumed so far.
    breaks: u64,
    prev_cr: bool,
    /// The line break added at the end has been read.
    probed: bool,
    /// A record has been read by the parser: it stands between records, where a plain line (see
    /// [`Records::plain_line`]) may be read without it.
    between: bool,
    /// The delimiter, when it is a byte a plain line can be split at.
    plain_delimiter: Option<u8>,
}

/// One record: its fields as bytes, and the line it starts on (1-based).
pub struct Record<'r> {
    pub line: u64,
    out: &'r [u8],
    ends: &'r [usize],
}

impl<'r> Record<'r> {
    /// All the fields' bytes, one after another.
    pub fn bytes(&self) -> &'r [u8] {
        self.out
    }

    /// Where each field ends in [`Record::bytes`].
    pub fn ends(&self) -> &'r [usize] {
        self.ends
    }

    pub fn fields(&self) -> impl Iterator<Item = &'r [u8]> + '_ {
        let out = self.out;
        let mut from = 0;
        self.ends.iter().map(move |&to| {
            let f = &out[from..to];
            from = to;
            f
        })
    }
}

impl<'r> Record<'r> {
    /// The fields as text, or the error of the first that is not UTF-8.
    pub fn texts(&self) -> Result<Vec<&'r str>, std::str::Utf8Error> {
        let out = self.out;
        let mut from = 0;
        self.ends
            .iter()
            .map(|&to| {
                let f = std::str::from_utf8(&out[from..to]);
                from = to;
                f
            })
            .collect()
    }
}

/// A CSV file pcbulk wrote, read back through [`Records`] (a results file for the report, a plan,
/// the results of a validation being rewritten): its byte-order mark passed over, its delimiter
/// given or found from its first line.
pub struct Reader<R> {
    records: Records<io::BufReader<R>>,
    delimiter: u8,
}

impl<R: Read> Reader<R> {
    /// Reads `src` from where it stands. A [`BOM`](super::BOM) there is passed over; the delimiter
    /// is what `delimiter` picks from the bytes after it (up to 64 KiB: the header line, whole
    /// unless it is longer).
    pub fn new(src: R, delimiter: impl FnOnce(&[u8]) -> io::Result<u8>) -> io::Result<Self> {
        let mut src = io::BufReader::with_capacity(1 << 16, src);
        if src.fill_buf()?.starts_with(super::BOM) {
            src.consume(super::BOM.len());
        }
        let delimiter = delimiter(src.fill_buf()?)?;
        Ok(Reader {
            records: Records::new(src, delimiter),
            delimiter,
        })
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The next record, or `None` at the end (see [`Records::next_record`]).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, RecordError> {
        self.records.next_record()
    }
}

/// Counts line breaks (`\n`, `\r\n`, a lone `\r`), carrying a `\r` at a chunk's end over.
pub(crate) fn count_breaks(bytes: &[u8], prev_cr: &mut bool) -> u64 {
    let mut n = 0;
    for &b in bytes {
        match b {
            b'\n' if *prev_cr => *prev_cr = false,
            b'\n' => n += 1,
            b'\r' => {
                n += 1;
                *prev_cr = true;
            }
            _ => *prev_cr = false,
        }
    }
    n
}

impl<R: Read> Records<R> {
    pub fn new(src: R, delimiter: u8) -> Self {
        Records {
            parser: ReaderBuilder::new().delimiter(delimiter).build(),
            src,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            out: vec![0; 4096],
            ends: vec![0; 64],
            breaks: 0,
            prev_cr: false,
            probed: false,
            between: false,
            plain_delimiter: (!matches!(delimiter, b'"' | b'\r' | b'\n')).then_some(delimiter),
        }
    }

    /// The fast way through the common line: one that is whole in the buffer and holds no quote
    /// and no line break but the one that ends it. csv-core reads such a line as its delimiters
    /// split it, and stands, after any record, where it would stand after this one (every state
    /// it ends a record in reads the next byte as the start of a record does), so the two ways mix
    /// freely. Blank lines (skipped, and counted) are read the same way. Returns the number of
    /// fields of the record it put in `out`/`ends`, or `None` when the parser must read on.
    fn plain_line(&mut self) -> Option<(u64, usize)> {
        let delimiter = self.plain_delimiter.filter(|_| self.between)?;
        loop {
            let avail = &self.buf[self.start..self.end];
            let nl = memchr::memchr(b'\n', avail)?;
            let line = &avail[..nl];
            let body = line.strip_suffix(b"\r").unwrap_or(line);
            if memchr::memchr2(b'"', b'\r', body).is_some() {
                return None;
            }
            if body.is_empty() {
                self.breaks += count_breaks(&avail[..=nl], &mut self.prev_cr);
                self.start += nl + 1;
                continue;
            }
            // Not blank, so not the `\n` of a `\r\n` whose `\r` ended the record before.
            let line_no = self.breaks + 1;
            if self.out.len() < body.len() {
                self.out.resize(body.len().next_power_of_two(), 0);
            }
            let (mut nout, mut nends, mut from) = (0, 0, 0);
            for to in memchr::memchr_iter(delimiter, body).chain(std::iter::once(body.len())) {
                let field = &body[from..to];
                self.out[nout..nout + field.len()].copy_from_slice(field);
                nout += field.len();
                if nends == self.ends.len() {
                    self.ends.resize(self.ends.len() * 2, 0);
                }
                self.ends[nends] = nout;
                nends += 1;
                from = to + 1;
            }
            self.breaks += 1;
            self.prev_cr = false;
            self.start += nl + 1;
            return Some((line_no, nends));
        }
    }

    /// Reads the next chunk once the buffer is spent, so the parser always has bytes or the end.
    #[inline]
    fn refill(&mut self) -> io::Result<()> {
        if self.start == self.end && !self.eof {
            self.start = 0;
            self.end = self.src.read(&mut self.buf)?;
            self.eof = self.end == 0;
        }
        Ok(())
    }

    /// The open quote reported on the line it opens on, not the end of the file where it was
    /// found: that is the line a user has to fix.
    #[cold]
    fn unclosed_quote(&self, start_line: Option<u64>, nends: usize) -> RecordError {
        let from = if nends == 0 { 0 } else { self.ends[nends - 1] };
        let inside = count_breaks(&self.out[..from], &mut false);
        RecordError::UnclosedQuote {
            line: start_line.unwrap_or(self.breaks + 1) + inside,
            column: nends + 1,
        }
    }

    /// Moves past the `nin` bytes the parser took, counting their line breaks, and notes the line
    /// the record starts on once its first byte (or its end) is seen, so a record's line number
    /// skips the blank lines before it.
    #[inline]
    fn consume(&mut self, nin: usize, ended: bool, start_line: &mut Option<u64>) {
        let consumed = &self.buf[self.start..self.start + nin];
        if start_line.is_none() {
            // Leading line breaks are blank lines before the record.
            let lead = consumed
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            let mut cr = self.prev_cr;
            let before = self.breaks + count_breaks(&consumed[..lead], &mut cr);
            if lead < consumed.len() || ended {
                *start_line = Some(before + 1);
            }
        }
        self.breaks += count_breaks(consumed, &mut self.prev_cr);
        self.start += nin;
    }

    /// The next record, or `None` at the end. Blank lines are skipped (and counted).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, RecordError> {
        if let Some((line, nends)) = self.plain_line() {
            let nout = self.ends[nends - 1];
            return Ok(Some(Record {
                line,
                out: &self.out[..nout],
                ends: &self.ends[..nends],
            }));
        }
        let (mut nout, mut nends) = (0, 0);
        let mut start_line: Option<u64> = None;
        loop {
            self.refill()?;
            // At the end, one line break more, once: it changes no record (it ends the last one,
            // or is a blank line) unless a quoted field is still open, the one place a line break
            // is copied out. (csv-core does not say where it stands, and its clones do not work.)
            let probe = self.start == self.end && !self.probed;
            let input = if probe {
                &b"\n"[..]
            } else {
                &self.buf[self.start..self.end]
            };
            let (res, nin, o, e) =
                self.parser
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nends..]);
            if probe {
                self.probed = nin == 1;
                if nin == 1 && o == 1 {
                    return Err(self.unclosed_quote(start_line, nends));
                }
            } else {
                let ended = matches!(res, ReadRecordResult::Record);
                self.consume(nin, ended, &mut start_line);
            }
            nout += o;
            nends += e;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if self.out.len() >= MAX_ROW => {
                    return Err(too_long(start_line.unwrap_or(self.breaks + 1)))
                }
                ReadRecordResult::OutputEndsFull if self.ends.len() >= MAX_CELLS => {
                    return Err(too_long(start_line.unwrap_or(self.breaks + 1)))
                }
                ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    self.between = true;
                    return Ok(Some(Record {
                        line: start_line.unwrap_or(self.breaks + 1),
                        out: &self.out[..nout],
                        ends: &self.ends[..nends],
                    }));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `chunk` bytes at a time, to cross every boundary.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(text: &[u8], chunk: usize) -> Result<Vec<(u64, Vec<String>)>, RecordError> {
        let mut r = Records::new(Trickle(text, chunk), b',');
        let mut v = Vec::new();
        while let Some(rec) = r.next_record()? {
            let cells = rec
                .fields()
                .map(|f| String::from_utf8(f.to_vec()).unwrap())
                .collect();
            v.push((rec.line, cells));
        }
        Ok(v)
    }

    fn all(text: &[u8], chunk: usize) -> Vec<(u64, Vec<String>)> {
        read_all(text, chunk).unwrap()
    }

    /// The line and column an unclosed quote is reported at, at every chunking.
    fn unclosed(text: &[u8]) -> (u64, usize) {
        let mut seen = None;
        for chunk in [1, 2, 3, 7, 64 * 1024] {
            match read_all(text, chunk) {
                Err(RecordError::UnclosedQuote { line, column }) => {
                    let at = (line, column);
                    assert!(seen.is_none_or(|s| s == at), "chunk {chunk}: {at:?}");
                    seen = Some(at);
                }
                other => panic!("chunk {chunk}: {other:?}"),
            }
        }
        seen.unwrap()
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens_not_read_to_the_end() {
        // The note opens a quote on line 3 that never closes: without the check, line 4 would
        // become the rest of that note.
        assert_eq!(unclosed(b"a,b\n1,2\n3,\"half a note\n4,5\n"), (3, 2));
        // Line breaks inside earlier quoted values count; so does a CRLF, and a blank line before.
        assert_eq!(unclosed(b"a,b,c\r\n\r\n\"x\r\ny\",\"z\r\n"), (4, 2));
        // A doubled quote inside the open value does not close it.
        assert_eq!(unclosed(b"a\n\"say \"\"hi\"\""), (2, 1));
        assert_eq!(unclosed(b"\"header"), (1, 1));
    }

    #[test]
    fn quotes_that_close_at_the_very_end_or_stand_inside_a_bare_value_are_fine() {
        for (text, last) in [
            (&b"a,b\n1,\"x\ny\""[..], vec!["1", "x\ny"]),
            (b"a,b\n1,\"say \"\"hi\"\"\"", vec!["1", "say \"hi\""]),
            (b"a,b\n1,5\" screen", vec!["1", "5\" screen"]),
            (b"a,b\n1,\"x\"\n", vec!["1", "x"]),
        ] {
            for chunk in [1, 2, 64] {
                let got = all(text, chunk);
                assert_eq!(got.last().unwrap().1, last, "{text:?} chunk {chunk}");
            }
        }
    }

    /// What csv-core alone reads from `text` (every record, with no plain-line shortcut), with
    /// the line each starts on as the shortcut-free path counts it.
    fn parser_only(text: &[u8], chunk: usize) -> Vec<(u64, Vec<String>)> {
        let mut r = Records::new(Trickle(text, chunk), b',');
        r.plain_delimiter = None;
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            let cells = rec
                .fields()
                .map(|f| String::from_utf8(f.to_vec()).unwrap())
                .collect();
            v.push((rec.line, cells));
        }
        v
    }

    #[test]
    fn plain_lines_read_without_the_parser_read_as_the_parser_reads_them() {
        // Plain lines between quoted ones, blank lines, CRLF, a lone CR ending a record, a CR
        // ending a record just before a buffer's end, empty cells, a quote inside a bare value
        // and a BOM's bytes on a later line (kept: only the file's first bytes can be one).
        let text: &[u8] = b"h1,h2,h3\r\n\
            a,b,c\n\
            \"q,1\",\"x\ny\",z\r\n\
            \n\r\n\
            d,,f\r\
            g,h,i\n\
            ,,\n\
            5\" screen,j,k\n\
            \xef\xbb\xbfl,m,n\r\n\
            \r\
            o,p\n\
            last,row,here";
        for chunk in [1, 2, 3, 5, 7, 11, 64, 64 * 1024] {
            let want = parser_only(text, chunk);
            assert_eq!(all(text, chunk), want, "chunk {chunk}");
        }
        let got = all(text, 64 * 1024);
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 3, 7, 8, 9, 10, 11, 13, 14]);
        assert_eq!(got[3].1, vec!["d", "", "f"]);
        assert_eq!(got[8].1, vec!["o", "p"]);
    }

    #[test]
    fn an_unclosed_quote_after_plain_lines_is_still_found() {
        assert_eq!(unclosed(b"a,b\n1,2\n3,4\n5,\"open\n6,7\n"), (4, 2));
    }

    #[test]
    fn lines_count_blank_lines_quoted_breaks_and_every_line_ending_at_any_chunking() {
        let text = b"a,b\r\n\r\n1,\"x\ny\"\n\n\r3,4\r5,6";
        for chunk in [1, 2, 3, 5, 64] {
            let got = all(text, chunk);
            let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
            assert_eq!(lines, vec![1, 3, 7, 8], "chunk {chunk}");
            assert_eq!(got[1].1, vec!["1", "x\ny"]);
            assert_eq!(got[3].1, vec!["5", "6"]);
        }
    }
}
