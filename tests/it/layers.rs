//! The layer order of pcbulk's top-level modules (CONTRIBUTING.md, Layout), kept: every file under
//! `src/` is read, the top-level modules it names (`crate::x`, `use crate::{x, ...}`, a `super::`
//! that leaves its module) are collected, and the test fails on an import into a higher layer, on
//! a cycle, or on the simulator naming the client. Imports inside `#[cfg(test)]` modules count too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may import modules of its own layer or of a lower one, never
/// of a higher one; within a layer the imports must not form a cycle.
const LAYERS: &[&[&str]] = &[
    // Plain values and safe files: text helpers, terminal output, crash points, files opened
    // safely and where pcbulk keeps them, the CSV codec (which writes through `fsafe`).
    &["text", "term", "failpoint", "fsafe", "csvfile"],
    // Reading input, the error type (which wraps the reader's), service addresses, Ctrl-C; the
    // simulator.
    &["input", "error", "target", "interrupt", "sandbox"],
    // Results lines, the undo file's format, duplicates, events; the HTTP client.
    &["results", "undo_file", "duplicates", "events", "api"],
    // Operations (requests and their checks) and the planner (verdicts).
    &["ops", "planner"],
    // The journal of calls sent.
    &["journal"],
    // The dispatcher: rate, concurrency, retries.
    &["dispatch"],
    // A run's configuration, its report, the list of runs and their records.
    &["config", "report", "runs"],
    // The pipeline: source, check, engine; and export's walk (listing, reading, writing rows).
    &["pipeline", "export"],
    // The command line: flags converted into `config`, and the help text.
    &["cli", "help"],
    // The commands, one module each, each with its own body.
    &["commands"],
    // The library's entry point and the binary.
    &["lib", "main"],
];

/// The simulator shares nothing with the client: it may name only the bottom layer.
const SANDBOX_MAY_USE: &[&str] = LAYERS[0];

/// One import: the file and line that names `to`.
struct Use {
    to: String,
    file: PathBuf,
    line: usize,
}

#[test]
fn no_module_imports_a_higher_layer() {
    let graph = graph();
    let layer = layer_of();
    for module in graph.keys() {
        assert!(
            layer.contains_key(module.as_str()),
            "src/{module} is in no layer: add it to LAYERS in tests/layers.rs"
        );
    }
    let mut wrong = Vec::new();
    for (from, uses) in &graph {
        for u in uses {
            let (Some(&lf), Some(&lt)) = (layer.get(from.as_str()), layer.get(u.to.as_str()))
            else {
                continue;
            };
            if lt > lf {
                wrong.push(format!(
                    "{}:{}: {from} (layer {lf}) imports {} (layer {lt})",
                    u.file.display(),
                    u.line,
                    u.to
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports into a higher layer:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_modules_import_one_another_without_a_cycle() {
    let graph = graph();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in graph.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = find_cycle(&graph, start, &mut state, &mut path) {
            panic!("a module cycle:\n{}", cycle.join("\n"));
        }
    }
}

#[test]
fn the_sandbox_names_no_client_module() {
    let graph = graph();
    let wrong: Vec<String> = graph
        .get("sandbox")
        .into_iter()
        .flatten()
        .filter(|u| !SANDBOX_MAY_USE.contains(&u.to.as_str()))
        .map(|u| format!("{}:{}: sandbox imports {}", u.file.display(), u.line, u.to))
        .collect();
    assert!(
        wrong.is_empty(),
        "the simulator uses the client:\n{}",
        wrong.join("\n")
    );
}

/// The parser itself: what it must see, and what it must not take for an import.
#[test]
fn the_import_reader_sees_braces_super_and_skips_comments_and_strings() {
    let src = "use crate::{a::B, b::{c, d}};\n\
               // crate::hidden\n\
               /* crate::hidden2 */\n\
               let s = \"crate::hidden3\"; let c = '\"';\n\
               fn f<'a>() { crate::e::f(); }\n\
               mod tests { use super::super::g; }\n\
               use super::super::h;\n";
    let mut found: Vec<(String, usize)> = imports(src, Path::new("src/x/y.rs"))
        .into_iter()
        .map(|u| (u.to, u.line))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("e".to_owned(), 5),
            ("h".to_owned(), 7),
            ("x".to_owned(), 6),
        ]
    );
}

/// Depth-first search; `state`: 1 on the path, 2 done.
fn find_cycle<'g>(
    graph: &'g BTreeMap<String, Vec<Use>>,
    at: &'g str,
    state: &mut BTreeMap<&'g str, u8>,
    path: &mut Vec<(&'g str, String)>,
) -> Option<Vec<String>> {
    match state.get(at) {
        Some(2) => return None,
        Some(1) => {
            let start = path.iter().position(|(m, _)| *m == at).unwrap_or(0);
            return Some(path[start..].iter().map(|(_, how)| how.clone()).collect());
        }
        _ => {}
    }
    state.insert(at, 1);
    for u in graph.get(at).into_iter().flatten() {
        let how = format!("{}:{}: {at} imports {}", u.file.display(), u.line, u.to);
        path.push((at, how));
        if let Some((to, _)) = graph.get_key_value(u.to.as_str()) {
            if let Some(c) = find_cycle(graph, to, state, path) {
                return Some(c);
            }
        }
        path.pop();
    }
    state.insert(at, 2);
    None
}

fn layer_of() -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for (i, layer) in LAYERS.iter().enumerate() {
        for module in *layer {
            assert!(m.insert(*module, i).is_none(), "{module} is in two layers");
        }
    }
    m
}

/// Each top-level module (`src/x.rs` or `src/x/`) and the other top-level modules it imports.
fn graph() -> BTreeMap<String, Vec<Use>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph: BTreeMap<String, Vec<Use>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_path_buf();
        let text = std::fs::read_to_string(&file).unwrap();
        let from = top(&rel);
        let uses = imports(&text, &Path::new("src").join(&rel));
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(uses.into_iter().filter(|u| u.to != from));
    }
    graph
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module of a path relative to `src/`: `x.rs` and `x/...` are `x`.
fn top(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The module path of a file under `src/`: `src/x/y.rs` is `[x, y]`, `src/x/mod.rs` is `[x]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix("src").unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The top-level modules a file's code names, each with its line.
fn imports(text: &str, file: &Path) -> Vec<Use> {
    let code = blank_comments_and_strings(text);
    let base = module_path(file);
    let bytes = code.as_bytes();
    let line_at = |i: usize| code[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    // Inline `mod x {` blocks open at these brace depths.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let at_word = i == 0 || !is_ident(bytes[i - 1]);
        if bytes[i] == b'{' {
            depth += 1;
        } else if bytes[i] == b'}' {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
        } else if at_word && rest.starts_with("mod ") {
            let name = ident(&rest[4..]);
            let after = rest[4 + name.len()..].trim_start();
            if after.starts_with('{') {
                inline.push((name.to_owned(), depth));
            }
        } else if at_word && rest.starts_with("crate::") {
            let j = i + "crate::".len();
            for (name, at) in heads(&code, j) {
                out.push(Use {
                    to: name,
                    file: file.to_path_buf(),
                    line: line_at(at),
                });
            }
            i = j;
            continue;
        } else if at_word && rest.starts_with("super::") {
            let mut j = i;
            let mut ups = 0;
            while code[j..].starts_with("super::") {
                ups += 1;
                j += "super::".len();
            }
            let mut here: Vec<String> = base.clone();
            here.extend(inline.iter().map(|(n, _)| n.clone()));
            let kept = here.len().saturating_sub(ups);
            let to = if kept > 0 {
                vec![(here[0].clone(), i)]
            } else {
                heads(&code, j)
            };
            for (name, at) in to {
                out.push(Use {
                    to: name,
                    file: file.to_path_buf(),
                    line: line_at(at),
                });
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// The first names after `crate::` at `at`: one name, or each item's first name in `{...}`.
fn heads(code: &str, at: usize) -> Vec<(String, usize)> {
    let rest = &code[at..];
    if !rest.starts_with('{') {
        let name = ident(rest);
        return if name.is_empty() || name == "self" {
            Vec::new()
        } else {
            vec![(name.to_owned(), at)]
        };
    }
    let mut out = Vec::new();
    let mut depth = 0;
    let mut expect_item = true;
    for (k, c) in rest.char_indices() {
        match c {
            '{' => {
                depth += 1;
                if depth > 1 {
                    expect_item = false;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect_item = true,
            c if expect_item && depth == 1 && (c.is_ascii_alphabetic() || c == '_') => {
                let name = ident(&rest[k..]);
                if name != "self" {
                    out.push((name.to_owned(), at + k));
                }
                expect_item = false;
            }
            _ => {}
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn ident(s: &str) -> &str {
    let end = s.bytes().position(|b| !is_ident(b)).unwrap_or(s.len());
    &s[..end]
}

/// The text with comments, string and character literals replaced by spaces (line ends kept), so
/// a `crate::` in a doc comment or a message is not taken for an import.
fn blank_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            blank(&mut out, start, i);
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            blank(&mut out, start, i);
        } else if b[i] == b'r'
            && (i == 0 || !is_ident(b[i - 1]))
            && raw_string_hashes(&b[i..]).is_some()
        {
            let hashes = raw_string_hashes(&b[i..]).unwrap();
            i += 2 + hashes;
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            blank(&mut out, start, i);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            blank(&mut out, start, i);
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), or else a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
                blank(&mut out, start, i);
            } else if let Some(len) = text[i + 1..].chars().next().map(char::len_utf8) {
                if b.get(i + 1 + len) == Some(&b'\'') {
                    i += len + 2;
                    blank(&mut out, start, i);
                } else {
                    i += 1;
                }
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// `r"`, `r#"`, `r##"`...: the number of `#`.
fn raw_string_hashes(b: &[u8]) -> Option<usize> {
    let hashes = b[1..].iter().take_while(|&&c| c == b'#').count();
    (b.get(1 + hashes) == Some(&b'"')).then_some(hashes)
}
