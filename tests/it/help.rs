//! Help that teaches: someone who has never seen pcbulk follows `pcbulk --help` from a template to
//! an applied run on the sandbox; every command's help ends with worked examples; the variables
//! and exit codes are listed; completions for every shell; a mistyped operation gets a "did you
//! mean"; one problem is worded alike by validate and apply.

use std::process::Output;

use crate::common::*;

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    pcbulk()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run pcbulk")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The commands of the "Start here" lines of `pcbulk --help`, as the user would type them.
fn start_here() -> Vec<String> {
    let out = run(&["--help"], std::path::Path::new("."));
    assert_eq!(code(&out), 0);
    stdout(&out)
        .lines()
        .skip_while(|l| !l.starts_with("Start here"))
        .skip(1)
        .take_while(|l| l.starts_with("  pcbulk "))
        // The command, then two spaces or more, then what it does.
        .map(|l| l.trim().split("  ").next().unwrap().trim().to_owned())
        .collect()
}

/// Runs a command line from the help in `dir`: words split on spaces, `> FILE` redirects stdout.
fn follow(line: &str, dir: &std::path::Path) -> Output {
    let (cmd, to) = match line.split_once(" > ") {
        Some((cmd, file)) => (cmd, Some(file.trim())),
        None => (line, None),
    };
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words[0], "pcbulk", "{line}");
    let out = run(&words[1..], dir);
    if let Some(file) = to {
        std::fs::write(dir.join(file), &out.stdout).unwrap();
    }
    out
}

#[test]
fn a_newcomer_follows_the_help_from_a_template_to_an_applied_run() {
    let steps = start_here();
    assert!(steps.len() >= 4, "{steps:?}");
    let w = Workdir::new();
    // template, validate, plan on the sandbox, apply on the sandbox: what the help says, in order.
    let [template, validate, plan, apply] = [0, 1, 2, 3].map(|i| steps[i].as_str());
    assert!(
        template.starts_with("pcbulk template support-contact > "),
        "{template}"
    );
    // Every operation the registry has, so a new one cannot be left out.
    for op in pcbulk::ops::OPERATIONS.iter().map(|o| o.name) {
        let file = format!("{op}.csv");
        let stem = op;
        let own = |step: &str| {
            step.replace("support-contact", op)
                .replace("contacts.csv", &file)
        };

        let out = follow(&own(template), w.path("").as_path());
        assert_eq!(code(&out), 0, "{}", text(&out));
        let header = stdout(&out).lines().next().unwrap_or_default().to_owned();
        let columns = header.split(',').count();
        assert!(columns >= 3, "{op}: {header}");

        let out = follow(&own(validate), w.path("").as_path());
        assert_eq!(
            code(&out),
            0,
            "{op}: the example row validates: {}",
            text(&out)
        );
        assert!(stdout(&out).contains("1 row in"), "{}", text(&out));
        assert!(!stdout(&out).contains("1 rows"), "{}", text(&out));
        let rows = results(&w.path(&format!("{stem}.validation.csv")));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["status"], "valid", "{op}: {:?}", rows[0]);

        let out = follow(&own(plan), w.path("").as_path());
        assert_eq!(code(&out), 0, "{op}: {}", text(&out));
        let rows = results(&w.path(&format!("{stem}.plan.csv")));
        assert_eq!(rows[0]["status"], "planned", "{op}: {:?}", rows[0]);
        assert!(!rows[0]["change"].is_empty(), "{op}: {:?}", rows[0]);

        let out = follow(&own(apply), w.path("").as_path());
        assert_eq!(code(&out), 0, "{op}: {}", text(&out));
        let rows = results(&w.path(&format!("{stem}.results.csv")));
        assert_eq!(rows[0]["status"], "succeeded", "{op}: {:?}", rows[0]);
        assert!(
            stdout(&out).contains("the sandbox tenant changed (1)"),
            "{op}: {}",
            text(&out)
        );
    }
}

#[test]
fn every_command_help_ends_with_worked_examples() {
    let dir = std::path::Path::new(".");
    for cmd in [
        "apply",
        "plan",
        "validate",
        "template",
        "undo",
        "sandbox",
        "auth",
        "completions",
    ] {
        let out = run(&[cmd, "--help"], dir);
        assert_eq!(code(&out), 0, "{cmd}: {}", text(&out));
        let help = stdout(&out);
        let examples = help
            .find("Examples:")
            .unwrap_or_else(|| panic!("{cmd}: no examples:\n{help}"));
        let options = help.find("Options:").expect("options listed");
        assert!(examples > options, "{cmd}: examples come last:\n{help}");
        let example_lines: Vec<&str> = help[examples..]
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("pcbulk {cmd}")))
            .collect();
        assert!(
            !example_lines.is_empty(),
            "{cmd}: an example of the command itself:\n{help}"
        );
    }
}

#[test]
fn the_main_help_lists_the_variables_and_the_exit_codes() {
    let out = run(&["--help"], std::path::Path::new("."));
    let help = stdout(&out);
    for var in [
        "PCBULK_ACCESS_TOKEN",
        "PCBULK_TENANT_ID",
        "PCBULK_CLIENT_ID",
        "PCBULK_REFRESH_TOKEN",
        "PCBULK_CLIENT_SECRET",
        "PCBULK_AUTHORITY",
        "PCBULK_BASE_URL",
    ] {
        assert!(help.contains(var), "{var} missing:\n{help}");
    }
    let codes = &help[help.find("Exit codes:").expect("exit codes listed")..];
    for c in ["0  ", "1  ", "2  ", "3  "] {
        assert!(
            codes.lines().any(|l| l.trim_start().starts_with(c)),
            "exit code {c} missing:\n{codes}"
        );
    }
    assert!(help.contains("PowerShell"), "{help}");
}

#[test]
fn completions_for_every_shell() {
    let dir = std::path::Path::new(".");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell], dir);
        assert_eq!(code(&out), 0, "{shell}: {}", text(&out));
        let script = stdout(&out);
        for word in ["pcbulk", "template", "sheet", "operation"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
        // The shells whose scripts complete values are offered the operations' names.
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(
                script.contains("billing-profile"),
                "{shell}: no operation names"
            );
        }
    }
    let out = run(&["completions", "tcsh"], dir);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("powershell"), "{}", text(&out));
}

#[test]
fn a_mistyped_operation_gets_a_did_you_mean() {
    let w = Workdir::new();
    let input = w.write("c.csv", contacts_csv(1));
    let input = input.to_str().unwrap();
    for args in [
        vec!["template", "suport-contact"],
        vec!["validate", input, "--operation", "suport-contact"],
        vec![
            "apply",
            input,
            "--sandbox",
            "--operation",
            "Billing Profiles",
        ],
    ] {
        let out = run(&args, w.path("").as_path());
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(err.contains("did you mean"), "{args:?}: {err}");
        let want = if args.contains(&"Billing Profiles") {
            "billing-profile?"
        } else {
            "support-contact?"
        };
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // In a mixed file's operation column, the same words.
    let mixed = w.write(
        "mixed.csv",
        "operation,service_request_id,note\nservice-requst,616122292874576,hello\n",
    );
    let out = run(&["validate", mixed.to_str().unwrap()], w.path("").as_path());
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = results(&w.path("mixed.validation.csv"));
    assert_eq!(rows[0]["error_code"], "invalid_operation");
    assert!(
        rows[0]["error_message"]
            .contains("\"service-requst\" is not an operation: did you mean service-request?"),
        "{:?}",
        rows[0]
    );
    let out = run(&["template", "frobnicate"], w.path("").as_path());
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(!err.contains("did you mean"), "nothing close: {err}");
    assert!(err.contains("service-request, support-profile"), "{err}");
}

#[test]
fn an_unmatched_header_is_echoed_with_the_closest_operations_columns() {
    let w = Workdir::new();
    let input = w.write(
        "contacts.csv",
        "Customer ID,Subscription,Support Tenant ID,Reseller Name\n\
         c0000001-0000-4000-8000-000000000001,x,y,z\n",
    );
    let out = run(&["validate", input.to_str().unwrap()], w.path("").as_path());
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"its header ("Customer ID", "Subscription", "Support Tenant ID", "Reseller Name")"#
        ),
        "{err}"
    );
    assert!(err.contains("The closest is support-contact"), "{err}");
    assert!(
        err.contains("the file lacks subscription_id, support_mpn_id, name"),
        "{err}"
    );
}

#[test]
fn validate_and_apply_word_a_bad_row_alike() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write(
        "contacts.csv",
        format!(
            "customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n\
             not-a-guid,d0000001-0000-4000-8000-000000000011,{TREY_TENANT},4391507,Trey\n\
             {CONTOSO},d0000001-0000-4000-8000-000000000011,{TREY_TENANT},43x,Trey\n"
        ),
    );
    let out = run(&["validate", input.to_str().unwrap()], w.path("").as_path());
    assert_eq!(code(&out), 1, "{}", text(&out));
    let said_by_validate = stdout(&out);
    let validated = results(&w.path("contacts.validation.csv"));
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let said_by_apply = stdout(&out);
    let applied = results(&w.path("contacts.results.csv"));
    assert_eq!(validated.len(), 2);
    for (v, a) in validated.iter().zip(&applied) {
        assert_eq!(v["status"], "invalid");
        assert_eq!(a["status"], "invalid");
        assert_eq!(v["error_code"], a["error_code"]);
        assert_eq!(v["error_message"], a["error_message"]);
        assert!(!v["error_message"].is_empty());
        // And the summary lines say it the same way.
        let line = format!(
            "row {} (line {}) invalid: {}",
            v["row"], v["line"], v["error_message"]
        );
        assert!(said_by_validate.contains(&line), "{said_by_validate}");
        assert!(said_by_apply.contains(&line), "{said_by_apply}");
    }
}

/// Found by an outside tester: plan and validate said --out defaults to <input stem>.results.csv,
/// where they write .plan.csv and .validation.csv. Each command's help names the file it really
/// writes without --out.
#[test]
fn each_commands_help_names_the_out_file_it_really_writes() {
    for cmd in ["apply", "plan", "validate"] {
        let w = Workdir::new();
        let out = run(&[cmd, "--help"], w.path("").as_path());
        assert_eq!(code(&out), 0, "{cmd}: {}", text(&out));
        let help = stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let option = &help[help.find("--out <OUT>").expect("--out listed")..];
        let from = option
            .find("default: <input stem>")
            .unwrap_or_else(|| panic!("{cmd}: no default named: {option}"))
            + "default: <input stem>".len();
        let suffix = &option[from..from + option[from..].find(".csv").unwrap() + ".csv".len()];

        let input = w.write(
            "in.csv",
            "service_request_id,note\n616122292874576,a note\n",
        );
        let mut args = vec![cmd, input.to_str().unwrap()];
        if cmd != "validate" {
            args.push("--sandbox");
        }
        let ran = run(&args, w.path("").as_path());
        assert_eq!(code(&ran), 0, "{cmd}: {}", text(&ran));
        let written: Vec<String> = std::fs::read_dir(w.path(""))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".csv") && n != "in.csv")
            .collect();
        assert_eq!(
            written,
            [format!("in{suffix}")],
            "{cmd}: help says {suffix}"
        );
    }
}
