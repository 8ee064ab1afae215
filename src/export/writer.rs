//! Where exported rows go: a CSV (a file or stdout) or an Excel workbook, written row by row as
//! they come (memory stays flat however many there are).
//!
//! Every cell is escaped as an undo file's are ([`crate::undo_file::escape`]: a formula-looking
//! value, one starting with `'`, and the text `#N/A` get a leading `'`), and the last column is the
//! [`EXPORT_MARKER`], which tells pcbulk's reader to take that `'` off again: applied unchanged,
//! the file holds exactly what was read. A file is written beside its final name and renamed to it
//! only once complete, so an export that stops leaves nothing under that name.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::undo_file::{escape, EXPORT_MARKER};

/// What to do about an output path pcbulk will not write.
const FIX: &str = "give --out another path";

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Csv(PathBuf),
    Xlsx(PathBuf),
}

impl Out {
    /// `-` is stdout; a name ending `.xlsx` (any case) a workbook; anything else a CSV.
    pub fn from_flag(out: Option<&Path>) -> Out {
        match out {
            None => Out::Stdout,
            Some(p) if p.as_os_str() == "-" => Out::Stdout,
            Some(p) => {
                let xlsx = p
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
                if xlsx {
                    Out::Xlsx(p.to_owned())
                } else {
                    Out::Csv(p.to_owned())
                }
            }
        }
    }

    /// The file's path (`None`: stdout).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Out::Stdout => None,
            Out::Csv(p) | Out::Xlsx(p) => Some(p),
        }
    }
}

enum Inner {
    Csv(Box<crate::csvfile::Writer<Box<dyn Write + Send>>>),
    /// The workbook (its one sheet streamed to a scratch file as rows come), and the file it is
    /// saved to at the end.
    Xlsx(Box<rust_xlsxwriter::Workbook>, File),
}

/// How often rows written to stdout are flushed: a reader sees them as they come, and one that has
/// gone (`| head -1`) is noticed within this long, not after the whole export has been read. An
/// export whose `--where` keeps no row writes nothing that could fail: [`stdout_gone`] is asked
/// as often.
pub const STDOUT_FLUSH: std::time::Duration = std::time::Duration::from_millis(200);

/// Why standard output cannot be written when its reader has gone.
pub const READER_GONE: &str = "its reader has gone (the pipe was closed before the export ended)";

/// Whether standard output's reader has gone (a pipe whose reading end is closed, a socket hung
/// up), asked without writing to it: a file, a terminal or `/dev/null` never goes.
pub fn stdout_gone() -> bool {
    #[cfg(unix)]
    {
        let mut fd = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd that outlives the call, which does not wait.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Writes an export row by row.
pub struct Writer {
    inner: Option<Inner>,
    /// The final name and the scratch file written beside it (`None`: stdout).
    names: Option<(PathBuf, PathBuf)>,
    rows: u32,
    /// Stdout only: data rows flushed to it, and when it was last flushed.
    delivered: Option<(u32, std::time::Instant)>,
}

impl Writer {
    /// Opens the output and writes the header (`columns`, then the marker).
    pub fn open(out: &Out, columns: &[&str], sheet: &str) -> io::Result<Writer> {
        let (inner, names) = match out {
            Out::Stdout => {
                let w: Box<dyn Write + Send> = Box::new(io::stdout());
                (
                    Inner::Csv(Box::new(crate::csvfile::Writer::plain(w, b','))),
                    None,
                )
            }
            Out::Csv(path) | Out::Xlsx(path) => {
                crate::fsafe::look(path, FIX)?;
                let (tmp, file) = crate::fsafe::fresh(path, "tmp", crate::fsafe::Access::Default)?;
                crate::interrupt::keep_track(&tmp);
                let inner = match out {
                    Out::Xlsx(_) => Inner::Xlsx(workbook(sheet).map_err(xlsx_error)?, file),
                    _ => {
                        let w: Box<dyn Write + Send> = Box::new(file);
                        Inner::Csv(Box::new(crate::csvfile::Writer::with_bom(w, b',')?))
                    }
                };
                (inner, Some((path.clone(), tmp)))
            }
        };
        let delivered = names.is_none().then(|| (0, std::time::Instant::now()));
        let mut w = Writer {
            inner: Some(inner),
            names,
            rows: 0,
            delivered,
        };
        let header: Vec<&str> = columns.iter().copied().chain([EXPORT_MARKER]).collect();
        w.cells(&header)?;
        // Stdout's reader sees the header at once (`| head -1` has what it asked for and goes).
        if let (Some(_), Some(Inner::Csv(c))) = (w.delivered, w.inner.as_mut()) {
            c.flush()?;
        }
        Ok(w)
    }

    /// The scratch file the output is written to before it is renamed (`None`: stdout).
    pub fn scratch(&self) -> Option<PathBuf> {
        self.names.as_ref().map(|(_, tmp)| tmp.clone())
    }

    /// Writes one row: its cells in the header's order, then its number in the marker column.
    pub fn row(&mut self, cells: &[String]) -> io::Result<()> {
        // The header is the output's row 0: a data row's number is its index.
        let n = self.rows.to_string();
        let all: Vec<&str> = cells
            .iter()
            .map(String::as_str)
            .chain([n.as_str()])
            .collect();
        self.cells(&all)?;
        if self
            .delivered
            .is_some_and(|(_, at)| at.elapsed() >= STDOUT_FLUSH)
        {
            self.deliver()?;
        }
        Ok(())
    }

    /// Stdout only: hands the rows written so far to its reader now (an export that stops gives
    /// its reader what it read, and [`Writer::delivered`] counts them).
    pub fn deliver(&mut self) -> io::Result<()> {
        if let (Some((rows, at)), Some(Inner::Csv(w))) = (&mut self.delivered, self.inner.as_mut())
        {
            w.flush()?;
            *rows = self.rows - 1;
            *at = std::time::Instant::now();
        }
        Ok(())
    }

    /// Stdout only: how many data rows are known to have reached it (flushed before a write to it
    /// failed); the rows of a buffer that could not be flushed are not among them.
    pub fn delivered(&self) -> Option<usize> {
        self.delivered.map(|(rows, _)| rows as usize)
    }

    fn cells(&mut self, cells: &[&str]) -> io::Result<()> {
        let row = self.rows;
        match self.inner.as_mut().expect("open until finished") {
            Inner::Csv(w) => csv_record(w, cells)?,
            Inner::Xlsx(book, _) => xlsx_row(book, row, cells).map_err(xlsx_error)?,
        }
        self.rows += 1;
        Ok(())
    }

    /// Completes the output: flushed (a file synced and renamed to its final name). Stdout whose
    /// reader left before the end fails as a write to it would, though nothing was left to write.
    pub fn finish(mut self) -> io::Result<()> {
        match self.inner.take().expect("open until finished") {
            Inner::Csv(w) => {
                w.finish()?;
                if self.delivered.is_some() && stdout_gone() {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, READER_GONE));
                }
            }
            Inner::Xlsx(mut book, file) => {
                let mut file = io::BufWriter::new(file);
                book.save_to_writer(&mut file).map_err(xlsx_error)?;
                file.flush()?;
            }
        }
        if let Some((path, tmp)) = self.names.take() {
            let placed = File::open(&tmp)
                .and_then(|f| f.sync_all())
                .and_then(|()| crate::fsafe::look(path.as_path(), FIX).map(drop))
                .and_then(|()| std::fs::rename(&tmp, &path));
            crate::interrupt::forget(&tmp);
            if placed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            placed?;
        }
        Ok(())
    }
}

impl Drop for Writer {
    /// An export that did not finish leaves no file: its scratch file goes.
    fn drop(&mut self) {
        if let Some((_, tmp)) = self.names.take() {
            self.inner = None;
            let _ = std::fs::remove_file(&tmp);
            crate::interrupt::forget(&tmp);
        }
    }
}

/// One CSV record of an export, each cell escaped (see the module's doc), through pcbulk's one
/// CSV writer.
fn csv_record<W: Write>(w: &mut crate::csvfile::Writer<W>, cells: &[&str]) -> io::Result<()> {
    w.record(cells.iter().map(|c| escape(c).into_owned()))
}

/// A workbook of one sheet, streamed (constant memory: each row goes to a scratch file once the
/// next one starts).
fn workbook(sheet: &str) -> Result<Box<rust_xlsxwriter::Workbook>, rust_xlsxwriter::XlsxError> {
    let mut book = Box::new(rust_xlsxwriter::Workbook::new());
    let ws = book.add_worksheet_with_constant_memory()?;
    ws.set_name(sheet)?;
    Ok(book)
}

/// One row of the sheet, every cell a text cell (no number or date is made of a value: `007`,
/// `+1 425`, `#N/A` and long digit strings stay as they are).
fn xlsx_row(
    book: &mut rust_xlsxwriter::Workbook,
    row: u32,
    cells: &[&str],
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let ws = book.worksheet_from_index(0)?;
    for (col, cell) in cells.iter().enumerate() {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        let value = escape(cell);
        if !value.is_empty() {
            ws.write_string(row, col, value.as_ref())?;
        }
    }
    Ok(())
}

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> io::Error {
    match e {
        rust_xlsxwriter::XlsxError::IoError(e) => e,
        other => io::Error::other(format!("the workbook could not be written: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_kind_comes_from_the_name() {
        assert_eq!(Out::from_flag(None), Out::Stdout);
        assert_eq!(Out::from_flag(Some(Path::new("-"))), Out::Stdout);
        assert!(matches!(
            Out::from_flag(Some(Path::new("a.XLSX"))),
            Out::Xlsx(_)
        ));
        assert!(matches!(
            Out::from_flag(Some(Path::new("a.csv"))),
            Out::Csv(_)
        ));
    }

    #[test]
    fn an_export_that_is_not_finished_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["e.csv", "e.xlsx"] {
            let path = dir.path().join(name);
            let out = Out::from_flag(Some(&path));
            let mut w = Writer::open(&out, &["customer_id"], "billing-profile").unwrap();
            w.row(&["c1".into()]).unwrap();
            drop(w);
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "{name}: {left:?}");
        }
    }
}
