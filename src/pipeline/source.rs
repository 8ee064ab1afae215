//! The one way an input file is read: the encoding and delimiter decided once from its start, then a
//! stream of rows (one csv-core record reader), each with the line it starts on. Every command reads
//! through here; nothing holds the whole file.

use std::fs::File;
use std::io::{Cursor, Read};

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;
use sha2::{Digest, Sha256};

use crate::config::InputConfig;
use crate::input::records::Records;
pub use crate::input::row::StreamRow;
use crate::input::{detect_delimiter, InputError};

/// Rows per batch: large enough to keep both cores busy, small enough to keep memory flat.
pub const BATCH: usize = 16 * 1024;
/// How much of the file is read to tell its encoding and delimiter.
const SNIFF: usize = 64 * 1024;

/// The file's bytes as they are read, hashed on the way (SHA-256) when asked: the hash describes
/// exactly the bytes the rows came from.
struct Hashing<R> {
    inner: R,
    hash: Option<std::sync::Arc<std::sync::Mutex<Sha256>>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &self.hash {
            h.lock()
                .unwrap_or_else(|e| e.into_inner())
                .update(&buf[..n]);
        }
        Ok(n)
    }
}

/// An input opened for streaming.
pub struct Source {
    records: Records<Box<dyn Read + Send>>,
    /// Bytes are UTF-8 unless a record's are not, which is then read as Windows-1252.
    raw_utf8: bool,
    pub encoding: &'static str,
    pub delimiter: u8,
    hash: std::sync::Arc<std::sync::Mutex<Sha256>>,
    path: String,
}

impl Source {
    /// Tells the encoding (a BOM, else valid UTF-8, else Windows-1252; or `--encoding`) and the
    /// delimiter from the start of the file, and opens a decoding stream over the whole of it.
    pub fn open(cfg: &InputConfig) -> Result<Source, InputError> {
        Source::open_with(cfg, false)
    }

    /// As [`Source::open`], hashing the bytes as they are read (see [`Source::sha256`]).
    pub fn open_hashed(cfg: &InputConfig) -> Result<Source, InputError> {
        Source::open_with(cfg, true)
    }

    fn open_with(cfg: &InputConfig, hashed: bool) -> Result<Source, InputError> {
        let file = File::open(&cfg.input).map_err(|cause| InputError::Io {
            path: cfg.input.display().to_string(),
            cause,
        })?;
        Source::from_file(cfg, file, hashed)
    }

    /// As [`Source::open`], over a file already open (read from its start), hashing its bytes with
    /// `hashed`: `apply` reads the file it checked through the same open file, so a file renamed
    /// over it meanwhile changes nothing.
    pub fn from_file(cfg: &InputConfig, file: File, hashed: bool) -> Result<Source, InputError> {
        let path = &cfg.input;
        let io_err = |cause| InputError::Io {
            path: path.display().to_string(),
            cause,
        };
        let hash = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let mut file = Hashing {
            inner: file,
            hash: hashed.then(|| std::sync::Arc::clone(&hash)),
        };
        let mut prefix = Vec::with_capacity(SNIFF);
        (&mut file)
            .take(SNIFF as u64)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        let forced = match &cfg.read.encoding {
            Some(label) => Some(
                Encoding::for_label(label.as_bytes())
                    .ok_or_else(|| InputError::UnknownEncoding(label.clone()))?,
            ),
            None => None,
        };
        let bom = Encoding::for_bom(&prefix);
        let encoding = forced.or(bom.map(|(e, _)| e)).unwrap_or_else(|| {
            match std::str::from_utf8(&prefix) {
                Ok(_) => UTF_8,
                // Cut off in the middle of a character by the sniff: still UTF-8.
                Err(e) if e.error_len().is_none() => UTF_8,
                Err(_) => WINDOWS_1252,
            }
        });
        let (sniffed, _) = encoding.decode_with_bom_removal(&prefix);
        let delimiter = cfg.read.delimiter.unwrap_or_else(|| {
            detect_delimiter(sniffed.lines().find(|l| !l.trim().is_empty()).unwrap_or(""))
        });
        let whole = Cursor::new(prefix).chain(file);
        let (reader, raw_utf8): (Box<dyn Read + Send>, bool) = if encoding == UTF_8 {
            // Raw bytes, without a BOM; records that are not UTF-8 fall back to Windows-1252.
            let mut r: Box<dyn Read + Send> = Box::new(whole);
            if bom.is_some_and(|(e, _)| e == UTF_8) {
                let mut skip = [0u8; 3];
                r.read_exact(&mut skip).map_err(io_err)?;
            }
            (r, forced.is_none())
        } else {
            let decoded = DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_sniffing(true)
                .build(whole);
            (Box::new(decoded), false)
        };
        Ok(Source {
            records: Records::new(reader, delimiter),
            raw_utf8,
            encoding: encoding.name(),
            delimiter,
            hash,
            path: path.display().to_string(),
        })
    }

    /// The SHA-256 (hex) of the bytes read so far (opened with [`Source::open_hashed`]): after the
    /// last row, of the whole file.
    pub fn sha256(&self) -> String {
        let h = self.hash.lock().unwrap_or_else(|e| e.into_inner()).clone();
        format!("{:x}", h.finalize())
    }

    /// The header: the first non-blank record.
    pub fn header(&mut self, what: &std::path::Path) -> Result<Vec<String>, InputError> {
        match self.next_row(0)? {
            Some(h) => Ok(h.cells().map(str::to_owned).collect()),
            None => Err(InputError::NoHeader(what.display().to_string())),
        }
    }

    /// The next non-blank record, with the line it starts on.
    pub fn next_row(&mut self, row: usize) -> Result<Option<StreamRow>, InputError> {
        loop {
            let rec = self.records.next_record().map_err(|cause| InputError::Io {
                path: self.path.clone(),
                cause,
            })?;
            let Some(rec) = rec else {
                return Ok(None);
            };
            // The record's fields lie end to end: one check and one copy for the whole row. A row
            // that is not UTF-8 (in a file that otherwise is) is read as Windows-1252.
            let (text, ends) = match std::str::from_utf8(rec.bytes()) {
                Ok(t) => (t.to_owned(), rec.ends().iter().map(|&e| e as u32).collect()),
                Err(_) => {
                    let mut text = String::new();
                    let mut ends = Vec::with_capacity(rec.ends().len());
                    for f in rec.fields() {
                        if self.raw_utf8 {
                            text.push_str(&WINDOWS_1252.decode_without_bom_handling(f).0);
                        } else {
                            text.push_str(&String::from_utf8_lossy(f));
                        }
                        ends.push(text.len() as u32);
                    }
                    (text, ends)
                }
            };
            let r = StreamRow::new(row, rec.line, text, ends);
            if r.cells().all(|c| c.trim().is_empty()) {
                continue;
            }
            return Ok(Some(r));
        }
    }

    /// Up to [`BATCH`] rows, numbered from `first_row`.
    pub fn batch(&mut self, first_row: usize) -> Result<Vec<StreamRow>, InputError> {
        let mut rows = Vec::with_capacity(BATCH);
        while rows.len() < BATCH {
            let Some(r) = self.next_row(first_row + rows.len())? else {
                break;
            };
            rows.push(r);
        }
        Ok(rows)
    }
}

/// What says a file has not changed: its length and modification time, as the open file sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Fingerprint {
    pub fn of(file: &File) -> std::io::Result<Fingerprint> {
        let m = file.metadata()?;
        Ok(Fingerprint {
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}
