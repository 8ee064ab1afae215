//! The one way input bytes become rows, from any stream: the byte-order mark, `--encoding` and the
//! delimiter found from the start, then one record at a time, read as the file's one encoding
//! ([`Charset`]) and numbered by the line it starts on. Nothing holds the whole file.

use std::io::Read;

use encoding_rs::{DecoderResult, Encoding};

use super::encoding::{Charset, Decode};
use super::row::StreamRow;
use super::{detect_delimiter, InputError, ReadOptions};
use crate::csvfile::{RecordError, Records};

/// How much of the file is read to find its byte-order mark and delimiter.
const SNIFF: usize = 64 * 1024;

/// How the line Windows PowerShell's `Export-Csv` writes above the header starts.
const TYPE_LINE: &str = "#TYPE ";

/// The `#TYPE System.Management.Automation.PSCustomObject` first line of a PowerShell export: not
/// the header, and not data.
fn is_type_line(r: &StreamRow) -> bool {
    r.line == 1 && r.row == 0 && r.cells().next().is_some_and(|c| c.starts_with(TYPE_LINE))
}

/// Rows from a stream of bytes.
pub struct Reader<'a> {
    records: Records<Box<dyn Read + Send + 'a>>,
    charset: Charset,
    delimiter: u8,
    /// Names the file in messages.
    path: String,
}

impl<'a> Reader<'a> {
    /// Opens `src` (named `path` in messages) as `opts` say. `decided` is what an earlier read of
    /// the same bytes ended with ([`Reader::charset`]): a second read starts from it, so it reads
    /// every record the way the first did.
    pub fn new(
        mut src: impl Read + Send + 'a,
        opts: &ReadOptions,
        decided: Option<Charset>,
        path: String,
    ) -> Result<Reader<'a>, InputError> {
        let mut prefix = Vec::with_capacity(SNIFF);
        (&mut src)
            .take(SNIFF as u64)
            .read_to_end(&mut prefix)
            .map_err(|cause| InputError::Io {
                path: path.clone(),
                cause,
            })?;
        let bom = Encoding::for_bom(&prefix);
        let charset = decided.unwrap_or_else(|| Charset::start(bom.map(|b| b.0), opts.encoding));
        let delimiter = opts.delimiter.unwrap_or_else(|| {
            let sniffed = match charset.stream_decoder() {
                Some(e) => e.decode_with_bom_removal(&prefix).0,
                None => {
                    String::from_utf8_lossy(prefix.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&prefix))
                }
            };
            let header = sniffed
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with(TYPE_LINE));
            detect_delimiter(header.unwrap_or(""))
        });
        let mut whole = std::io::Cursor::new(prefix);
        if charset.stream_decoder().is_none() && bom.is_some() {
            // A UTF-8 byte-order mark (any other comes with a stream decoder) is not text.
            whole.set_position(3);
        }
        let whole = whole.chain(src);
        let reader: Box<dyn Read + Send + 'a> = match charset.stream_decoder() {
            // Decoded to UTF-8 on the way in (a byte-order mark, which wins, removed).
            Some(e) => Box::new(Decoded::new(whole, e)),
            // Raw bytes: each record is read as the charset says.
            None => Box::new(whole),
        };
        Ok(Reader {
            records: Records::new(reader, delimiter),
            charset,
            delimiter,
            path,
        })
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// How the records read so far were read; after the last, how the whole file was.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// The next record with a cell that is not blank (numbered `row`), with the line it starts on.
    pub fn next_row(&mut self, row: usize) -> Result<Option<StreamRow>, InputError> {
        loop {
            let rec = self.records.next_record().map_err(|e| match e {
                RecordError::Io(cause) => match Malformed::of(&cause) {
                    Some(m) => InputError::NotInEncoding {
                        line: m.line,
                        encoding: m.encoding,
                        bytes: m.bytes.clone(),
                    },
                    None => InputError::Io {
                        path: self.path.clone(),
                        cause,
                    },
                },
                RecordError::UnclosedQuote { line, column } => {
                    InputError::UnclosedQuote { line, column }
                }
            })?;
            let Some(rec) = rec else {
                return Ok(None);
            };
            let (text, ends) = match self.charset.read(rec.bytes(), rec.line)? {
                // The common case: one check and one copy for the whole row.
                Decode::Utf8(text) if rec.ends().iter().all(|&e| text.is_char_boundary(e)) => (
                    text.to_owned(),
                    rec.ends().iter().map(|&e| e as u32).collect(),
                ),
                // UTF-8 only with its delimiters taken out (a character's bytes on both sides of
                // one): its fields are not text in any encoding the file could be in.
                Decode::Utf8(_) => {
                    let (at, byte) = rec
                        .fields()
                        .find_map(|f| {
                            let e = std::str::from_utf8(f).err()?;
                            Some(f[e.valid_up_to()])
                        })
                        .map_or((rec.line, 0), |b| (rec.line, b));
                    return Err(InputError::NotUtf8 {
                        line: at,
                        byte,
                        utf8: crate::input::encoding::Utf8At::Line(rec.line),
                    });
                }
                other => other.text(rec.fields()),
            };
            let r = StreamRow::new(row, rec.line, text, ends);
            if r.cells().all(|c| super::row::trim(c).is_empty()) || is_type_line(&r) {
                continue;
            }
            return Ok(Some(r));
        }
    }
}

/// Bytes that are no text in the encoding a file is decoded from, found on `line`.
#[derive(Debug, thiserror::Error)]
#[error("line {line} is not {encoding}")]
struct Malformed {
    line: u64,
    encoding: &'static str,
    /// The bytes, as far as they are still at hand.
    bytes: Vec<u8>,
}

impl Malformed {
    fn of(e: &std::io::Error) -> Option<&Malformed> {
        e.get_ref()?.downcast_ref()
    }
}

/// How many bytes are decoded at a time.
const DECODE_CHUNK: usize = 64 * 1024;

/// A stream decoded to UTF-8 as it is read (its byte-order mark, which wins, removed), refusing
/// any bytes that are not text in its encoding: a lone UTF-16 surrogate, or bytes of another
/// encoding, would otherwise be read as U+FFFD and stored and sent as that.
struct Decoded<R> {
    src: R,
    decoder: encoding_rs::Decoder,
    encoding: &'static Encoding,
    raw: Vec<u8>,
    /// What of `raw` is not yet decoded.
    at: usize,
    out: Vec<u8>,
    /// What of `out` is not yet read.
    out_at: usize,
    /// The source has ended.
    eof: bool,
    /// Line breaks decoded so far: the line a malformed sequence is on.
    breaks: u64,
    prev_cr: bool,
}

impl<R: Read> Decoded<R> {
    fn new(src: R, encoding: &'static Encoding) -> Self {
        Decoded {
            src,
            decoder: encoding.new_decoder(),
            encoding,
            raw: Vec::with_capacity(DECODE_CHUNK),
            at: 0,
            out: vec![0; DECODE_CHUNK],
            out_at: DECODE_CHUNK,
            eof: false,
            breaks: 0,
            prev_cr: false,
        }
    }

    /// Decodes more into `out`; `false` at the end of the stream.
    fn decode_more(&mut self) -> std::io::Result<bool> {
        if self.at == self.raw.len() {
            if self.eof {
                return Ok(false);
            }
            self.raw.resize(DECODE_CHUNK, 0);
            let n = self.src.read(&mut self.raw)?;
            self.raw.truncate(n);
            self.at = 0;
            self.eof = n == 0;
        }
        self.out.resize(DECODE_CHUNK, 0);
        let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
            &self.raw[self.at..],
            &mut self.out,
            self.eof,
        );
        self.at += read;
        self.out.truncate(written);
        self.out_at = 0;
        self.breaks += crate::csvfile::count_breaks(&self.out, &mut self.prev_cr);
        if let DecoderResult::Malformed(bad, after) = result {
            let end = self.at.saturating_sub(after as usize);
            let start = end.saturating_sub(bad as usize);
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                Malformed {
                    line: self.breaks + 1,
                    encoding: self.encoding.name(),
                    bytes: self.raw[start..end].to_vec(),
                },
            ));
        }
        Ok(!(self.eof && result == DecoderResult::InputEmpty && written == 0))
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out_at == self.out.len() {
            if !self.decode_more()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_at);
        buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
        self.out_at += n;
        Ok(n)
    }
}
