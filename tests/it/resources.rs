//! A limit of this machine met during a run (too many open files) is named as what it is, not
//! taken for a service out of reach. The real binary under a low `ulimit -n`, against a sandbox.

use crate::common::*;

/// Rows that want many connections at once, run under each open-file limit from `low` to
/// `high`: what each run said.
fn said_under_limits(low: u32, high: u32) -> Vec<(u32, String)> {
    let sb = Sandbox::start(&["--subscriptions", "200"]);
    let w = Workdir::new();
    (low..=high)
        .map(|n| {
            let input = w.write(&format!("contacts{n}.csv"), contacts_csv(200));
            let mut sh = std::process::Command::new("sh");
            sh.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("PCBULK_STATE_DIR", w.path(&format!("state{n}")));
            let out = sh
                .args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                .arg(env!("CARGO_BIN_EXE_pcbulk"))
                .args(["apply", input.to_str().unwrap(), "--base-url", &sb.url])
                .args([
                    "--force",
                    "--rate",
                    "1000",
                    "--concurrency",
                    "32",
                    "--max-attempts",
                    "1",
                ])
                .env("PCBULK_ACCESS_TOKEN", "sandbox")
                .output()
                .unwrap();
            (n, text(&out))
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn too_many_open_files_was_reported_as_an_unreachable_network() {
    let said = said_under_limits(10, 24);
    let connects: Vec<&(u32, String)> = said
        .iter()
        .filter(|(_, s)| s.contains("could not connect"))
        .collect();
    assert!(
        !connects.is_empty(),
        "no limit made a connection fail: {said:#?}"
    );
    for (n, s) in connects {
        assert!(
            s.contains("ran out of open files") && s.contains("ulimit -n"),
            "under ulimit -n {n}: {s}"
        );
    }
}
