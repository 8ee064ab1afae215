//! `pcbulk validate` on generated support-contact files of 100,000 and 1,000,000 rows (no network):
//! rows per second, and peak memory (from GNU time's maximum resident set size, where
//! /usr/bin/time exists), to show whether memory grows with the file.
//!
//! Run: `cargo bench --bench validate [-- ROWS...]`

use std::io::Write;
use std::process::Command;
use std::time::Instant;

fn write_file(path: &std::path::Path, rows: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        f,
        "Customer ID,Subscription ID,Support Tenant ID,Partner ID,Name"
    )
    .unwrap();
    for i in 0..rows {
        writeln!(
            f,
            "c0000001-0000-4000-8000-000000000001,d1000000-0000-4000-8000-{i:012x},\
             e0000001-0000-4000-8000-000000000001,4391507,Trey Research"
        )
        .unwrap();
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().unwrap();
    let gnu_time = std::path::Path::new("/usr/bin/time").exists();
    for rows in sizes {
        let input = dir.path().join(format!("rows{rows}.csv"));
        write_file(&input, rows);
        let mb = std::fs::metadata(&input).unwrap().len() as f64 / 1e6;
        let mut best = f64::MAX;
        let mut peak_kb = 0u64;
        for _ in 0..3 {
            let mut cmd = if gnu_time {
                let mut c = Command::new("/usr/bin/time");
                c.args(["-f", "%M"]).arg(env!("CARGO_BIN_EXE_pcbulk"));
                c
            } else {
                Command::new(env!("CARGO_BIN_EXE_pcbulk"))
            };
            let t = Instant::now();
            let out = cmd.arg("validate").arg(&input).output().unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if gnu_time {
                let stderr = String::from_utf8_lossy(&out.stderr);
                peak_kb = stderr
                    .lines()
                    .last()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0);
            }
            best = best.min(secs);
        }
        let memory = if gnu_time {
            format!("; peak memory {:.1} MB", peak_kb as f64 / 1024.0)
        } else {
            String::new()
        };
        println!(
            "validate: {rows} rows ({mb:.0} MB), best of 3: {best:.2} s = {:.0} rows/s{memory}",
            rows as f64 / best
        );
    }
}
