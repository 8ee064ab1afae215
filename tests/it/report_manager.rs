//! The report as a manager reads it: what happened in one sentence, identical changes counted once,
//! rows named by the admin's own columns, every row not applied explained. The real binary against
//! a real sandbox; the page read as text, its tags taken off.

use std::collections::BTreeMap;

use crate::common::*;

/// The Contoso subscriptions the file moves to Trey Research.
const MOVED: usize = 12;

/// A support-contact file with the admin's own `Customer Name` and `Subscription` columns:
/// [`MOVED`] rows that all make one change, a New Commerce subscription the service refuses, and
/// two rows with ids that are not GUIDs.
fn admins_file() -> String {
    let mut csv = String::from(
        "Customer Name,customer_id,subscription_id,Subscription,support_tenant_id,support_mpn_id,name\n",
    );
    let mut row = |customer: &str, id: &str, sub: &str, sub_name: &str| {
        csv.push_str(&format!(
            "{customer},{id},{sub},{sub_name},{TREY_TENANT},4391507,Trey Research\n"
        ));
    };
    for i in 0..MOVED {
        row(
            "Contoso Ltd",
            CONTOSO,
            &extra_subscription(i),
            &format!("Office 365 E1 #{i}"),
        );
    }
    row(
        "Fabrikam Inc",
        FABRIKAM,
        "d0000002-0000-4000-8000-000000000022",
        "Microsoft 365 E5 (New Commerce)",
    );
    row(
        "Northwind Traders",
        "not-a-guid",
        "d0000003-0000-4000-8000-000000000031",
        "Office 365 E3",
    );
    row("Northwind Traders", NORTHWIND, "nor-this", "Visio Plan 2");
    csv
}

/// The page's text as a browser shows it, roughly: tags off, entities undone, spaces collapsed.
fn text_of(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of the first element that opens with `open` (a tag and its attributes).
fn element(page: &str, open: &str) -> String {
    let from = page
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {page}"));
    let rest = &page[from..];
    let end = rest.find("</").unwrap();
    text_of(&rest[..end])
}

#[test]
fn a_manager_reads_what_happened_who_it_was_and_why_each_row_was_not_applied() {
    let sb = Sandbox::start(&["--subscriptions", &MOVED.to_string()]);
    let w = Workdir::new();
    let input = w.write("contacts.csv", admins_file());
    let report = w.path("report.html");
    let out = sb.apply(&input, &["--report", report.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let page = std::fs::read_to_string(&report).expect("the report was written");
    let all = text_of(&page[page.find("<body").expect("a body")..]);

    // One sentence first, in business terms.
    let lede = element(&page, "<p class=\"lede\">");
    assert_eq!(
        lede,
        format!(
            "{MOVED} support contacts moved from Adatum Cloud (partner) to Trey Research; 3 rows \
             not applied, 2 of them: column \"customer_id\": customer_id \"not-a-guid\" is not a \
             GUID."
        ),
        "{all}"
    );

    // The twelve identical changes are one line, with their count.
    let change = "name : \"Adatum Cloud (partner)\" → \"Trey Research\"";
    assert_eq!(all.matches(change).count(), 1, "{all}");
    assert!(all.contains(&format!("× {MOVED} ")), "{all}");

    // Rows are named by the admin's own columns.
    assert!(
        all.contains("row 1 · Contoso Ltd · Office 365 E1 #0"),
        "{all}"
    );
    assert!(
        all.contains("Rows are named by their \"Customer Name\", \"Subscription\" columns."),
        "{all}"
    );

    // Every row not applied is listed under its code, with the message that explains it.
    let rows = results(&w.path("contacts.results.csv"));
    let not_applied: Vec<&BTreeMap<String, String>> = rows
        .iter()
        .filter(|r| !matches!(r["status"].as_str(), "succeeded" | "unchanged"))
        .collect();
    assert_eq!(not_applied.len(), 3);
    for r in not_applied {
        let code = &r["error_code"];
        let heading = all
            .find(&format!(" {code} · "))
            .unwrap_or_else(|| panic!("no heading for {code}: {all}"));
        let label = format!(
            "row {} · {} · {} ({})",
            r["row"], r["Customer Name"], r["Subscription"], r["status"]
        );
        let listed = all[heading..]
            .find(&label)
            .unwrap_or_else(|| panic!("{label} not under {code}: {all}"));
        let explained = all[heading..heading + listed].contains(r["error_message"].as_str())
            || all[heading + listed..].starts_with(&format!("{label}: {}", r["error_message"]));
        assert!(
            explained,
            "{label}: {} not shown: {all}",
            r["error_message"]
        );
    }

    // The run's figures come after, for whoever wants them.
    let details = all.find("Details of the run").expect("a details part");
    for figure in ["p50", "Calls and 429s over time", "effective rate"] {
        assert!(all[details..].contains(figure), "{figure} not below: {all}");
    }
    assert!(all.find("Rows not applied").unwrap() < details);
}
