//! Files are what they seem: the results, the journal, the undo file and the token cache are never
//! written through a symbolic link, into another name of the input or of another file, or into a
//! device; a refusal comes before anything is sent, and every error names the OS error once.
#![cfg(unix)]

use crate::common::*;
use std::collections::BTreeSet;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

const PRECIOUS: &str = "someone else's file: not to be touched\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The names in a folder.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Asserts a refusal: exit 2, one error line that names `path` and says `why`, and nothing sent.
fn assert_refused(out: &Output, sb: &Sandbox, path: &Path, why: &str) {
    assert_eq!(code(out), 2, "{}", text(out));
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with("pcbulk: cannot write"))
        .unwrap_or_else(|| panic!("no error line: {}", text(out)));
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains(why), "{line}");
    assert!(line.contains("give --out another path"), "{line}");
    assert_eq!(sb.stats()["total"], 0, "nothing was sent: {}", text(out));
}

/// The rows of a CSV file pcbulk wrote, read with the csv crate (the file starts with a BOM).
fn csv_rows(path: &Path) -> Vec<csv::StringRecord> {
    let bytes = std::fs::read(path).unwrap();
    let body = bytes
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(&bytes);
    csv::Reader::from_reader(body)
        .records()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn validate(input: &Path, out: &Path) -> Output {
    pcbulk()
        .arg("validate")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn results_through_a_symlink_are_refused_and_the_target_is_untouched() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    let victim = w.write("victim.csv", PRECIOUS);
    let link = w.path("out.csv");
    symlink(&victim, &link).unwrap();
    let before = names(&w.path(""));

    let out = sb.apply(&input, &["--out", link.to_str().unwrap()]);
    assert_refused(&out, &sb, &link, "symbolic link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
    assert!(is_link(&link), "the link itself is left as it was");
    assert_eq!(
        names(&w.path("")),
        before,
        "no journal, no scratch file left behind"
    );

    // validate writes its results to a new file and renames it into place: it refuses the link
    // too, rather than replacing it.
    let out = validate(&input, &link);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", text(&out));
    assert!(is_link(&link));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
    assert_eq!(names(&w.path("")), before);
}

#[test]
fn a_results_path_hard_linked_to_the_input_is_refused() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let csv = contacts_csv(2);
    let input = w.write("in.csv", &csv);
    let alias = w.path("out.csv");
    std::fs::hard_link(&input, &alias).unwrap();

    for out in [
        sb.apply(&input, &["--out", alias.to_str().unwrap()]),
        validate(&input, &alias),
    ] {
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(stderr(&out).contains("is the input file"), "{}", text(&out));
        assert_eq!(std::fs::read_to_string(&input).unwrap(), csv);
    }
    assert_eq!(sb.stats()["total"], 0);

    // Another name of a file that is not the input: refused too, since pcbulk cannot know whose
    // it is.
    let other = w.write("other.csv", PRECIOUS);
    let second = w.path("second.csv");
    std::fs::hard_link(&other, &second).unwrap();
    let out = sb.apply(&input, &["--out", second.to_str().unwrap()]);
    assert_refused(&out, &sb, &second, "2 hard links");
    let out = validate(&input, &second);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("2 hard links"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), PRECIOUS);
    assert_eq!(std::fs::metadata(&other).unwrap().nlink(), 2);
    assert!(!w.path("second.csv.journal").exists());
}

#[test]
fn a_journal_path_that_is_a_symlink_is_refused() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    let results = w.path("out.csv");
    let journal = w.path("out.csv.journal");
    let victim = w.write("victim.txt", PRECIOUS);
    symlink(&victim, &journal).unwrap();

    let out = sb.apply(&input, &["--out", results.to_str().unwrap()]);
    assert_refused(&out, &sb, &journal, "symbolic link");
    assert!(
        stderr(&out).contains("cannot write the journal"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
    assert!(is_link(&journal));
    assert!(!results.exists(), "refused before the results were started");

    // A resume through a link to a real journal is refused as well, and that journal is kept.
    std::fs::remove_file(&journal).unwrap();
    let done = sb.apply(&input, &["--out", results.to_str().unwrap()]);
    assert_eq!(code(&done), 0, "{}", text(&done));
    let kept = w.path("kept.journal");
    std::fs::rename(&journal, &kept).unwrap();
    symlink(&kept, &journal).unwrap();
    let journal_bytes = std::fs::read(&kept).unwrap();
    let calls = sb.stats()["total"].clone();
    let out = sb.apply(&input, &["--out", results.to_str().unwrap(), "--resume"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(std::fs::read(&kept).unwrap(), journal_bytes);
    assert_eq!(sb.stats()["total"], calls, "nothing was sent");
}

#[test]
fn an_undo_file_through_a_symlink_is_refused() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    let results = w.path("in.results.csv");
    let done = sb.apply(&input, &[]);
    assert_eq!(code(&done), 0, "{}", text(&done));

    let victim = w.write("victim.csv", PRECIOUS);
    let link = w.path("undo.csv");
    symlink(&victim, &link).unwrap();
    let undo = |out: &Path| {
        pcbulk()
            .arg("undo")
            .arg(&results)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = undo(&link);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot write the undo file {}", link.display())),
        "{err}"
    );
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
    assert!(is_link(&link));

    // Nor over the run's own records.
    let results_bytes = std::fs::read(&results).unwrap();
    let out = undo(&results);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stderr(&out).contains("the run's results file"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&results).unwrap(), results_bytes);

    // A plain path works: one row per change, each putting back the contact it had.
    let plain = w.path("plain-undo.csv");
    let out = undo(&plain);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(csv_rows(&plain).len(), 2);
}

/// `pcbulk apply` of one note with App+User credentials against the sandbox, keeping the newest
/// refresh token in `cache`.
fn apply_with_cache(sb: &Sandbox, w: &Workdir, cache: &Path, note: &str) -> Output {
    let input = w.write(
        "sr.csv",
        format!("service_request_id,note\n616122292874576,{note}\n"),
    );
    pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--base-url", &sb.url])
        .env("PCBULK_REFRESH_TOKEN", "sandbox-refresh-token")
        .env("PCBULK_TENANT_ID", "contoso.onmicrosoft.com")
        .env("PCBULK_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e")
        .env("PCBULK_AUTHORITY", &sb.url)
        .env("PCBULK_TOKEN_CACHE", cache)
        .output()
        .unwrap()
}

fn notes(sb: &Sandbox) -> usize {
    sb.service_request("616122292874576")["notes"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn the_token_cache_is_never_written_through_a_symlink() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let victim = w.write("victim.txt", PRECIOUS);
    let cache = w.path("pcbulk-token");
    symlink(&victim, &cache).unwrap();
    let before = names(&w.path(""));

    // The run itself goes on: only the cache is refused, with a warning that names it.
    let out = apply_with_cache(&sb, &w, &cache, "through a link");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(notes(&sb), 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("token cache {}", cache.display())),
        "{err}"
    );
    assert!(err.contains("symbolic link"), "{err}");
    assert!(err.contains("PCBULK_TOKEN_CACHE"), "{err}");
    assert!(
        !err.contains("sbx-rt-") && !err.contains("sandbox-refresh-token"),
        "no token in a warning: {err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
    assert!(is_link(&cache));
    let after: BTreeSet<String> = names(&w.path(""))
        .into_iter()
        .filter(|n| !n.starts_with("sr."))
        .collect();
    assert_eq!(after, before, "no temporary file left behind");

    // Another name of someone's file is refused the same way.
    let other = w.write("other.txt", PRECIOUS);
    let second = w.path("second-token");
    std::fs::hard_link(&other, &second).unwrap();
    let out = apply_with_cache(&sb, &w, &second, "through a hard link");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(stderr(&out).contains("2 hard links"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), PRECIOUS);
    assert_eq!(notes(&sb), 2);
}

#[test]
fn the_token_cache_temp_file_is_fresh_and_0600() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    // What an earlier pcbulk used as its temporary file, `<cache>.tmp`: a link planted there, and
    // a file anyone can read. Neither is reused.
    let victim = w.write("victim.txt", PRECIOUS);
    let linked = w.path("linked-token");
    symlink(&victim, w.path("linked-token.tmp")).unwrap();
    let open = w.path("open-token");
    let planted = w.write("open-token.tmp", "planted");
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = names(&w.path(""));

    for (i, cache) in [&linked, &open].into_iter().enumerate() {
        let out = apply_with_cache(&sb, &w, cache, &format!("run {i}"));
        assert_eq!(code(&out), 0, "{}", text(&out));
        let meta = std::fs::symlink_metadata(cache).unwrap();
        assert!(meta.file_type().is_file(), "{}", cache.display());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 1);
        let token = std::fs::read_to_string(cache).unwrap();
        assert!(token.starts_with("sbx-rt-"), "the newest refresh token");
        assert!(!text(&out).contains(&token), "and never printed");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
    assert!(is_link(&w.path("linked-token.tmp")));
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "planted");
    assert_eq!(
        std::fs::metadata(&planted).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let mut expected = before;
    expected.extend(["linked-token".to_owned(), "open-token".to_owned()]);
    let after: BTreeSet<String> = names(&w.path(""))
        .into_iter()
        .filter(|n| !n.starts_with("sr."))
        .collect();
    assert_eq!(after, expected, "no temporary file left behind");
}

#[test]
fn a_device_node_as_results_is_refused() {
    let sb = Sandbox::start(&["--subscriptions", "2"]);
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(2));
    let null = Path::new("/dev/null");
    let out = sb.apply(&input, &["--out", "/dev/null"]);
    assert_refused(&out, &sb, null, "a character device");
    assert!(!Path::new("/dev/null.journal").exists());
    assert!(std::fs::symlink_metadata(null)
        .unwrap()
        .file_type()
        .is_char_device());

    // validate renames its results into place, which would replace a device node: a pipe stands
    // in for one here (renaming over /dev/null as root would break the machine, not the test).
    let fifo = w.path("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = validate(&input, &fifo);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("a named pipe"), "{}", text(&out));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn an_error_line_names_the_os_error_once() {
    let w = Workdir::new();
    let input = w.write("in.csv", contacts_csv(1));
    let once = |out: &Output| {
        assert_eq!(code(out), 2, "{}", text(out));
        let err = stderr(out);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("pcbulk:")).collect();
        assert_eq!(lines.len(), 1, "one message: {err}");
        assert_eq!(lines[0].matches("(os error").count(), 1, "{err}");
    };
    // The results in a folder that does not exist.
    let missing = w.path("no-such-folder/out.csv");
    once(&validate(&input, &missing));
    once(
        &pcbulk()
            .arg("apply")
            .arg(&input)
            .args(["--base-url", "http://127.0.0.1:9", "--out"])
            .arg(&missing)
            .env("PCBULK_ACCESS_TOKEN", "x")
            .output()
            .unwrap(),
    );
    // undo with a journal but no results file beside it.
    w.write("gone.csv.journal", "");
    once(
        &pcbulk()
            .arg("undo")
            .arg(w.path("gone.csv"))
            .output()
            .unwrap(),
    );
}
