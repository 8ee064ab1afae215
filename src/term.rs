//! What pcbulk writes on its standard output and standard error: never a panic, and never a raw
//! control character from a header, a value, a file name or a service's message.
//!
//! The standard library's `println!` family panics when a write fails, and every write to a closed
//! stream fails (`pcbulk apply ... | head -1`, a dead logger, a `tee` killed by Ctrl-C): the run
//! would stop with exit 101 between two rows, its summary and report unwritten. Here a write that
//! fails ends writing to that stream only, and the run goes on to finish by its exit-code rules.
//! Rust ignores SIGPIPE, so a closed pipe is an error returned by `write`, not a signal that ends
//! the process; that stays so.
//!
//! Text (not the JSON or CSV a command prints for a program to read) passes through
//! [`escape_text`]: a header cell or a file name holding `ESC [ 2 J` shows as `\u{1b}[2J`, and
//! cannot clear, recolour or retitle the user's terminal.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// One of the two streams pcbulk writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Whether a write to stdout, stderr has failed: nothing more is written there.
static GONE: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

impl Stream {
    fn gone_flag(self) -> &'static AtomicBool {
        &GONE[self as usize]
    }

    /// Whether a write to this stream has failed (it is closed, or full): it is written no more.
    pub fn is_gone(self) -> bool {
        self.gone_flag().load(Relaxed)
    }

    /// Writes `bytes` as they are (a JSON document, CSV, a shell script), flushed. An error is
    /// returned for the caller to say, and the stream is not written again.
    pub fn write_raw(self, bytes: &[u8]) -> std::io::Result<()> {
        if self.is_gone() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "an earlier write to it failed",
            ));
        }
        let written = match self {
            Stream::Out => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Stream::Err => std::io::stderr().lock().write_all(bytes),
        };
        if written.is_err() {
            self.gone_flag().store(true, Relaxed);
        }
        written
    }

    /// Writes text made safe for a terminal ([`escape_text`]); a stream that cannot be written is
    /// left alone.
    pub fn write_text(self, args: fmt::Arguments<'_>) {
        if self.is_gone() {
            return;
        }
        let text = match args.as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(args.to_string()),
        };
        let _ = self.write_raw(escape_text(&text).as_bytes());
    }

    /// [`Stream::write_text`], and a line break.
    pub fn write_line(self, args: fmt::Arguments<'_>) {
        if !self.is_gone() {
            self.write_text(format_args!("{args}\n"));
        }
    }
}

/// Whether a character would act on a terminal, or hide or reorder what is around it, instead of
/// showing as itself: C0 and C1 controls and DEL, zero-width and direction marks, bidirectional
/// embeddings, overrides and isolates, line and paragraph separators, the byte-order mark.
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `s` with every [hostile](is_hostile) character, line breaks included, written as `\u{1b}`:
/// for a value shown within a line of text.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_but(s, |_| false)
}

/// [`escape`] for text of several lines: `\n` is kept.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escape_but(s, |c| c == '\n')
}

fn escape_but(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let hostile = |c: char| is_hostile(c) && !keep(c);
    if !s.chars().any(hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hostile(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Where the logs go (stderr): a failed write is dropped, not reported on the stream that just
/// failed. The log formatter escapes ESC and C1 controls in the values it prints; the rest that
/// could act on a terminal is escaped here, with ESC kept when the formatter colours its output
/// (its own colour codes). JSON lines are left as serde wrote them, where every control is `\u00XX`.
#[derive(Debug, Clone, Copy)]
pub struct LogWriter {
    pub colour: bool,
    pub json: bool,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.json {
            let _ = Stream::Err.write_raw(buf);
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(buf);
        let colour = self.colour;
        let safe = escape_but(&text, |c| c == '\n' || (colour && c == '\u{1b}'));
        let _ = Stream::Err.write_raw(safe.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_not_sent() {
        let hostile = "a\u{1b}[2Jb\u{7}\u{9b}31m\u{202e}c\rd\te\u{2066}\nf";
        assert_eq!(
            escape(hostile),
            "a\\u{1b}[2Jb\\u{7}\\u{9b}31m\\u{202e}c\\u{d}d\\u{9}e\\u{2066}\\u{a}f"
        );
        let text = escape_text(hostile);
        assert!(text.ends_with("\\u{2066}\nf"), "{text}");
        assert!(!text.chars().any(|c| c != '\n' && is_hostile(c)), "{text}");
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(escape("Malmö, 中文 ✓"), Cow::Borrowed(_)));
        assert!(matches!(escape_text("two\nlines\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_coloured_log_keeps_its_own_escapes_and_loses_the_rest() {
        let colour = escape_but("\u{1b}[2mwarn\u{1b}[0m a\rb\n", |c| {
            c == '\n' || c == '\u{1b}'
        });
        assert_eq!(colour, "\u{1b}[2mwarn\u{1b}[0m a\\u{d}b\n");
    }
}
