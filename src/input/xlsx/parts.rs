//! The parts of a workbook's zip, read with a streaming XML parser: the workbook (its sheets and
//! date system), the relationships that say where each part is, the styles (each cell style's
//! number format) and the shared strings, of which only those the sheet uses are kept.

use std::collections::HashMap;
use std::io::{BufReader, Cursor};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::numfmt::{self, Format};

/// The workbook's zip, owned by the reading thread.
pub type Zip = zip::ZipArchive<Cursor<Vec<u8>>>;
/// A streaming reader over one part.
pub type Xml<'a> = Reader<BufReader<zip::read::ZipFile<'a, Cursor<Vec<u8>>>>>;

/// The most bytes one text value may take: Excel holds at most 32,767 characters in a cell.
pub const MAX_TEXT: usize = 32_767 * 4;
/// The most cell styles read: Excel's own limit is 64,000.
const MAX_STYLES: usize = 65_536;

/// Opens a part by its name in the zip; `None` when there is none.
pub fn open<'a>(zip: &'a mut Zip, name: &str) -> Result<Option<Xml<'a>>, String> {
    let name = name.trim_start_matches('/');
    let index = match zip.index_for_name(name) {
        Some(i) => i,
        None => return Ok(None),
    };
    let part = zip
        .by_index(index)
        .map_err(|e| format!("its part {name} cannot be read ({e})"))?;
    let mut xml = Reader::from_reader(BufReader::with_capacity(64 << 10, part));
    xml.config_mut().check_end_names = false;
    Ok(Some(xml))
}

/// An attribute's value by its local name (`r:id` is `id`), unescaped.
pub fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The next event, its XML error said as a reason.
pub fn next<'b>(xml: &mut Xml<'_>, buf: &'b mut Vec<u8>) -> Result<Event<'b>, String> {
    buf.clear();
    xml.read_event_into(buf)
        .map_err(|e| format!("is not well-formed XML ({e})"))
}

/// The text inside the element just opened, up to its end: text runs, entities and CDATA
/// joined, phonetic runs (`rPh`) left out, `_xHHHH_` escapes decoded.
pub fn text_of(xml: &mut Xml<'_>, end: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut buf = Vec::new();
    let mut skip = 0u32;
    loop {
        match next(xml, &mut buf)? {
            Event::Start(e) if e.local_name().as_ref() == "rPh" => skip += 1,
            Event::End(e) if e.local_name().as_ref() == "rPh" => skip = skip.saturating_sub(1),
            Event::End(e) if e.local_name().as_ref() == end => break,
            Event::Text(t) if skip == 0 => out.push_str(&t.xml10_content()),
            Event::CData(t) if skip == 0 => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if skip == 0 => out.push(entity(&r)?),
            Event::Eof => return Err(format!("ends inside a <{end}>")),
            _ => {}
        }
        if out.len() > MAX_TEXT {
            return Err("holds a text longer than Excel's 32,767 characters".into());
        }
    }
    Ok(decode_escapes(&out))
}

/// The character an entity reference stands for.
fn entity(r: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Ok(c);
    }
    Ok(match r.as_ref() {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        other => return Err(format!("uses an unknown XML entity &{other};")),
    })
}

/// Decodes OOXML's `_xHHHH_` escapes (how a workbook stores control characters such as a
/// carriage return); one that is not a character stays as written.
fn decode_escapes(s: &str) -> String {
    if !s.contains("_x") {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("_x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let code = tail
            .get(2..6)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()) && tail.get(6..7) == Some("_"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &tail[7..];
            }
            None => {
                out.push_str("_x");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One sheet as the workbook lists it.
#[derive(Debug, Clone)]
pub struct SheetEntry {
    pub name: String,
    pub hidden: bool,
    /// Its part in the zip, e.g. `xl/worksheets/sheet1.xml`.
    pub part: String,
}

/// What the workbook part says, with its parts resolved.
#[derive(Debug, Default)]
pub struct Book {
    pub sheets: Vec<SheetEntry>,
    pub date1904: bool,
    pub shared_strings: Option<String>,
    pub styles: Option<String>,
}

/// Reads the workbook: where it is (`_rels/.rels`), its sheets, and its parts.
pub fn book(zip: &mut Zip) -> Result<Book, String> {
    let main = relationships(zip, "_rels/.rels")?
        .into_values()
        .find(|(kind, _)| kind.ends_with("/officeDocument"))
        .map(|(_, target)| target.trim_start_matches('/').to_owned())
        .unwrap_or_else(|| "xl/workbook.xml".into());
    let dir = main.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let rels_path = format!("{dir}/_rels/{}.rels", main.rsplit('/').next().unwrap_or(""));
    let rels = relationships(zip, &rels_path)?;
    let resolve = |target: &str| -> String {
        match target.strip_prefix('/') {
            Some(abs) => abs.to_owned(),
            None if dir.is_empty() => target.to_owned(),
            None => format!("{dir}/{target}"),
        }
    };
    let mut book = Book::default();
    for (kind, target) in rels.values() {
        if kind.ends_with("/sharedStrings") {
            book.shared_strings = Some(resolve(target));
        } else if kind.ends_with("/styles") {
            book.styles = Some(resolve(target));
        }
    }
    let mut xml = open(zip, &main)?.ok_or("it has no workbook part")?;
    let mut buf = Vec::new();
    loop {
        match next(&mut xml, &mut buf).map_err(|e| format!("its workbook part {e}"))? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "workbookPr" => {
                    book.date1904 = attr(&e, "date1904").is_some_and(|v| v == "1" || v == "true")
                }
                "sheet" => {
                    let name = attr(&e, "name").unwrap_or_default();
                    let id = attr(&e, "id").unwrap_or_default();
                    let Some((_, target)) = rels.get(&id) else {
                        return Err(format!("its sheet {name:?} has no part"));
                    };
                    book.sheets.push(SheetEntry {
                        hidden: attr(&e, "state").is_some_and(|s| s != "visible"),
                        part: resolve(target),
                        name,
                    });
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(book)
}

/// A relationships part: id → (type, target).
fn relationships(zip: &mut Zip, path: &str) -> Result<HashMap<String, (String, String)>, String> {
    let mut out = HashMap::new();
    let Some(mut xml) = open(zip, path)? else {
        return Ok(out);
    };
    let mut buf = Vec::new();
    loop {
        match next(&mut xml, &mut buf).map_err(|e| format!("its part {path} {e}"))? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "Relationship" => {
                let id = attr(&e, "Id").unwrap_or_default();
                let kind = attr(&e, "Type").unwrap_or_default();
                let target = attr(&e, "Target").unwrap_or_default();
                out.insert(id, (kind, target));
            }
            Event::Eof => break,
            _ => {}
        }
        if out.len() > super::MAX_ENTRIES {
            return Err(format!("its part {path} lists too many parts"));
        }
    }
    Ok(out)
}

/// A cell style's number format: compiled, or its code and why it cannot be shown.
pub type CellFormat = Result<Format, (String, String)>;

/// Each cell style's (`cellXfs`) number format, by style index.
pub fn styles(zip: &mut Zip, part: Option<&str>) -> Result<Vec<CellFormat>, String> {
    let general = || vec![Ok(Format::General)];
    let Some(part) = part else {
        return Ok(general());
    };
    let Some(mut xml) = open(zip, part)? else {
        return Ok(general());
    };
    let mut codes: HashMap<u32, String> = HashMap::new();
    let mut ids: Vec<u32> = Vec::new();
    let mut in_xfs = false;
    let mut buf = Vec::new();
    loop {
        match next(&mut xml, &mut buf).map_err(|e| format!("its styles {e}"))? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "numFmt" => {
                    let id = attr(&e, "numFmtId").and_then(|v| v.parse().ok());
                    if let (Some(id), Some(code)) = (id, attr(&e, "formatCode")) {
                        codes.insert(id, code);
                    }
                }
                "cellXfs" => in_xfs = true,
                "xf" if in_xfs => ids.push(
                    attr(&e, "numFmtId")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                ),
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "cellXfs" => in_xfs = false,
            Event::Eof => break,
            _ => {}
        }
        if ids.len() > MAX_STYLES || codes.len() > MAX_STYLES {
            return Err("its styles hold more cell formats than Excel allows".into());
        }
    }
    let mut compiled: HashMap<u32, CellFormat> = HashMap::new();
    Ok(ids
        .iter()
        .map(|id| {
            compiled
                .entry(*id)
                .or_insert_with(|| {
                    let code = codes
                        .get(id)
                        .map(String::as_str)
                        .or_else(|| numfmt::builtin(*id));
                    match code {
                        Some(code) => Format::compile(code).map_err(|why| (code.to_owned(), why)),
                        None => Err((
                            format!("built-in format {id}"),
                            "depends on the computer's language settings".into(),
                        )),
                    }
                })
                .clone()
        })
        .collect())
}

/// Counts the shared strings, keeping none: the table a sheet's indices point into.
pub fn count_shared(zip: &mut Zip, part: &str) -> Result<u32, String> {
    let Some(mut xml) = open(zip, part)? else {
        return Ok(0);
    };
    let mut n = 0u32;
    let mut buf = Vec::new();
    loop {
        match next(&mut xml, &mut buf).map_err(|e| format!("its shared strings {e}"))? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "si" => {
                n = n.checked_add(1).ok_or("its shared strings are too many")?;
            }
            Event::Eof => return Ok(n),
            _ => {}
        }
    }
}

/// The shared strings whose index is marked in `wanted`, by index; the others are read past and
/// never kept, so a table of millions of strings the sheet never uses costs nothing.
pub fn read_shared(
    zip: &mut Zip,
    part: &str,
    wanted: &[u64],
) -> Result<HashMap<u32, String>, String> {
    let mut out = HashMap::new();
    let Some(mut xml) = open(zip, part)? else {
        return Ok(out);
    };
    let is_wanted = |i: u32| {
        wanted
            .get(i as usize / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    };
    let mut i = 0u32;
    let mut buf = Vec::new();
    loop {
        match next(&mut xml, &mut buf).map_err(|e| format!("its shared strings {e}"))? {
            Event::Start(e) if e.local_name().as_ref() == "si" => {
                if is_wanted(i) {
                    let text =
                        text_of(&mut xml, "si").map_err(|e| format!("its shared strings {e}"))?;
                    out.insert(i, text);
                }
                i = i.saturating_add(1);
            }
            Event::Empty(e) if e.local_name().as_ref() == "si" => {
                if is_wanted(i) {
                    out.insert(i, String::new());
                }
                i = i.saturating_add(1);
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_to_their_characters() {
        assert_eq!(decode_escapes("a_x000D_b"), "a\rb");
        assert_eq!(decode_escapes("_x005F_x000D_"), "_x000D_");
        assert_eq!(decode_escapes("tax_xyz_"), "tax_xyz_");
        assert_eq!(decode_escapes("_x12"), "_x12");
    }
}
