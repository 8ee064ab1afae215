//! The list of runs (`registry`) and the records beside a results file (`records`): what pcbulk
//! keeps between runs to refuse a repeat and to resume. They return what they found; the commands
//! say it.

pub mod records;
pub mod registry;

/// The command line that was run, with `--resume` in place of any `--resume`/`--retry-failed` it had
/// (keeping `--retry-failed`, which implies it), quoted for a POSIX shell.
pub fn resume_command(args: Vec<std::ffi::OsString>) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 1);
    let mut retry_failed = false;
    for (i, a) in args.into_iter().enumerate() {
        match a.to_str() {
            Some("--resume") => continue,
            Some("--retry-failed") => retry_failed = true,
            _ => {}
        }
        out.push(if i == 0 {
            "pcbulk".to_owned()
        } else {
            shell_quote_os(&a)
        });
    }
    if !retry_failed {
        out.push("--resume".into());
    }
    out.join(" ")
}

/// An argument quoted for a POSIX shell; one that is not UTF-8 (a file name's bytes) as bash's
/// `$'...'` with each byte that is not plain ASCII escaped, so the command names the very file.
pub fn shell_quote_os(s: &std::ffi::OsStr) -> String {
    if let Some(s) = s.to_str() {
        return shell_quote(s);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut q = String::from("$'");
        for &b in s.as_bytes() {
            match b {
                b'\\' | b'\'' => q.push_str(&format!("\\{}", b as char)),
                0x20..=0x7e => q.push(b as char),
                _ => q.push_str(&format!("\\x{b:02x}")),
            }
        }
        q.push('\'');
        q
    }
    #[cfg(not(unix))]
    shell_quote(&s.to_string_lossy())
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    /// Found by an outside tester: a file name that is not UTF-8 was kept with U+FFFD in the
    /// resume command, which then named a file that does not exist.
    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_utf8_is_quoted_byte_for_byte() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let name = std::ffi::OsString::from_vec(b"e\x1b[31mred'\x9b.csv".to_vec());
        let quoted = super::shell_quote_os(&name);
        assert_eq!(quoted, r"$'e\x1b[31mred\'\x9b.csv'");
        let said = std::process::Command::new("bash")
            .args(["-c", &format!("printf %s {quoted}")])
            .output()
            .unwrap();
        assert_eq!(
            said.stdout,
            name.as_bytes(),
            "the shell reads back the same bytes"
        );
    }

    #[test]
    fn the_resume_command_is_the_run_s_own_with_resume_quoted_for_a_shell() {
        let args = |s: &[&str]| s.iter().map(std::ffi::OsString::from).collect();
        assert_eq!(
            super::resume_command(args(&["/usr/bin/pcbulk", "apply", "my file.csv", "--yes"])),
            "pcbulk apply 'my file.csv' --yes --resume"
        );
        assert_eq!(
            super::resume_command(args(&[
                "pcbulk", "apply", "a.csv", "--resume", "--out", "it's.csv"
            ])),
            "pcbulk apply a.csv --out 'it'\\''s.csv' --resume"
        );
        assert_eq!(
            super::resume_command(args(&["pcbulk", "apply", "a.csv", "--retry-failed"])),
            "pcbulk apply a.csv --retry-failed"
        );
    }
}
