//! How a file's bytes become text, one way for the whole file. A byte-order mark or `--encoding`
//! says which encoding it is. Otherwise the lines say it as they are read: UTF-8 if every line is,
//! Windows-1252 (what Excel writes on western European machines) if no line holds a UTF-8
//! character; a file with both is refused, naming its first line that is not UTF-8, because one of
//! the two would be stored garbled (`Malmö` as `MalmÃ¶`).

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

use super::InputError;
use crate::csvfile::count_breaks;

/// How a file's records are read as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// A byte-order mark or `--encoding` says it: the file is decoded with it, and bytes that are
    /// not text in it are refused (never read as U+FFFD).
    Told(&'static Encoding),
    /// Nothing says it: what the records read so far show.
    Shown(Evidence),
}

/// What the records of a file (UTF-8, or a single-byte encoding without a byte-order mark) have
/// shown so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Only ASCII, which UTF-8 and Windows-1252 read alike: either may still come.
    Ascii,
    /// UTF-8: a UTF-8 byte-order mark, or multi-byte characters first seen on a line.
    Utf8(Utf8At),
    /// Bytes that are not UTF-8, first on this line (this byte), and no UTF-8 character: the file
    /// is Windows-1252.
    Windows1252 { line: u64, byte: u8 },
}

/// Where a file first showed it is UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Utf8At {
    Bom,
    Line(u64),
}

/// How one record's bytes become text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode<'b> {
    /// The bytes are this UTF-8 text as they are.
    Utf8(&'b str),
    /// Each byte is a Windows-1252 character (the five bytes it leaves undefined are read as the
    /// C1 controls of the same number, as WHATWG says: never U+FFFD).
    Windows1252,
}

/// What one record's bytes hold.
enum Kind<'b> {
    Ascii(&'b str),
    /// Valid UTF-8 with a multi-byte character, the first at this offset.
    Utf8 {
        text: &'b str,
        at: usize,
    },
    /// Not UTF-8 from this offset (this byte on), and a multi-byte UTF-8 character at `utf8_at` if
    /// it has one.
    NotUtf8 {
        at: usize,
        byte: u8,
        utf8_at: Option<usize>,
    },
}

fn kind(bytes: &[u8]) -> Kind<'_> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => Kind::Ascii(text),
        Ok(text) => Kind::Utf8 {
            text,
            at: bytes.iter().position(|b| !b.is_ascii()).unwrap_or(0),
        },
        Err(e) => {
            let at = e.valid_up_to();
            let mut offset = 0;
            let mut utf8_at = None;
            for chunk in bytes.utf8_chunks() {
                if let Some(i) = chunk.valid().bytes().position(|b| !b.is_ascii()) {
                    utf8_at = Some(offset + i);
                    break;
                }
                offset += chunk.valid().len() + chunk.invalid().len();
            }
            Kind::NotUtf8 {
                at,
                byte: bytes[at],
                utf8_at,
            }
        }
    }
}

impl Charset {
    /// How to read a file: as a byte-order mark says (it wins over `--encoding`, as in every
    /// WHATWG decoder), else as `told`, else as its records show. A UTF-8 byte-order mark is UTF-8
    /// shown, not told: a line that is not UTF-8 after it is refused.
    pub fn start(bom: Option<&'static Encoding>, told: Option<&'static Encoding>) -> Charset {
        match (bom, told) {
            (Some(bom), Some(_)) => Charset::Told(bom),
            (Some(bom), None) if bom == UTF_8 => Charset::Shown(Evidence::Utf8(Utf8At::Bom)),
            (Some(bom), None) => Charset::Told(bom),
            (None, Some(told)) => Charset::Told(told),
            (None, None) => Charset::Shown(Evidence::Ascii),
        }
    }

    /// The encoding the bytes are decoded from before records are split (one that is not
    /// ASCII-compatible, such as UTF-16), or `None` when records are split from the raw bytes.
    pub fn stream_decoder(self) -> Option<&'static Encoding> {
        match self {
            Charset::Told(e) if e != UTF_8 => Some(e),
            _ => None,
        }
    }

    /// The encoding's name, as far as the records read so far say it.
    pub fn name(self) -> &'static str {
        match self {
            Charset::Told(e) => e.name(),
            Charset::Shown(Evidence::Windows1252 { .. }) => WINDOWS_1252.name(),
            Charset::Shown(_) => UTF_8.name(),
        }
    }

    /// How to read the record whose fields' bytes, end to end, are `bytes`, starting on `line`;
    /// what it shows is added to what the file has shown. A record that contradicts the rest of
    /// the file (or itself) is refused, naming the file's first line that is not UTF-8.
    pub fn read<'b>(&mut self, bytes: &'b [u8], line: u64) -> Result<Decode<'b>, InputError> {
        let Charset::Shown(shown) = *self else {
            // Told, or decoded to UTF-8 on the way in (where bytes that are not text are refused).
            return told_utf8(bytes, line);
        };
        if let Evidence::Utf8(_) = shown {
            if let Ok(text) = std::str::from_utf8(bytes) {
                // Most records of most files: one check, and nothing more to learn.
                return Ok(Decode::Utf8(text));
            }
        }
        self.learn(shown, bytes, line)
    }

    /// Weighs a record against what the file has shown so far, kept apart from [`Charset::read`]
    /// so the common case (a UTF-8 record of a UTF-8 file) stays a single check there.
    #[inline]
    fn learn<'b>(
        &mut self,
        shown: Evidence,
        bytes: &'b [u8],
        line: u64,
    ) -> Result<Decode<'b>, InputError> {
        // A record spans lines only inside quotes, whose line breaks are in its bytes.
        let line_at = |at: usize| line + count_breaks(&bytes[..at], &mut false);
        let refused = |line, byte, utf8| Err(InputError::NotUtf8 { line, byte, utf8 });
        match (shown, kind(bytes)) {
            (_, Kind::Ascii(text)) | (Evidence::Utf8(_), Kind::Utf8 { text, .. }) => {
                Ok(Decode::Utf8(text))
            }
            (Evidence::Ascii, Kind::Utf8 { text, at }) => {
                *self = Charset::Shown(Evidence::Utf8(Utf8At::Line(line_at(at))));
                Ok(Decode::Utf8(text))
            }
            (Evidence::Windows1252 { .. }, Kind::NotUtf8 { utf8_at: None, .. }) => {
                Ok(Decode::Windows1252)
            }
            (
                Evidence::Ascii,
                Kind::NotUtf8 {
                    at,
                    byte,
                    utf8_at: None,
                },
            ) => {
                *self = Charset::Shown(Evidence::Windows1252 {
                    line: line_at(at),
                    byte,
                });
                Ok(Decode::Windows1252)
            }
            (Evidence::Utf8(utf8), Kind::NotUtf8 { at, byte, .. }) => {
                refused(line_at(at), byte, utf8)
            }
            (Evidence::Windows1252 { line: first, byte }, Kind::Utf8 { at, .. })
            | (
                Evidence::Windows1252 { line: first, byte },
                Kind::NotUtf8 {
                    utf8_at: Some(at), ..
                },
            ) => refused(first, byte, Utf8At::Line(line_at(at))),
            (
                Evidence::Ascii,
                Kind::NotUtf8 {
                    at,
                    byte,
                    utf8_at: Some(utf8),
                },
            ) => refused(line_at(at), byte, Utf8At::Line(line_at(utf8))),
        }
    }
}

/// A record of a file whose encoding is told (or decoded to UTF-8 on the way in): its bytes must
/// be UTF-8, and the first that are not are named with their line, never read as U+FFFD.
#[inline]
fn told_utf8(bytes: &[u8], line: u64) -> Result<Decode<'_>, InputError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Decode::Utf8(text)),
        Err(e) => {
            let at = e.valid_up_to();
            let bad = &bytes[at..at + e.error_len().unwrap_or(bytes.len() - at)];
            Err(InputError::NotInEncoding {
                line: line + count_breaks(&bytes[..at], &mut false),
                encoding: UTF_8.name(),
                bytes: bad.to_vec(),
            })
        }
    }
}

impl Decode<'_> {
    /// The text of a record, given its fields' bytes, with where each field ends in it.
    pub fn text<'f>(self, fields: impl Iterator<Item = &'f [u8]>) -> (String, Vec<u32>) {
        let mut text = String::new();
        let mut ends = Vec::new();
        for f in fields {
            match self {
                // Fields split at ASCII delimiters: each of a UTF-8 record is UTF-8.
                Decode::Utf8(_) => text.push_str(&String::from_utf8_lossy(f)),
                Decode::Windows1252 => {
                    text.push_str(&WINDOWS_1252.decode_without_bom_handling(f).0)
                }
            }
            ends.push(text.len() as u32);
        }
        (text, ends)
    }
}

/// The message of [`InputError::NotInEncoding`].
pub(super) fn not_in_encoding(line: u64, encoding: &str, bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().map(|b| format!("0x{b:02X}")).collect();
    let held = match shown.len() {
        0 => String::new(),
        1 => format!(" (the byte {})", shown[0]),
        _ => format!(" (the bytes {})", shown.join(" ")),
    };
    format!(
        "line {line} is not {encoding}{held}, though the file's byte-order mark or --encoding \
         says it is: read anyway, it would hold U+FFFD (the replacement character) where its text \
         was. Save the file again as {encoding}, or give the encoding it was saved in with \
         --encoding (windows-1252, for instance)"
    )
}

/// The message of [`InputError::NotUtf8`].
pub(super) fn not_utf8(line: u64, byte: u8, utf8: Utf8At) -> String {
    let why = match utf8 {
        Utf8At::Bom => "though the file starts with a UTF-8 byte-order mark".to_owned(),
        Utf8At::Line(l) if l == line => "though other text on it is".to_owned(),
        Utf8At::Line(l) => format!("though line {l} is"),
    };
    format!(
        "line {line} is not UTF-8 (it has the byte 0x{byte:02X}), {why}: read in either \
         encoding, the other's accented letters would be stored garbled. Save the file as UTF-8, \
         or say which encoding it is with --encoding windows-1252 (or the one it was saved in)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads records (bytes, line) one after another as a file's, the first refusal ending it.
    fn read_all(records: &[(&[u8], u64)]) -> Result<(Vec<String>, Charset), InputError> {
        let mut charset = Charset::start(None, None);
        let mut texts = Vec::new();
        for (bytes, line) in records {
            texts.push(charset.read(bytes, *line)?.text([*bytes].into_iter()).0);
        }
        Ok((texts, charset))
    }

    fn refusal(records: &[(&[u8], u64)]) -> (u64, u8, Utf8At) {
        match read_all(records) {
            Err(InputError::NotUtf8 { line, byte, utf8 }) => (line, byte, utf8),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_utf8_file_is_utf8_and_a_file_without_utf8_characters_is_windows_1252() {
        let (texts, charset) =
            read_all(&[(b"a,b", 1), ("Åsa,Göteborg".as_bytes(), 2), (b"x,y", 3)]).unwrap();
        assert_eq!(texts, ["a,b", "Åsa,Göteborg", "x,y"]);
        assert_eq!(charset, Charset::Shown(Evidence::Utf8(Utf8At::Line(2))));
        assert_eq!(charset.name(), "UTF-8");

        let (texts, charset) = read_all(&[(b"a,b", 1), (b"x,y", 2), (b"1,Malm\xf6", 4)]).unwrap();
        assert_eq!(texts, ["a,b", "x,y", "1,Malmö"]);
        assert_eq!(charset.name(), "windows-1252");
        assert_eq!(
            Decode::Windows1252.text([&b"1"[..], b"Malm\xf6"].into_iter()),
            ("1Malmö".to_owned(), vec![1, 7])
        );
    }

    #[test]
    fn utf8_then_a_line_that_is_not_is_refused_naming_that_line() {
        let got = refusal(&[(b"a,b", 1), ("1,Malmö".as_bytes(), 2), (b"2,Malm\xf6", 5)]);
        assert_eq!(got, (5, 0xf6, Utf8At::Line(2)));
    }

    #[test]
    fn windows_1252_then_utf8_is_refused_naming_the_first_line_that_is_not_utf8() {
        let got = refusal(&[(b"a,b", 1), (b"1,Malm\xf6", 3), ("2,Malmö".as_bytes(), 9)]);
        assert_eq!(got, (3, 0xf6, Utf8At::Line(9)));
    }

    #[test]
    fn one_record_with_both_is_refused_at_the_line_of_its_first_bad_byte() {
        // The record's second field is quoted over two lines; its bad byte is on the second.
        let got = refusal(&[(b"a,b", 1), (b"Malm\xc3\xb6\xf6rebro\nM\xe5", 2)]);
        assert_eq!(got, (2, 0xf6, Utf8At::Line(2)));
        let got = refusal(&[(b"a,b", 1), (b"x\r\nMalm\xf6G\xc3\xb6teborg", 2)]);
        assert_eq!(got, (3, 0xf6, Utf8At::Line(3)));
        // In a Windows-1252 file, a later record holding a UTF-8 character among its bytes.
        let got = refusal(&[(b"\xe9t\xe9", 2), (b"\xe9\n\nG\xc3\xb6teborg", 4)]);
        assert_eq!(got, (2, 0xe9, Utf8At::Line(6)));
    }

    #[test]
    fn after_a_utf8_bom_any_line_that_is_not_utf8_is_refused() {
        let mut charset = Charset::start(Some(UTF_8), None);
        assert_eq!(charset.read(b"a,b", 1).unwrap(), Decode::Utf8("a,b"));
        match charset.read(b"1,Malm\xf6", 2) {
            Err(InputError::NotUtf8 { line: 2, utf8, .. }) => assert_eq!(utf8, Utf8At::Bom),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn told_an_encoding_bytes_that_are_not_text_in_it_are_refused() {
        let mut charset = Charset::start(None, Some(UTF_8));
        assert_eq!(
            charset.read("Malmö".as_bytes(), 1).unwrap(),
            Decode::Utf8("Malmö")
        );
        match charset.read(b"x\r\nMalm\xf6", 2) {
            Err(InputError::NotInEncoding { line: 3, bytes, .. }) => assert_eq!(bytes, [0xf6]),
            other => panic!("{other:?}"),
        }
        // A byte-order mark wins over what --encoding says.
        let charset = Charset::start(Some(encoding_rs::UTF_16LE), Some(WINDOWS_1252));
        assert_eq!(charset, Charset::Told(encoding_rs::UTF_16LE));
        assert_eq!(charset.stream_decoder(), Some(encoding_rs::UTF_16LE));
        assert_eq!(Charset::start(None, Some(UTF_8)).stream_decoder(), None);
    }

    #[test]
    fn a_read_that_starts_from_the_decision_of_a_whole_read_decodes_the_same() {
        let file: &[(&[u8], u64)] = &[(b"a,b", 1), (b"x,y", 2), (b"1,Malm\xf6", 3)];
        let (first, decided) = read_all(file).unwrap();
        let mut again = decided;
        let second: Vec<String> = file
            .iter()
            .map(|(b, l)| again.read(b, *l).unwrap().text([*b].into_iter()).0)
            .collect();
        assert_eq!(first, second);
        assert_eq!(again, decided);
    }
}
