//! An input file opened for streaming through the one reader (`input::reader`: the encoding
//! decided once for the whole file, the delimiter from its start), its bytes hashed on the way.
//! Every command reads through here; nothing holds the whole file. An Excel workbook is streamed
//! from one of its sheets instead (`input::xlsx`), its rows numbered by their sheet rows.

use std::fs::File;
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::config::InputConfig;
pub use crate::input::encoding::Charset;
use crate::input::reader::Reader;
pub use crate::input::row::StreamRow;
use crate::input::xlsx::{self, SheetRows};
use crate::input::InputError;

/// Rows per batch: large enough to keep both cores busy, small enough to keep memory flat.
pub const BATCH: usize = 16 * 1024;

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

/// What a run's identity takes from its rows (SPEC: Exit codes): the SHA-256 of the operation's own
/// cells, as decoded and trimmed, in row order. Not the file's bytes: the same rows saved with other
/// line ends, a byte-order mark, another encoding, delimiter or quoting, another order of columns,
/// or other carried columns are the same rows. Each row is encoded unambiguously (whatever its
/// cells hold): for each cell the operation reads and that is not empty, in the order of the
/// columns' names, the column's name and the cell, each after its length (8 bytes, little-endian),
/// then a zero length that ends the row.
pub struct RowsDigest {
    hash: Sha256,
    rows: u64,
}

impl Default for RowsDigest {
    fn default() -> Self {
        let mut hash = Sha256::new();
        hash.update(b"pcbulk rows v1\n");
        RowsDigest { hash, rows: 0 }
    }
}

impl RowsDigest {
    /// Appends one row's encoding to `buf`; rows are encoded on any thread, then added in order
    /// with [`RowsDigest::add`].
    pub fn encode_row<'a>(buf: &mut Vec<u8>, cells: impl Iterator<Item = (&'static str, &'a str)>) {
        for (column, cell) in cells {
            for part in [column, cell] {
                buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
                buf.extend_from_slice(part.as_bytes());
            }
        }
        buf.extend_from_slice(&0u64.to_le_bytes());
    }

    /// Adds `rows` rows, encoded with [`RowsDigest::encode_row`], next in input order.
    pub fn add(&mut self, encoded: &[u8], rows: usize) {
        self.hash.update(encoded);
        self.rows += rows as u64;
    }

    /// The digest (hex), the number of rows included.
    pub fn finish(mut self) -> String {
        self.hash.update(self.rows.to_le_bytes());
        format!("{:x}", self.hash.finalize())
    }
}

/// Where rows come from: a text file, or a workbook's sheet.
// One per open file: the CSV reader, on every row's path, stays inline rather than behind a box.
#[allow(clippy::large_enum_variant)]
enum Rows {
    Text(Reader<'static>),
    Sheet(SheetRows),
}

/// An input opened for streaming.
pub struct Source {
    reader: Rows,
    pub delimiter: u8,
    hash: std::sync::Arc<std::sync::Mutex<Sha256>>,
}

impl Source {
    /// Opens the file as `--encoding` and `--delimiter` say, or as its bytes show.
    pub fn open(cfg: &InputConfig) -> Result<Source, InputError> {
        Source::open_with(cfg, false)
    }

    /// As [`Source::open`], hashing the bytes as they are read (see [`Source::sha256`]).
    pub fn open_hashed(cfg: &InputConfig) -> Result<Source, InputError> {
        Source::open_with(cfg, true)
    }

    fn open_with(cfg: &InputConfig, hashed: bool) -> Result<Source, InputError> {
        crate::input::refuse_not_a_file(&cfg.input)?;
        let file = File::open(&cfg.input).map_err(|cause| InputError::Io {
            path: cfg.input.display().to_string(),
            cause,
        })?;
        Source::from_file(cfg, file, hashed, None)
    }

    /// As [`Source::open`], over a file already open (read from its start), hashing its bytes with
    /// `hashed`: `apply` reads the file it checked through the same open file, so a file renamed
    /// over it meanwhile changes nothing; and from `decided`, the [`Source::charset`] its check
    /// ended with, so both passes read every row the same way.
    pub fn from_file(
        cfg: &InputConfig,
        mut file: File,
        hashed: bool,
        decided: Option<Charset>,
    ) -> Result<Source, InputError> {
        let path = cfg.input.display().to_string();
        let kind = xlsx::sniff_file(&cfg.input, &mut file)?;
        let hash = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let mut file = Hashing {
            inner: file,
            hash: hashed.then(|| std::sync::Arc::clone(&hash)),
        };
        let (reader, delimiter) = match kind {
            xlsx::Kind::Text => {
                let reader = Reader::new(file, &cfg.read, decided, path)?;
                let delimiter = reader.delimiter();
                (Rows::Text(reader), delimiter)
            }
            xlsx::Kind::Compound => return Err(xlsx::compound(&path)),
            // A workbook's results are a CSV: comma-separated unless --delimiter says otherwise.
            xlsx::Kind::Workbook => {
                let bytes = xlsx::read_bounded(&mut file, &path)?;
                let sheet = SheetRows::open(bytes, cfg.read.sheet.as_deref(), &path)?;
                (Rows::Sheet(sheet), cfg.read.delimiter.unwrap_or(b','))
            }
        };
        Ok(Source {
            delimiter,
            reader,
            hash,
        })
    }

    /// The sheet read, as the workbook names it; `None` for a text file.
    pub fn sheet(&self) -> Option<&str> {
        match &self.reader {
            Rows::Text(_) => None,
            Rows::Sheet(s) => Some(s.name()),
        }
    }

    /// How the rows read so far were decoded; after the last row, how the whole file was. A
    /// workbook's text is Unicode already.
    pub fn charset(&self) -> Charset {
        match &self.reader {
            Rows::Text(r) => r.charset(),
            Rows::Sheet(_) => Charset::Told(encoding_rs::UTF_8),
        }
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
        match &mut self.reader {
            Rows::Text(r) => r.next_row(row),
            Rows::Sheet(s) => s.next_row(row),
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
