//! The files in samples/ against the demo tenant (`apply --sandbox`): every bad row gets the status it
//! deserves, and the good rows succeed.

use std::path::Path;

use crate::common::*;

fn run_sample(name: &str) -> (i32, Vec<(String, String)>, String) {
    let w = Workdir::new();
    let out_path = w.path("results.csv");
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name);
    let out = pcbulk()
        .arg("apply")
        .arg(&input)
        .args(["--sandbox", "--rate", "200", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    let rows = results(&out_path)
        .into_iter()
        .map(|r| (r["status"].clone(), r["error_code"].clone()))
        .collect();
    (code(&out), rows, text(&out))
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn support_contacts_sample() {
    let (code, rows, out) = run_sample("support-contacts.csv");
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        rows,
        pairs(&[
            ("succeeded", ""),
            ("succeeded", ""),
            ("succeeded", ""),
            ("failed", "800002"),
            ("failed", "800016"),
            ("invalid", "invalid_partner_id"),
            ("invalid", "duplicate_target"),
        ])
    );
    assert!(out.contains("the sandbox tenant changed (3)"), "{out}");
    // Found by an outside test: the summary said what to do for pcbulk's own codes but not for the
    // service's refusals (800002, 800016): they now say the row itself must change.
    assert!(
        out.contains("800002") && out.contains("the service refused this row: correct it"),
        "{out}"
    );
    // The README's first command: the banner before any call, then the changes.
    let banner = out
        .find("pcbulk: apply support-contact (chosen by the header) to the embedded sandbox (demo tenant)")
        .unwrap_or_else(|| panic!("no banner: {out}"));
    assert!(
        out[banner..].contains("5 rows to send, 2 invalid or duplicate; results: "),
        "{out}"
    );
}

#[test]
fn service_requests_sample() {
    let (code, rows, out) = run_sample("service-requests.csv");
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        rows,
        pairs(&[
            ("succeeded", ""),
            ("succeeded", ""),
            ("succeeded", ""),
            ("succeeded", ""),
            ("invalid", "invalid_id"),
            ("invalid", "invalid_status"),
            ("failed", "800002"),
        ])
    );
}

#[test]
fn support_profile_sample() {
    // The partner-wide profile takes exactly one row (a second would be refused, exit 2).
    let (code, rows, out) = run_sample("support-profile.csv");
    assert_eq!(code, 0, "{out}");
    assert_eq!(rows, pairs(&[("succeeded", "")]));
}

#[test]
fn billing_profiles_sample() {
    let (code, rows, out) = run_sample("billing-profiles.csv");
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        rows,
        pairs(&[
            ("succeeded", ""),
            ("succeeded", ""),
            ("succeeded", ""),
            ("failed", "20002"),
            ("invalid", "invalid_country"),
        ])
    );
}

#[test]
fn mixed_sample() {
    let (code, rows, out) = run_sample("mixed.csv");
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        rows,
        pairs(&[
            ("succeeded", ""),
            ("succeeded", ""),
            ("succeeded", ""),
            ("succeeded", ""),
            ("invalid", "invalid_operation"),
            ("invalid", "invalid_guid"),
        ])
    );
}
