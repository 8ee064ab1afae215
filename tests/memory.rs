//! Peak memory of a pcbulk process, in a test binary of its own: a child's peak as the kernel
//! reports it (`wait4`) includes the memory of the process that started it, and the integration
//! tests' binary runs many tests side by side, so only a small process can measure it.

#[path = "it/common/mod.rs"]
mod common;

use std::io::{Cursor, Read, Write};

use common::*;
use rust_xlsxwriter::{Workbook, Worksheet};

/// A workbook of one sheet named `name`, filled by `fill`.
fn workbook(name: &str, fill: impl FnOnce(&mut Worksheet)) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(name).unwrap();
    fill(ws);
    wb.save_to_buffer().unwrap()
}

fn header(ws: &mut Worksheet, cells: &[&str]) {
    for (c, h) in cells.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
}

/// Runs `pcbulk validate INPUT` and says its exit code and the most memory it held, in KiB: the
/// child is waited for with `wait4`, which reports that child's own peak.
#[cfg(unix)]
#[allow(clippy::zombie_processes)] // waited for with wait4, which Child cannot do
fn validate_peak_kib(input: &std::path::Path) -> (i32, i64) {
    let child = pcbulk()
        .arg("validate")
        .arg(input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 writes the status and a whole rusage into the pointers it is given; the
    // child is ours and not waited for elsewhere.
    let usage = unsafe {
        assert_eq!(libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()), pid);
        usage.assume_init()
    };
    assert!(libc::WIFEXITED(status), "validate ended by a signal");
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// The workbook with `n` empty shared strings after its own, written into the zip a piece at a
/// time: the test process never holds them, so the child it starts does not inherit their pages
/// in its peak.
fn with_unused_shared_strings(xlsx: &[u8], n: usize) -> Vec<u8> {
    let mut zin = zip::ZipArchive::new(Cursor::new(xlsx)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let chunk = "<si><t/></si>".repeat(4096);
    for i in 0..zin.len() {
        let mut p = zin.by_index(i).unwrap();
        let name = p.name().unwrap().into_owned();
        let mut text = String::new();
        p.read_to_string(&mut text).unwrap();
        out.start_file(name.as_str(), opts).unwrap();
        if name != "xl/sharedStrings.xml" {
            out.write_all(text.as_bytes()).unwrap();
            continue;
        }
        let end = text.rfind("</sst>").unwrap();
        out.write_all(&text.as_bytes()[..end]).unwrap();
        for _ in 0..n / 4096 {
            out.write_all(chunk.as_bytes()).unwrap();
        }
        out.write_all(&text.as_bytes()[end..]).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// Found by an outside test: 29 million empty shared strings, a 1.2 MB workbook, took 0.9 GB,
/// since every shared string was loaded whether the sheet used it or not. Only the strings the
/// sheet's cells point to are kept now: a table of 2 million unused ones costs a bit each.
#[cfg(unix)]
#[test]
fn millions_of_unused_shared_strings_take_no_memory() {
    const UNUSED: usize = 2_000_000;
    let w = Workdir::new();
    let xlsx = workbook("Feuil1", |ws| {
        header(ws, &["service_request_id", "note"]);
        ws.write_string(1, 0, "616122292874576").unwrap();
        ws.write_string(1, 1, "une note").unwrap();
    });
    let padded = with_unused_shared_strings(&xlsx, UNUSED);
    assert!(padded.len() < 1 << 20, "a small file: {}", padded.len());
    let input = w.write("vides.xlsx", &padded);
    let (code, peak_kib) = validate_peak_kib(&input);
    assert_eq!(code, 0);
    let rows = results(&w.path("vides.validation.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["note"], "une note");
    // Each string kept would cost at least a 24-byte String and its index: 2 million of them
    // would be over 48 MiB on top of what any run holds (about 22 MiB).
    let peak_mib = peak_kib / 1024;
    eprintln!("validate peaked at {peak_mib} MiB");
    assert!(peak_mib < 48, "validate peaked at {peak_mib} MiB");
}
