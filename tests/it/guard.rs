//! The partner-wide support profile is only changed by a file made for it: one row, and no column
//! that names a customer's, subscription's or service request's row.

use crate::common::*;

/// Found by a new user: a billing file (one row per customer, `customer_id` and `email`) run with
/// `--operation support-profile` set the partner's support e-mail from a customer's row, exit 0.
#[test]
fn a_billing_file_run_as_support_profile_is_refused_and_the_profile_is_untouched() {
    let sb = Sandbox::start(&[]);
    let before = sb.state()["supportProfile"].clone();
    let w = Workdir::new();
    let input = w.write(
        "billing.csv",
        format!(
            "customer_id,email\n{CONTOSO},ap@contoso.example\n{FABRIKAM},ap@fabrikam.example\n"
        ),
    );
    for cmd in ["apply", "plan"] {
        let out = run(&sb, &w, cmd, &input, &["--operation", "support-profile"]);
        assert_eq!(code(&out), 2, "{cmd}: {}", text(&out));
        let err = text(&out);
        assert!(
            err.contains("the column \"customer_id\"") && err.contains("nothing was sent"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    assert_eq!(sb.state()["supportProfile"], before);
    assert!(!w.path("billing.results.csv").exists());
}

#[test]
fn a_two_row_support_profile_file_is_refused_and_nothing_is_sent() {
    let sb = Sandbox::start(&[]);
    let before = sb.state()["supportProfile"].clone();
    let w = Workdir::new();
    let two = w.write(
        "sp.csv",
        "email\nhelp@adatum.example\nescalations@adatum.example\n",
    );
    let out = sb.apply(&two, &["--operation", "support-profile"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("exactly one support-profile row"),
        "{}",
        text(&out)
    );
    // Named in an operation column, the same.
    let mixed = w.write(
        "mixed.csv",
        "operation,email\nsupport-profile,help@adatum.example\nsupport-profile,x@adatum.example\n",
    );
    let out = sb.apply(&mixed, &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("2 support-profile rows"),
        "{}",
        text(&out)
    );
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
    assert_eq!(sb.state()["supportProfile"], before);

    // The one row it takes goes through.
    let one = w.write("one.csv", "email\nhelp@adatum.example\n");
    let out = sb.apply(&one, &["--operation", "support-profile"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(sb.state()["supportProfile"]["email"], "help@adatum.example");
}

/// Found by an outside tester: `validate` of a mixed file with two support-profile rows said one
/// was valid (exit 1), where apply refuses the file (exit 2): validate now says what apply does.
#[test]
fn validate_refuses_two_support_profile_rows_of_a_mixed_file_as_apply_does() {
    let w = Workdir::new();
    let input = w.write(
        "mixed.csv",
        "operation,email\nsupport-profile,z@a.example\nsupport-profile,q@a.example\n",
    );
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("2 support-profile rows"),
        "{}",
        text(&out)
    );
    assert!(!w.path("mixed.validation.csv").exists(), "{}", text(&out));
    let input = w.write("one.csv", "operation,email\nsupport-profile,z@a.example\n");
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
}
