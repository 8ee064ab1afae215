//! The report to attach to a ticket (`--report PATH.html`): one self-contained page, no network,
//! no script, no font: inline CSS and an inline SVG chart. Everything that comes from the input or
//! the service goes through [`esc`]; the page is built with `format!` (a template engine would
//! be a dependency for one page).

use std::fmt::Write;

use super::headline::{self, parse_change};
use super::rows::{self, ProblemGroup, Tally};
use super::stats::Second;
use super::summary::Summary;
use crate::results::Status;

/// Text made safe to put in HTML, in an element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters and the marks that reorder text (a right-to-left override in a
            // name would show it reversed, and the rest of its line with it) are shown, not obeyed.
            c if (c.is_control() && c != '\n' && c != '\t') || reorders(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode's marks and overrides of writing direction.
fn reorders(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1d2330;
background:#f4f6f9;margin:0;padding:24px;overflow-wrap:anywhere;word-break:normal}
.lede{font-size:18px;line-height:1.4;margin:10px 0 14px;max-width:60em}
.why{margin:4px 0}.rows{margin:4px 0 10px;padding-left:22px}
h2.details{border-top:1px solid #d8dee4;padding-top:18px;margin-top:36px}
main{max-width:1100px;margin:0 auto}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
h3{font-size:14px;margin:14px 0 6px}
.sub{color:#5b6475;margin:0 0 16px}
.verdict{display:inline-block;padding:4px 12px;border-radius:14px;font-weight:600;color:#fff}
.ok{background:#1f883d}.warn{background:#bf8700}.bad{background:#cf222e}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:22px}.card span{color:#5b6475}
.card.succeeded b,.card.planned b,.card.valid b{color:#1f883d}
.card.failed b,.card.invalid b{color:#cf222e}.card.skipped b{color:#bf8700}
table{border-collapse:collapse;background:#fff;width:100%;border:1px solid #d8dee4}
th,td{text-align:left;padding:5px 9px;border-bottom:1px solid #e6e9ee;vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:normal}
.kv th{width:170px}
.chart{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:8px}
.legend span{display:inline-block;margin-right:16px}
.sw{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}
.more{color:#5b6475;margin:6px 0}
code{font:12px ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
footer{color:#5b6475;margin-top:30px;font-size:12px}
";

/// How many bars the chart draws at most (seconds are summed into wider bars beyond that).
const BARS: usize = 120;

/// The page: what happened in a sentence, the changes and the rows not applied, then the run's
/// figures (calls, latency) for whoever wants them. The rows are read from the results file (see
/// [`rows::tally`]).
pub fn render(s: &Summary, exit_code: u8) -> String {
    render_rows(s, exit_code, &rows::tally(s))
}

/// [`render`], with the rows already tallied.
pub fn render_rows(s: &Summary, exit_code: u8, t: &Tally) -> String {
    let mut h = String::with_capacity(32 * 1024);
    head(&mut h, s, exit_code);
    let _ = writeln!(
        h,
        "<p class=\"lede\">{}</p>",
        esc(&headline::sentence(t, s.about.command, s.outcome))
    );
    if let Some(why) = &s.aborted {
        let _ = writeln!(h, "<p><b>Stopped early:</b> {}</p>", esc(why));
    }
    if let Some(why) = &t.partial {
        let _ = writeln!(h, "<p class=\"more\">{}</p>", esc(why));
    }
    if s.outcome == Some("already_finished") {
        // This run sent nothing: what the earlier run did is in its records, not on this page.
        let _ = writeln!(
            h,
            "<p>What the earlier run did, row by row, is in its results file: <code>{}</code>.</p>",
            esc(&s.results.display().to_string())
        );
    } else {
        cards(&mut h, s);
        changes(&mut h, t);
        not_applied(&mut h, t);
        if t.changed() + t.not_applied > 0 {
            named_by(&mut h, t);
        }
        h.push_str("<h2 class=\"details\">Details of the run</h2>\n");
        chart(&mut h, &s.calls.per_second);
        latency(&mut h, s);
    }
    facts(&mut h, s, exit_code);
    let _ = write!(
        h,
        "<footer>Made by pcbulk {} at {}. This page loads nothing from the network.</footer>\n\
         </main></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&super::json::rfc3339(
            s.about.finished.unwrap_or_else(std::time::SystemTime::now)
        ))
    );
    h
}

/// The document's head, the title and the verdict.
fn head(h: &mut String, s: &Summary, exit_code: u8) {
    let a = &s.about;
    let title = format!(
        "pcbulk {} · {}",
        a.command,
        a.operation.as_deref().unwrap_or("operation not known")
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>\n",
        esc(&title)
    );
    let (class, verdict) = match exit_code {
        0 if s.outcome == Some("already_finished") => {
            ("ok", "already applied: nothing sent".to_owned())
        }
        0 => ("ok", "every row done".to_owned()),
        1 => (
            "bad",
            "needs attention: some rows failed or are invalid".to_owned(),
        ),
        3 => ("bad", "stopped early".to_owned()),
        n => ("bad", format!("did not run (exit {n})")),
    };
    let _ = writeln!(
        h,
        "<h1>{}</h1><p class=\"sub\">to {} · <span class=\"verdict {class}\">{}</span></p>",
        esc(&title),
        esc(a.target.as_deref().unwrap_or("no target")),
        esc(&verdict)
    );
}

fn cards(h: &mut String, s: &Summary) {
    h.push_str("<div class=\"cards\">");
    let _ = write!(
        h,
        "<div class=\"card\"><b>{}</b><span>rows</span></div>",
        s.rows()
    );
    for st in Status::ALL.iter().filter(|st| s.count_of(**st) > 0) {
        let _ = write!(
            h,
            "<div class=\"card {st}\"><b>{}</b><span>{st}</span></div>",
            s.count_of(*st)
        );
    }
    let c = &s.calls;
    for (n, what) in [
        (c.calls, "calls"),
        (c.retries, "retries"),
        (c.throttled, "429s met"),
    ] {
        let _ = write!(h, "<div class=\"card\"><b>{n}</b><span>{what}</span></div>");
    }
    h.push_str("</div>\n");
}

fn facts(h: &mut String, s: &Summary, exit_code: u8) {
    let a = &s.about;
    let path = |p: Option<&std::path::Path>| p.map(|p| p.display().to_string());
    let rate = s.calls.rate().map(|r| format!("{r:.1} calls/s"));
    let rows: [(&str, Option<String>); 9] = [
        ("input", path(a.input.as_deref())),
        ("results", Some(s.results.display().to_string())),
        ("journal", path(a.journal.as_deref())),
        ("undo file", path(a.undo.as_deref())),
        ("started", Some(super::json::rfc3339(a.started))),
        ("finished", a.finished.map(super::json::rfc3339)),
        ("elapsed", Some(format!("{:.1} s", s.elapsed.as_secs_f64()))),
        ("effective rate", rate),
        ("exit code", Some(exit_code.to_string())),
    ];
    h.push_str("<h2>Run</h2><table class=\"kv\">");
    for (k, v) in rows {
        if let Some(v) = v {
            let _ = write!(h, "<tr><th>{k}</th><td><code>{}</code></td></tr>", esc(&v));
        }
    }
    h.push_str("</table>\n");
}

/// Calls per second and 429s per second as bars, in an inline SVG.
fn chart(h: &mut String, seconds: &[Second]) {
    h.push_str("<h2>Calls and 429s over time</h2>");
    if seconds.is_empty() {
        h.push_str("<p class=\"more\">No calls were made.</p>\n");
        return;
    }
    let per = seconds.len().div_ceil(BARS).max(1);
    let bars = bar_means(seconds, per);
    let top = bars.iter().map(|b| b.0.max(b.1)).fold(1.0, f64::max);
    let (w, ht, left, bottom) = (1000.0, 240.0, 50.0, 28.0);
    let plot = Plot {
        left,
        width: w - left - 10.0,
        height: ht - bottom - 10.0,
        top,
    };
    let _ = write!(
        h,
        "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {ht}\" \
         width=\"100%\" role=\"img\" aria-label=\"calls and 429s per second\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{ht}\" fill=\"#ffffff\"/>"
    );
    gridlines(h, &plot);
    draw_bars(h, &plot, &bars);
    let secs = seconds.len();
    let _ = writeln!(
        h,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5b6475\">0 s</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6475\">{secs} s</text>\
         </svg><div class=\"legend\"><span><i class=\"sw\" style=\"background:#2f81f7\"></i>calls/s</span>\
         <span><i class=\"sw\" style=\"background:#cf222e\"></i>429s/s</span>{}</div></div>",
        ht - 8.0,
        left + plot.width,
        ht - 8.0,
        if per > 1 {
            format!("<span>each bar is the mean of {per} s</span>")
        } else {
            String::new()
        }
    );
}

/// The chart's plot area inside the SVG and the value its top stands for, shared by the grid and
/// the bars so they cannot disagree on the scale.
struct Plot {
    left: f64,
    width: f64,
    height: f64,
    top: f64,
}

/// Calls and 429s per second, averaged over `per` seconds a bar: a long run still fits the
/// chart's [`BARS`] bars.
fn bar_means(seconds: &[Second], per: usize) -> Vec<(f64, f64)> {
    seconds
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            let calls: u64 = c.iter().map(|x| u64::from(x.calls)).sum();
            let thr: u64 = c.iter().map(|x| u64::from(x.throttled)).sum();
            (calls as f64 / n, thr as f64 / n)
        })
        .collect()
}

/// Five horizontal lines with their values, so a bar's height can be read off.
fn gridlines(h: &mut String, plot: &Plot) {
    let (left, plot_w, plot_h, top) = (plot.left, plot.width, plot.height, plot.top);
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let y = 10.0 + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            h,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6475\">{v:.0}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0
        );
    }
}

/// One bar of calls per slot, with its 429s drawn over it in red where there were any.
fn draw_bars(h: &mut String, plot: &Plot, bars: &[(f64, f64)]) {
    let Plot {
        left,
        width: plot_w,
        height: plot_h,
        top,
    } = *plot;
    let bw = plot_w / bars.len() as f64;
    for (i, (calls, thr)) in bars.iter().enumerate() {
        let x = left + bw * i as f64;
        let ch = plot_h * calls / top;
        let th = plot_h * thr / top;
        let _ = write!(
            h,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ch:.1}\" fill=\"#2f81f7\"/>",
            10.0 + plot_h - ch,
            (bw * 0.85).max(0.5)
        );
        if *thr > 0.0 {
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{th:.1}\" fill=\"#cf222e\"/>",
                10.0 + plot_h - th,
                (bw * 0.85).max(0.5)
            );
        }
    }
}

fn latency(h: &mut String, s: &Summary) {
    h.push_str("<h2>Latency</h2>");
    let Some(l) = s.calls.latency() else {
        h.push_str("<p class=\"more\">No call was answered.</p>\n");
        return;
    };
    let _ = writeln!(
        h,
        "<table><tr><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th>\
         <th class=\"num\">max</th></tr><tr>\
         <td class=\"num\">{:.1} ms</td><td class=\"num\">{:.1} ms</td>\
         <td class=\"num\">{:.1} ms</td><td class=\"num\">{:.1} ms</td></tr></table>",
        l.p50, l.p90, l.p99, l.max
    );
}

/// How many groups of identical changes the page lists.
const CHANGES_SHOWN: usize = 20;
/// How many error codes the page lists.
const CODES_SHOWN: usize = 20;

/// One change, a column to a line: `name: "Adatum Cloud" → "Fabrikam Resellers"`.
fn change_cell(change: &str) -> String {
    let Some(fields) = parse_change(change).filter(|f| !f.is_empty()) else {
        return format!("<code>{}</code>", esc(change));
    };
    let lines: Vec<String> = fields
        .iter()
        .map(|f| match &f.from {
            Some(from) => format!(
                "<code>{}</code>: \"{}\" → \"{}\"",
                esc(&f.field),
                esc(from),
                esc(&f.to)
            ),
            None => format!("<code>{}</code>: + \"{}\"", esc(&f.field), esc(&f.to)),
        })
        .collect();
    lines.join("<br>")
}

/// Identical changes grouped, the most rows first, each with its count and a few of its rows.
fn changes(h: &mut String, t: &Tally) {
    h.push_str("<h2>What changed (before → after)</h2>");
    let groups = t.change_groups();
    if groups.is_empty() {
        h.push_str("<p class=\"more\">Nothing changed.</p>\n");
        return;
    }
    let mixed = t.ops.len() > 1;
    h.push_str("<table class=\"changes\"><tr><th class=\"num\">rows</th>");
    if mixed {
        h.push_str("<th>operation</th>");
    }
    h.push_str("<th>change</th><th>for example</th></tr>");
    for g in groups.iter().take(CHANGES_SHOWN) {
        let _ = write!(h, "<tr><td class=\"num\">×&nbsp;{}</td>", g.count);
        if mixed {
            let op = t.ops[g.op].op.map_or("not known", |o| o.name);
            let _ = write!(h, "<td>{op}</td>");
        }
        let mut examples: Vec<String> = g.rows.iter().map(|r| esc(r)).collect();
        if g.count > g.rows.len() {
            examples.push("…".into());
        }
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            change_cell(&g.change),
            examples.join("<br>")
        );
    }
    h.push_str("</table>");
    let hidden = &groups[groups.len().min(CHANGES_SHOWN)..];
    let rows = hidden.iter().map(|g| g.count).sum::<usize>() + t.changes_over;
    if t.changes_over > 0 {
        let _ = write!(
            h,
            "<p class=\"more\">… and {} with other changes in the results file.</p>",
            crate::text::count(rows, "row")
        );
    } else if !hidden.is_empty() {
        let _ = write!(
            h,
            "<p class=\"more\">… and {} other {} ({}) in the results file.</p>",
            hidden.len(),
            if hidden.len() == 1 {
                "change"
            } else {
                "changes"
            },
            crate::text::count(rows, "row")
        );
    }
    h.push('\n');
}

/// What names the rows listed: the carried columns used, or row numbers and ids.
fn named_by(h: &mut String, t: &Tally) {
    let how = match t.named_by.as_slice() {
        [] => "Rows are named by their row number (and their ids).".to_owned(),
        [one] => format!("Rows are named by their \"{}\" column.", esc(one)),
        many => format!(
            "Rows are named by their {} columns.",
            many.iter()
                .map(|c| format!("\"{}\"", esc(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let _ = writeln!(h, "<p class=\"more\">{how}</p>");
}

/// "7 failed, 2 skipped": a group's rows by status.
fn statuses(g: &ProblemGroup) -> String {
    Status::ALL
        .iter()
        .filter(|st| g.statuses[**st as usize] > 0)
        .map(|st| format!("{} {st}", g.statuses[*st as usize]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every row not applied, grouped by error code with the message that explains it and its rows.
fn not_applied(h: &mut String, t: &Tally) {
    h.push_str("<h2>Rows not applied, by error code</h2>");
    let groups = t.problem_groups();
    if groups.is_empty() {
        h.push_str("<p class=\"more\">None: every row was applied.</p>\n");
        return;
    }
    for g in groups.iter().take(CODES_SHOWN) {
        let http = g
            .http_status
            .map(|c| format!(" · HTTP {c}"))
            .unwrap_or_default();
        let st = statuses(g);
        let _ = write!(
            h,
            "<h3><code>{}</code> · {}{http}{}</h3><p class=\"why\">{}</p><ul class=\"rows\">",
            esc(&g.code),
            crate::text::count(g.count, "row"),
            if st.is_empty() {
                st
            } else {
                format!(" · {st}")
            },
            esc(&g.message)
        );
        for r in &g.rows {
            let own = r
                .message
                .as_deref()
                .map(|m| format!(": {}", esc(m)))
                .unwrap_or_default();
            let _ = write!(h, "<li>{} ({}){own}</li>", esc(&r.label), r.status);
        }
        h.push_str("</ul>");
        if g.count > g.rows.len() {
            let _ = write!(
                h,
                "<p class=\"more\">… and {} more in the results file.</p>",
                crate::text::count(g.count - g.rows.len(), "row")
            );
        }
        h.push('\n');
    }
    if groups.len() > CODES_SHOWN {
        let rest = &groups[CODES_SHOWN..];
        let _ = writeln!(
            h,
            "<p class=\"more\">… and {} other error codes ({}) in the results file.</p>",
            rest.len(),
            crate::text::count(rest.iter().map(|g| g.count).sum(), "row")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Outcome;
    use std::path::PathBuf;

    /// Found by an outside tester: a right-to-left override in a carried name reached the page
    /// Found by an outside tester: the report of a `--resume` that found the run finished said
    /// "every row done" and "None: every row was applied", though that run had failed rows.
    #[test]
    fn the_report_of_an_already_finished_run_says_nothing_was_sent_and_claims_no_rows() {
        let mut s = Summary::new(PathBuf::from("march.results.csv"));
        s.outcome = Some("already_finished");
        let page = render_rows(&s, 0, &Tally::default());
        assert!(page.contains("already applied: nothing sent"), "{page}");
        assert!(page.contains("march.results.csv"), "{page}");
        assert!(!page.contains("every row"), "{page}");
    }

    /// raw and showed the row's label reversed.
    #[test]
    fn marks_that_reorder_text_and_control_characters_are_shown_not_obeyed() {
        assert_eq!(esc("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(esc("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(esc("two\nlines\tand tab"), "two\nlines\tand tab");
        assert_eq!(esc("Malmö <b>"), "Malmö &lt;b&gt;");
    }

    #[test]
    fn text_from_the_input_or_the_service_cannot_become_markup() {
        let evil = "<script>alert(1)</script><img src=x onerror=\"alert(2)\">'&";
        let mut s = Summary::new(PathBuf::from("<b>r</b>.csv"));
        s.about.operation = Some(evil.into());
        s.about.target = Some(evil.into());
        s.aborted = Some(evil.into());
        let mut o = Outcome::unsent(1, 2, Status::Failed, evil, evil);
        o.http_status = Some(400);
        s.count(o);
        let mut ok = Outcome::unsent(2, 3, Status::Succeeded, "", "");
        ok.change = format!("name: \"{evil}\" → \"x\"");
        s.count(ok);
        let page = render(&s, 1);
        for bad in ["<script", "<img", "onerror=\"", "<b>r"] {
            assert!(!page.contains(bad), "{bad} in the page");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(
            page.matches("<table").count(),
            page.matches("</table>").count()
        );
    }

    fn line(row: usize, status: Status, change: &str) -> rows::Line<'_> {
        rows::Line {
            row,
            status,
            op: 0,
            change,
            code: "",
            message: "",
            http_status: None,
        }
    }

    #[test]
    fn identical_changes_are_one_line_with_a_count_and_the_groups_shown_are_bounded() {
        let s = Summary::new(PathBuf::from("r.csv"));
        let mut t = Tally::new(vec![crate::ops::by_name("support-contact")]);
        for row in 1..=291 {
            let same = "name: \"Adatum Cloud\" → \"Fabrikam Resellers\"";
            t.add(line(row, Status::Succeeded, same), || format!("row {row}"));
        }
        let n = CHANGES_SHOWN + 7;
        for row in 1000..1000 + n {
            let change = format!("name: \"a{row}\" → \"b\"");
            t.add(line(row, Status::Succeeded, &change), String::new);
        }
        let page = render_rows(&s, 0, &t);
        assert!(page.contains(
            "<td class=\"num\">×&nbsp;291</td><td><code>name</code>: \"Adatum Cloud\" → \"Fabrikam Resellers\"</td>\
             <td>row 1<br>row 2<br>row 3<br>…</td>"
        ));
        assert_eq!(
            page.matches("<td class=\"num\">×&nbsp;").count(),
            CHANGES_SHOWN
        );
        assert!(page.contains("… and 8 other changes (8 rows) in the results file."));
    }

    #[test]
    fn a_value_wraps_between_words_and_a_long_one_anywhere_with_no_sideways_scroll() {
        assert!(STYLE.contains("overflow-wrap:anywhere"));
        assert!(
            !STYLE.contains("break-all"),
            "break-all splits words that fit"
        );
        assert!(!STYLE.contains("nowrap") && !STYLE.contains("overflow-x"));
    }

    #[test]
    fn a_long_run_s_chart_has_a_bounded_number_of_bars() {
        let seconds = vec![
            Second {
                calls: 10,
                throttled: 1
            };
            10_000
        ];
        let mut h = String::new();
        chart(&mut h, &seconds);
        let rects = h.matches("<rect").count();
        assert!(rects <= 1 + 2 * BARS, "{rects} rects");
        assert!(h.contains("each bar is the mean of"));
    }
}
