//! `pcbulk apply`: check the file, then send it, streamed, with a journal, and keep the run record
//! (results file, journal outcomes, progress, summary) from the run's events.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use crate::api::auth::Tokens;
use crate::api::http::HttpTransport;
use crate::config::{ApplyConfig, Target};
use crate::dispatch::Dispatcher;
use crate::error::{exit, Error};
use crate::events::{Emitter, Event, Listener};
use crate::failpoint;
use crate::journal::{self, Journal};
use crate::pipeline::check;
use crate::pipeline::engine::{Drive, PlanRows, Reading, GRACE};
use crate::report::progress::Progress;
use crate::report::summary::{About, Summary};
use crate::report::Output;
use crate::results::StreamWriter;

/// Everything a run leaves behind, kept from its events on one thread: the results file (in input
/// order, as rows finish), each row's outcome in the journal, the progress display and the summary.
struct RunRecord {
    results: StreamWriter,
    journal: Arc<Journal>,
    progress: Progress,
    summary: Summary,
    width: usize,
    /// Rows written so far, and the row half-way through (for the crash tests).
    written: usize,
    half: usize,
}

impl Listener for RunRecord {
    fn on(&mut self, event: &Event) -> std::io::Result<()> {
        if let Event::RowFinished(f) = event {
            if !f.known {
                self.journal
                    .append(journal::Record::Row(f.outcome.clone()), false)?;
            }
            self.results
                .write_line(f.raw.trimmed(self.width), &f.outcome)?;
            self.written += 1;
            if self.written == self.half {
                failpoint::hit("mid-results");
            }
        }
        crate::report::logs::log(event);
        self.progress.on(event)?;
        self.summary.on(event)?;
        if matches!(event, Event::RowFinished(_)) {
            self.progress.show(&self.summary);
        }
        Ok(())
    }
}

impl RunRecord {
    /// Listens until the stream ends; a record that cannot be written stops the run (the rows
    /// already sent are in the journal).
    fn listen(mut self, events: Receiver<Event>, stop: Arc<crate::dispatch::Stop>) -> Summary {
        let mut broken = false;
        crate::events::drain(&events, |event| match event {
            // Shown while no event comes too (a Retry-After waited out); lines reach the file each
            // time the stream is drained.
            None => {
                self.progress.show(&self.summary);
                if !broken {
                    if let Err(e) = self.results.flush() {
                        broken = self.fail(&stop, e);
                    }
                }
            }
            Some(_) if broken => {}
            Some(event) => {
                if let Err(e) = self.on(&event) {
                    broken = self.fail(&stop, e);
                }
            }
        });
        self.progress.finish();
        failpoint::hit("before-results-sync");
        if !broken {
            if let Err(e) = self.results.sync() {
                self.fail(&stop, e);
            }
        }
        self.summary
    }

    fn fail(&mut self, stop: &crate::dispatch::Stop, e: std::io::Error) -> bool {
        let why = format!(
            "cannot write the results or the journal ({e}); what was sent is in {}",
            self.journal.path().display()
        );
        stop.raise(why.clone());
        self.summary.aborted.get_or_insert(why);
        true
    }
}

/// SIGINT and SIGTERM, listened to from before the run starts to its end: a second signal sent
/// right after the first is never missed.
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal, named.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.int) => "SIGINT",
                () = recv(&mut self.term) => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Runs the sending pass until it ends or is interrupted. On a first signal no new row starts and
/// calls in flight get [`GRACE`] to finish (rows cut off then still get their lines); on a second,
/// it returns `true`: stop at once.
async fn drive_interruptibly(
    drive: &mut Drive,
    stop: &crate::dispatch::Stop,
    signals: &mut Signals,
) -> bool {
    {
        let run = drive.run();
        tokio::pin!(run);
        tokio::select! {
            _ = &mut run => return false,
            sig = signals.next() => {
                stop.raise(format!("interrupted by {sig}; rows not started were skipped"));
                eprintln!(
                    "pcbulk: {sig}: no new rows; finishing the calls in flight (up to {} s). \
                     Interrupt again to stop at once.",
                    GRACE.as_secs()
                );
            }
        }
        tokio::select! {
            _ = &mut run => return false,
            _ = tokio::time::sleep(GRACE) => {}
            sig = signals.next() => {
                eprintln!(
                    "pcbulk: {sig} again: stopped at once. Rows that were in flight have no line in \
                     the results file; they may or may not have been applied."
                );
                return true;
            }
        }
    }
    drive
        .cut_short(&format!(
            "interrupted while the call was in flight and not finished within {} s: the change may \
             or may not have been applied; check before sending it again",
            GRACE.as_secs()
        ))
        .await;
    false
}

/// What is about to happen, on stderr, before the first call: the operation and how it was chosen,
/// the target, the rows to send and the results path. A production target is then confirmed.
///
/// A resume counts the rows left: `done` rows to send were finished by the earlier run (`None`:
/// there was none, and the run starts).
fn banner(
    cfg: &ApplyConfig,
    target: &Target,
    scan: &check::Scan,
    to_send: usize,
    done: Option<usize>,
) {
    let (op, how) = scan.planner.operation();
    let to = match target {
        Target::Sandbox => "the embedded sandbox (demo tenant)".to_owned(),
        Target::Service { base_url, .. } => format!("{base_url} ({})", cfg.cloud),
    };
    let invalid = scan.rows - scan.to_send;
    let plan = match &cfg.from_plan {
        Some(p) => format!(
            " as planned in {}",
            crate::term::escape(&p.display().to_string())
        ),
        None => String::new(),
    };
    let verb = if cfg.is_plan() { "read" } else { "send" };
    let resuming = cfg.resume && done.is_some();
    let rows = match done.filter(|_| resuming) {
        Some(done) => format!(
            "{} left to {verb} ({done} finished by the earlier run)",
            crate::text::count(to_send.saturating_sub(done), "row")
        ),
        None => format!("{} to {verb}", crate::text::count(to_send, "row")),
    };
    eprintln!(
        "pcbulk: {} {op} (chosen by {how}) to {to}{plan}\n        {rows}, {invalid} invalid or \
         duplicate; results: {}",
        match (cfg.is_plan(), resuming) {
            (true, _) => "plan (reads only)",
            (false, true) => "resume",
            (false, false) => "apply",
        },
        crate::term::escape(&cfg.input.out.display().to_string())
    );
    for line in scan.planner.column_lines() {
        eprintln!("        {}", crate::term::escape(&line));
    }
    let calls = if cfg.is_plan() { 1 } else { CALLS_PER_ROW };
    let left = to_send.saturating_sub(done.filter(|_| resuming).unwrap_or(0));
    if let Some(estimate) = estimate(left, calls, cfg.settings.rate) {
        eprintln!("        {estimate}");
    }
}

/// Calls a row makes when it is applied: every operation reads the target, then writes it.
const CALLS_PER_ROW: usize = 2;

/// Runs shorter than this get no estimate: nobody plans around them.
const WORTH_ESTIMATING: std::time::Duration = std::time::Duration::from_secs(600);

/// How long `rows` rows of `calls` calls each take at the `--rate` ceiling, and the flag that
/// raises it, when that is over ten minutes: a million rows at the default rate take days, and
/// the admin should know before the night begins, not from the progress lines.
fn estimate(rows: usize, calls: usize, rate: f64) -> Option<String> {
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let secs = rows as f64 * calls as f64 / rate;
    if secs <= WORTH_ESTIMATING.as_secs_f64() {
        return None;
    }
    let took = match secs / 3600.0 {
        h if h < 2.0 => format!("{:.0} min", secs / 60.0),
        h if h < 72.0 => format!("{h:.0} h"),
        h => format!("{:.1} days", h / 24.0),
    };
    Some(format!(
        "at --rate {rate} ({calls} call{} a row) this takes about {took}; raise --rate if the \
         service allows more",
        if calls == 1 { "" } else { "s" }
    ))
}

/// The rows an earlier run finished that a resume does not send again (invalid rows are not
/// among the rows to send, so not counted).
fn finished_before(replay: &journal::Replay, retry_failed: bool) -> usize {
    let rows: std::collections::BTreeSet<usize> = replay
        .outcomes
        .keys()
        .chain(replay.answered_ok.keys())
        .copied()
        .collect();
    rows.into_iter()
        .filter_map(|row| replay.finished(row, 0, retry_failed))
        .filter(|o| o.status != crate::results::Status::Invalid)
        .count()
}

/// Asks before changing a production target (neither the sandbox nor loopback): yes on a
/// terminal, or `--yes`; with neither, nothing is sent (exit 2).
fn confirm(
    cfg: &ApplyConfig,
    target: &Target,
    scan: &check::Scan,
    to_send: usize,
) -> Result<(), Error> {
    use std::io::{IsTerminal, Write};
    let Target::Service { base_url, .. } = target else {
        return Ok(());
    };
    if cfg.yes || crate::target::is_loopback(base_url) || to_send == 0 {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!(
            "{base_url} is a production target and there is no terminal to confirm on: add --yes \
             to go ahead (nothing was sent)"
        )));
    }
    let ops: Vec<&'static crate::ops::OpSpec> = scan
        .operations
        .iter()
        .filter_map(|name| crate::ops::by_name(name))
        .collect();
    eprint!(
        "{} Type yes to go on: ",
        question(&ops, &scan.planner.columns_read(), base_url, to_send)
    );
    let _ = std::io::stderr().flush();
    let answer = read_answer()?;
    if confirmed(&answer) {
        Ok(())
    } else {
        Err(Error::usage(
            "not confirmed (only yes goes on): nothing was sent",
        ))
    }
}

/// Only `yes` goes on: a production change is not made on a stray `y` or Enter.
fn confirmed(answer: &str) -> bool {
    answer.trim().eq_ignore_ascii_case("yes")
}

/// What the prompt asks, in words: what changes where. `ops` are the operations of the rows to
/// send, `fields` the columns the file sets (known when one operation is applied).
fn question(
    ops: &[&crate::ops::OpSpec],
    fields: &[&str],
    base_url: &str,
    to_send: usize,
) -> String {
    let wide = ops.iter().find(|op| op.partner_wide);
    let what = match ops {
        [op] if op.partner_wide => {
            return format!("Change {} in {base_url}?", partner_wide_words(op, fields))
        }
        [op] => crate::text::count(to_send, &op.name.replace('-', " ")),
        _ => format!(
            "{} ({})",
            crate::text::count(to_send, "row"),
            ops.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
        ),
    };
    match wide {
        Some(op) => format!(
            "Change {what} in {base_url}, among them {}?",
            partner_wide_words(op, &[])
        ),
        None => format!("Change {what} in {base_url}?"),
    }
}

/// "the partner's support e-mail and telephone for every customer".
fn partner_wide_words(op: &crate::ops::OpSpec, fields: &[&str]) -> String {
    let thing = op.name.replace('-', " ");
    let words: Vec<&str> = fields
        .iter()
        .map(|f| match *f {
            "email" => "e-mail",
            other => other,
        })
        .collect();
    let named = match words.as_slice() {
        [] => thing,
        [one] => format!("{} {one}", thing.trim_end_matches(" profile")),
        [init @ .., last] => format!(
            "{} {} and {last}",
            thing.trim_end_matches(" profile"),
            init.join(", ")
        ),
    };
    format!("the partner's {named} for every customer")
}

/// The line typed at the prompt, read on a thread of its own so that Ctrl-C, which does not end
/// a blocked read, ends the wait (nothing sent).
fn read_answer() -> Result<String, Error> {
    use std::io::{BufRead, Read};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let read = std::io::stdin()
            .lock()
            .take(64)
            .read_line(&mut answer)
            .map(|_| answer);
        let _ = tx.send(read);
    });
    loop {
        crate::interrupt::check()?;
        match rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(read) => return read.map_err(|e| Error::io("cannot read the answer", e)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::usage("not confirmed: nothing was sent"))
            }
        }
    }
}

/// Looks at the run's records (the results file and the journal) before anything is read or sent,
/// so a path pcbulk must not write is refused at once. Each is looked at again as it is opened.
fn refuse_unsafe_records(
    cfg: &crate::config::InputConfig,
    journal_path: &std::path::Path,
) -> Result<(), Error> {
    crate::results::refuse_unsafe(&cfg.out)?;
    if crate::fsafe::same_file(journal_path, &cfg.input) {
        return Err(Error::usage(format!(
            "the journal {} would be the input file; give --out another path",
            journal_path.display()
        )));
    }
    crate::fsafe::look(journal_path, journal::FIX)
        .map(drop)
        .map_err(|e| journal::cannot_write(journal_path, e))
}

/// Reads the plan `--from-plan` names (its journal holds what each row read and its status) and
/// checks it was made from this very input and target, and that its input cells are still the
/// input's (a value edited in review is refused, not silently replaced by the input's).
fn read_plan(
    plan: &std::path::Path,
    job: &journal::Job,
    scan: &check::Scan,
    input: &crate::config::InputConfig,
    replay: Option<journal::Replay>,
) -> Result<PlanRows, Error> {
    // The file a person reviewed first: a missing plan is named as the plan, not as its journal.
    let reviewed = reviewed_rows(plan, &scan.planner)?;
    let replay = match replay {
        Some(r) => r,
        None => read_plan_journal(plan)?,
    };
    fits_run(plan, &replay, job)?;
    hold_to_input(plan, &reviewed, scan, input)?;
    let status = replay
        .outcomes
        .iter()
        .map(|(row, (_, o))| (*row, o.status))
        .collect();
    let before = replay
        .before
        .iter()
        .map(|(row, b)| {
            let expected = crate::dispatch::Expected {
                values: b.values.clone(),
                extra: b.extra.clone(),
            };
            (*row, expected)
        })
        .collect();
    Ok(PlanRows {
        status,
        before,
        reviewed: reviewed.planned,
    })
}

/// Refuses a plan that is not a finished plan of this very input, target, sheet and mapping.
fn fits_run(
    plan: &std::path::Path,
    replay: &journal::Replay,
    job: &journal::Job,
) -> Result<(), Error> {
    let Some(made) = replay.job.as_ref().filter(|_| replay.done) else {
        return Err(Error::usage(format!(
            "{} is not a finished plan: make a new one with pcbulk plan",
            plan.display()
        )));
    };
    if !made.plan {
        return Err(Error::usage(format!(
            "{} is not a plan: it holds the results of an apply. Give the file `pcbulk plan` wrote \
             (<input stem>.plan.csv); nothing was sent",
            plan.display()
        )));
    }
    let differs = match (&made.identity, &job.identity) {
        (Some(then), Some(now)) => plan_differs(then, now, &job.input),
        _ => Some(
            "it was made by an earlier version of pcbulk, which did not record all that a plan \
             is checked against"
                .to_owned(),
        ),
    };
    match differs {
        Some(why) => Err(Error::usage(format!(
            "{} does not fit this run: {why}. Make a new plan for this run and review it; nothing \
             was sent",
            plan.display()
        ))),
        None => Ok(()),
    }
}

/// The plan's journal, read before the input is (for its sheet and mapping), when the plan itself
/// is there: a missing plan is named as the plan, not as its journal (see [`read_plan`]).
fn early_plan_journal(plan: &std::path::Path) -> Result<Option<journal::Replay>, Error> {
    match std::fs::metadata(plan) {
        Ok(m) if m.is_file() => read_plan_journal(plan).map(Some),
        _ => Ok(None),
    }
}

/// What an earlier run or a plan was made with, as its journal records it.
fn made_as(replay: Option<&journal::Replay>) -> Option<&journal::Identity> {
    replay?.job.as_ref()?.identity.as_ref()
}

/// Takes the sheet and the `--map` flags an earlier run or plan (`then`) read with, where the
/// command line gives none: a plan is applied, and a run finished, as it was made. Given ones are
/// kept; one that differs is refused with both named (see `plan_differs`, `journal::check_resume`).
/// Whether a mapping was taken.
fn adopt(input: &mut crate::config::InputConfig, then: &journal::Identity) -> Result<bool, Error> {
    if input.read.sheet.is_none() {
        input.read.sheet.clone_from(&then.sheet);
    }
    let take = input.mapping.is_empty() && !then.mapping.is_empty();
    if take {
        let known = crate::ops::all_columns();
        input.mapping = (then.mapping.iter())
            .map(|m| crate::input::header::ColumnMap::parse(m, &known))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::usage(format!("the recorded mapping cannot be read: {e}")))?;
    }
    Ok(take)
}

/// A plan made with `--sheet` and its default path (`<stem>.<sheet>.plan.csv`) is applied to that
/// sheet's default results path (`<stem>.<sheet>.results.csv`), as `apply --sheet` would be, when
/// neither `--sheet` nor `--out` is given.
fn adopt_plan_s_results_path(
    input: &mut crate::config::InputConfig,
    plan: &std::path::Path,
    then: &journal::Identity,
) {
    use crate::config::default_path;
    let Some(sheet) = then.sheet.as_deref().filter(|_| input.read.sheet.is_none()) else {
        return;
    };
    let made_with_sheet = plan == default_path(&input.input, Some(sheet), "plan");
    if made_with_sheet && input.out == default_path(&input.input, None, "results") {
        input.out = default_path(&input.input, Some(sheet), "results");
    }
}

/// The journal `pcbulk plan` wrote beside the plan: what each row read, and its status.
fn read_plan_journal(plan: &std::path::Path) -> Result<journal::Replay, Error> {
    let path = journal::path_for(plan);
    journal::read(&path).map_err(|e| match e {
        journal::ReadError::Io(e) => {
            let what = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "pcbulk plan writes it beside the plan: move or copy the plan together with \
                     its .journal file, or make the plan again; nothing was sent"
                }
                _ => "it is written beside the plan",
            };
            Error::io(
                format!("cannot read the plan's journal {} ({what})", path.display()),
                e,
            )
        }
        journal::ReadError::Misfit(m) => Error::Usage(format!(
            "the plan's journal {} line {}: {}: make a new plan",
            path.display(),
            m.line,
            m.what
        )),
    })
}

/// How a plan's identity (`then`) is not this run's (`now`), for a refusal.
fn plan_differs(then: &journal::Identity, now: &journal::Identity, input: &str) -> Option<String> {
    use journal::Part;
    Some(match then.first_difference(now)? {
        Part::Target => format!("it was made against {}, not {}", then.target, now.target),
        Part::Operation => format!("it plans {}, not {}", then.operation, now.operation),
        Part::Sheet => format!("it was made from {}, not {}", then.source(), now.source()),
        Part::Mapping => format!(
            "it was made with {}, not {}",
            journal::mapping_words(&then.mapping),
            journal::mapping_words(&now.mapping)
        ),
        Part::Rows => format!(
            "it was made from other rows than {input} holds now (a value was changed, or rows \
             were added, taken out or moved)"
        ),
    })
}

/// A plan's CSV as the reviewer left it: the rows it still marks `planned`, and what each of its rows
/// holds in the input's cells, to be held to the input's.
struct Reviewed {
    planned: std::collections::BTreeSet<usize>,
    /// The plan's column of each column the operation reads: (the input's index, the plan's).
    columns: Vec<(usize, usize)>,
    /// Each plan row's cells in those columns, as a digest (a million rows' cells are not kept),
    /// sorted by row.
    rows: Vec<PlanRow>,
}

/// One line of a plan's CSV that names a row.
struct PlanRow {
    row: usize,
    /// Its place among the plan's records, to read it again when it differs.
    record: usize,
    line: u64,
    digest: [u8; 16],
}

/// A cell as compared between a plan and its input: trimmed (the plan echoes trimmed values), and
/// without the `'` the plan's writer puts before a formula character (a cell the input itself
/// starts with `'=` reads the same: a spreadsheet shows both as the same text).
fn as_compared(cell: &str) -> &str {
    crate::csvfile::unneutralize(crate::input::row::trim(cell))
}

/// What a row's cells in the operation's columns come to, compared as [`as_compared`] says.
fn cells_digest<'a>(cells: impl Iterator<Item = &'a str>) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in cells {
        let c = as_compared(c);
        h.update((c.len() as u64).to_le_bytes());
        h.update(c.as_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// Where each column the operation reads is in the plan's header (its name as the results header
/// writes it); a column missing from the plan is named.
fn plan_columns(
    header: &[String],
    planner: &crate::planner::Planner,
) -> Result<Vec<(usize, usize)>, String> {
    let names = crate::results::header(&planner.headers);
    let plan: Vec<&str> = header
        .iter()
        .map(|h| as_compared(h.trim_start_matches('\u{feff}')))
        .collect();
    planner
        .held_columns()
        .map(|i| {
            let want = as_compared(&names[i]);
            plan.iter()
                .position(|h| *h == want)
                .map(|j| (i, j))
                .ok_or_else(|| names[i].clone())
        })
        .collect()
}

/// Opens a plan's CSV for reading (through the one CSV reader: its BOM passed over, in the input's
/// delimiter), refusing what is not a regular file.
fn open_plan(plan: &std::path::Path) -> Result<crate::csvfile::Reader<std::fs::File>, Error> {
    let cannot = |e| {
        Error::io(
            format!(
                "cannot read the plan {} (make one with pcbulk plan)",
                plan.display()
            ),
            e,
        )
    };
    let file = std::fs::File::open(plan).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(Error::usage(format!(
            "the plan {} is not a regular file; give the file pcbulk plan wrote",
            plan.display()
        )));
    }
    // Found from its header, not taken from the input's: a plan re-saved by a spreadsheet in
    // another locale has the locale's delimiter.
    let delimiter = |head: &[u8]| {
        let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
        Ok(crate::input::detect_delimiter(&String::from_utf8_lossy(
            line,
        )))
    };
    crate::csvfile::Reader::new(file, delimiter).map_err(cannot)
}

/// The next record of a plan as text, with its line; `None` at the end.
fn plan_record(
    reader: &mut crate::csvfile::Reader<std::fs::File>,
    plan: &std::path::Path,
) -> Result<Option<(u64, Vec<String>)>, Error> {
    let bad = |what: String| not_a_plan(plan, what);
    let Some(record) = reader
        .next_record()
        .map_err(|e| bad(format!("cannot be read ({e})")))?
    else {
        return Ok(None);
    };
    let line = record.line;
    let cells = record
        .texts()
        .map_err(|e| bad(format!("line {line}: cannot be read as UTF-8 text ({e})")))?;
    Ok(Some((line, cells.into_iter().map(str::to_owned).collect())))
}

/// The error for a plan pcbulk cannot read as a plan.
fn not_a_plan(plan: &std::path::Path, what: String) -> Error {
    Error::usage(format!(
        "{} {what}: it is not a plan pcbulk wrote (or it was saved in another format); make a new \
         plan with pcbulk plan; nothing was sent",
        plan.display()
    ))
}

/// The rows a plan's CSV marks `planned`, as the reviewer left it: a row taken out of the file, or
/// whose status was changed, is not applied. (The journal beside it holds what the plan read; the
/// CSV is what a person reviewed.) Also what each row holds in the operation's columns, which
/// must still be the input's: see [`hold_to_input`].
fn reviewed_rows(
    plan: &std::path::Path,
    planner: &crate::planner::Planner,
) -> Result<Reviewed, Error> {
    let mut reader = open_plan(plan)?;
    let bad = |what: String| not_a_plan(plan, what);
    let header = plan_record(&mut reader, plan)?.map_or_else(Vec::new, |(_, h)| h);
    let column = |name: &str| {
        header
            .iter()
            .rposition(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| bad(format!("has no `{name}` column")))
    };
    let (row_at, status_at) = (column("row")?, column("status")?);
    let columns = plan_columns(&header, planner).map_err(|name| {
        Error::usage(format!(
            "{} has no `{name}` column, which the input has and the operation reads: the plan was \
             changed in review. Edit the input and plan again; nothing was sent",
            plan.display()
        ))
    })?;
    let (mut planned, mut rows) = (std::collections::BTreeSet::new(), Vec::new());
    let mut n = 0;
    while let Some((line, record)) = plan_record(&mut reader, plan)? {
        let cell = |i: usize| record.get(i).map_or("", String::as_str);
        let row = cell(row_at).trim().parse::<usize>().ok();
        let is_planned = cell(status_at).trim() == "planned";
        let row = match (row, is_planned) {
            (Some(row), _) => row,
            // A line that names no row (a reviewer's note) is nothing to apply or compare.
            (None, false) => {
                n += 1;
                continue;
            }
            (None, true) => return Err(bad(format!("line {line}: its `row` is not a row number"))),
        };
        if is_planned {
            planned.insert(row);
        }
        rows.push(PlanRow {
            row,
            record: n,
            line,
            digest: cells_digest(columns.iter().map(|(_, j)| cell(*j))),
        });
        n += 1;
    }
    rows.sort_by_key(|r| r.row);
    Ok(Reviewed {
        planned,
        columns,
        rows,
    })
}

/// Refuses a plan whose cells in the operation's columns are not the input's: apply sends the
/// input's values, so a value edited in the plan in review would be silently replaced. The input
/// is read again (through the file the checking pass read); rows taken out of the plan are fine.
fn hold_to_input(
    plan: &std::path::Path,
    reviewed: &Reviewed,
    scan: &check::Scan,
    input: &crate::config::InputConfig,
) -> Result<(), Error> {
    use std::io::Seek;
    let io_err = |cause| crate::input::InputError::Io {
        path: input.input.display().to_string(),
        cause,
    };
    let mut file = scan.file.try_clone().map_err(io_err)?;
    file.seek(std::io::SeekFrom::Start(0)).map_err(io_err)?;
    let mut source =
        crate::pipeline::source::Source::from_file(input, file, true, Some(scan.charset))?;
    source.header(&input.input)?;
    let mut planned = reviewed.rows.iter().peekable();
    let mut next = 1;
    loop {
        let batch = source.batch(next)?;
        let Some(last) = batch.last() else { break };
        next = last.row + 1;
        for raw in &batch {
            let cells: Vec<&str> = raw.cells().collect();
            let own = |i: usize| cells.get(i).copied().unwrap_or("");
            while let Some(p) = planned.next_if(|p| p.row <= raw.row) {
                let digest = cells_digest(reviewed.columns.iter().map(|(i, _)| own(*i)));
                if p.row < raw.row {
                    return Err(no_such_row(plan, p, &input.input));
                }
                if p.digest != digest {
                    return Err(edited(plan, reviewed, p, &own, scan));
                }
            }
        }
    }
    if let Some(p) = planned.next() {
        return Err(no_such_row(plan, p, &input.input));
    }
    if source.sha256() != scan.sha256 {
        return Err(Error::usage(format!(
            "{} changed while it was being read; nothing was sent: run it again once it is saved",
            input.input.display()
        )));
    }
    Ok(())
}

/// The refusal of a plan line whose row the input does not have.
fn no_such_row(plan: &std::path::Path, p: &PlanRow, input: &std::path::Path) -> Error {
    Error::usage(format!(
        "{} line {} names row {}, which {} does not have: the plan was changed in review. Edit \
         the input and plan again; nothing was sent",
        plan.display(),
        p.line,
        p.row,
        input.display()
    ))
}

/// The refusal of a plan row edited in review, naming the first column that differs (the plan's
/// line is read again: only its digest was kept).
fn edited<'a>(
    plan: &std::path::Path,
    reviewed: &Reviewed,
    p: &PlanRow,
    input_cell: &dyn Fn(usize) -> &'a str,
    scan: &check::Scan,
) -> Error {
    let record = open_plan(plan).ok().and_then(|mut r| {
        // The header, then the records before this one.
        (0..=p.record).try_for_each(|_| plan_record(&mut r, plan).ok()?.map(drop))?;
        plan_record(&mut r, plan).ok()?.map(|(_, cells)| cells)
    });
    let names = crate::results::header(&scan.planner.headers);
    let differs = reviewed.columns.iter().find_map(|(i, j)| {
        let then = record.as_ref()?.get(*j).map_or("", String::as_str);
        let now = input_cell(*i);
        (as_compared(then) != as_compared(now)).then(|| (&names[*i], then, now))
    });
    let what = match differs {
        Some((column, then, now)) => format!(
            "column `{column}` holds \"{}\" where the input holds \"{}\"",
            shown(as_compared(then)),
            shown(as_compared(now))
        ),
        None => "a value differs from the input's".to_owned(),
    };
    Error::usage(format!(
        "{} row {} (line {}): {what}. The plan's input cells were edited in review, and apply \
         sends the input's values, not the plan's: edit the input and plan again; nothing was sent",
        plan.display(),
        p.row,
        p.line
    ))
}

/// A cell's value within a message: escaped, and cut short past 80 characters.
fn shown(cell: &str) -> String {
    let cut: String = cell.chars().take(80).collect();
    let more = if cut.len() < cell.len() { "…" } else { "" };
    format!("{}{more}", crate::term::escape(&cut))
}

/// What `--resume` does with the journal at the results path (SPEC: Resume).
enum Resume {
    /// Continue this input's unfinished run.
    Continue(Box<journal::Replay>),
    /// Start the run: the journal there is a finished run of another input (moved aside).
    Start,
    /// Send nothing: this input's run finished; what to say about it.
    Finished(String),
}

/// Decides what a resume does with the journal it read (see [`journal::check_resume`]). A finished
/// run is continued only by `--retry-failed`, and only while it has failed rows to re-attempt.
fn resume_from(
    cfg: &ApplyConfig,
    path: &std::path::Path,
    replay: journal::Replay,
    job: &journal::Job,
    misfit: Option<journal::Misfit>,
) -> Result<Resume, Error> {
    use crate::results::Status;
    Ok(match journal::check_resume(path, &replay, job, misfit)? {
        journal::ResumeFrom::Unfinished => Resume::Continue(Box::new(replay)),
        journal::ResumeFrom::Another => Resume::Start,
        journal::ResumeFrom::Finished => {
            let failed = replay
                .outcomes
                .values()
                .any(|(_, o)| o.status == Status::Failed);
            if cfg.retry_failed && failed {
                return Ok(Resume::Continue(Box::new(replay)));
            }
            let mut counts = std::collections::BTreeMap::new();
            for (_, o) in replay.outcomes.values() {
                *counts.entry(o.status).or_insert(0usize) += 1;
            }
            let did: Vec<String> = Status::ALL
                .iter()
                .filter_map(|s| counts.get(s).map(|n| format!("{n} {s}")))
                .collect();
            let retry = match failed {
                true => "; give --retry-failed to re-attempt the failed rows",
                false => "",
            };
            Resume::Finished(format!(
                "its run finished ({}; its results: {}){retry}",
                if did.is_empty() {
                    "no rows".to_owned()
                } else {
                    did.join(", ")
                },
                cfg.input.out.display()
            ))
        }
    })
}

/// The end of a resume whose run had already finished: nothing sent, exit 0, outcome
/// `already_finished` (SPEC: Resume), so the same cron line can run after the job is done.
fn already_finished(
    cfg: &ApplyConfig,
    job: &journal::Job,
    journal_path: &std::path::Path,
    said: String,
) -> Summary {
    eprintln!(
        "pcbulk: {} is already applied to {}: {}. Nothing was sent",
        crate::term::escape(&job.input),
        crate::term::escape(&job.target),
        crate::term::escape(&said)
    );
    let mut summary = Summary::new(cfg.input.out.clone());
    summary.outcome = Some("already_finished");
    summary.about.operation = job.identity.as_ref().map(|i| i.operation.clone());
    summary.about.target = Some(job.target.clone());
    summary.about.input = Some(cfg.input.input.clone());
    summary.about.journal = Some(journal_path.to_owned());
    summary.about.finished = Some(std::time::SystemTime::now());
    summary
}

/// The run's job: what it applies (its identity, from the checking pass), where, and from what.
fn job_of(cfg: &ApplyConfig, scan: &check::Scan, target: &Target, input: String) -> journal::Job {
    let target = match target {
        Target::Sandbox => "sandbox".to_owned(),
        Target::Service { base_url, .. } => base_url.clone(),
    };
    // A file whose operation column names one operation for every row applies that operation, as
    // the same rows without the column do.
    let operation = match scan.operations.as_slice() {
        [one] => (*one).to_owned(),
        _ => scan.planner.identity_operation().to_owned(),
    };
    let identity = journal::Identity {
        operation,
        target: crate::target::target_key(&target),
        sheet: scan.sheet.clone(),
        mapping: scan.planner.mapping(),
        rows_sha256: scan.rows_sha256.clone(),
    };
    journal::Job {
        input_sha256: scan.sha256.clone(),
        identity: Some(identity),
        input,
        operation: cfg.input.operation.map(|o| o.name.to_owned()),
        target,
        plan: cfg.is_plan(),
        from_plan: cfg.from_plan.as_ref().map(|p| p.display().to_string()),
    }
}

/// `pcbulk apply`, in its phases: read and check the file, refuse what must not run, confirm,
/// record the start, send, finish. Without a target it is `validate`.
pub async fn apply(mut cfg: ApplyConfig, output: &Output) -> Result<Summary, Error> {
    let Some(target) = cfg.target.take() else {
        let show_progress = output.progress != crate::report::progress::Mode::Quiet;
        return super::validate::check_file(&cfg.input, show_progress);
    };
    let started = (Instant::now(), std::time::SystemTime::now());
    let mut read = read_and_check(&mut cfg)?;
    let sandbox = matches!(target, Target::Sandbox);
    let job = job_of(&cfg, &read.scan, &target, read.input_name.clone());
    let (earlier, plan) = match refuse(&cfg, &mut read, &job, sandbox)? {
        Refusal::None { earlier, plan } => (earlier, plan),
        Refusal::AlreadyFinished(summary) => return Ok(summary),
    };
    confirm_run(&cfg, &target, &read.scan, plan.as_ref(), earlier.as_ref())?;
    let mut signals = Signals::listen();
    crate::interrupt::sending();
    let begun = record_start(&cfg, &job, sandbox, earlier.is_none())?;
    let super::Reached {
        sandbox: running,
        base_url,
        credentials,
    } = super::reach(target).await?;
    let run = Run {
        job,
        earlier,
        plan,
        begun,
        started,
    };
    let sent = send(
        &cfg,
        output,
        read,
        run,
        (&base_url, credentials),
        &mut signals,
    )
    .await?;
    finish(&cfg, sent, sandbox, running).await
}

/// The file read and checked (phase 1), with what a resume or a plan brings to the run.
struct Read {
    scan: check::Scan,
    journal_path: std::path::PathBuf,
    input_name: String,
    earlier: Option<journal::Replay>,
    plan_journal: Option<journal::Replay>,
    /// One process at a time per results file, for the whole run.
    lock: crate::runs::records::Lock,
}

/// Phase 1: adopts a plan's or an earlier run's sheet and mapping, takes the results file's lock,
/// reads a resume's journal, and checks every row against it.
fn read_and_check(cfg: &mut ApplyConfig) -> Result<Read, Error> {
    // A plan is applied as it was made: its sheet and mapping, unless given (and then held to it).
    let plan_journal = match &cfg.from_plan {
        Some(p) => early_plan_journal(p)?,
        None => None,
    };
    let mut mapping_from = None;
    if let (Some(plan), Some(then)) = (&cfg.from_plan, made_as(plan_journal.as_ref())) {
        adopt_plan_s_results_path(&mut cfg.input, plan, then);
        if adopt(&mut cfg.input, then)? {
            mapping_from = Some(format!("the plan {}", plan.display()));
        }
    }
    let journal_path = journal::path_for(&cfg.input.out);
    refuse_unsafe_records(&cfg.input, &journal_path)?;
    let lock = crate::runs::records::lock(&cfg.input.out)?;
    // A resume reads the earlier journal first: the checking pass checks it against every row.
    let input_name = cfg.input.input.display().to_string();
    let earlier = match cfg.resume {
        true => journal::read_for_resume(&journal_path, &input_name)?,
        false => None,
    };
    // A resume finishes the run as it was started: its sheet and mapping, unless given.
    if let Some(then) = made_as(earlier.as_ref()) {
        if adopt(&mut cfg.input, then)? {
            mapping_from = Some(format!("the run in {}", journal_path.display()));
        }
    }
    let scan = check_rows(cfg, earlier.as_ref(), mapping_from)?;
    Ok(Read {
        scan,
        journal_path,
        input_name,
        earlier,
        plan_journal,
        lock,
    })
}

/// The checking pass over every row, and the refusals it leads to: a partner-wide profile in
/// more than one row, an operation the China cloud does not offer.
fn check_rows(
    cfg: &ApplyConfig,
    earlier: Option<&journal::Replay>,
    mapping_from: Option<String>,
) -> Result<check::Scan, Error> {
    let scan = check::scan(&cfg.input, earlier).map_err(|e| match (e, &mapping_from) {
        (Error::Usage(m), Some(from)) => Error::Usage(format!(
            "{m} (no --map was given, so the mapping of {from} was taken: {})",
            (cfg.input.mapping.iter())
                .map(|m| crate::input::header::ColumnMap::flag(&m.header, m.column))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        (e, _) => e,
    })?;
    scan.planner.partner_wide_rows(scan.rows).map_err(|e| {
        Error::Usage(format!(
            "{} cannot be run: {}",
            cfg.input.input.display(),
            e.0
        ))
    })?;
    for w in scan.planner.warnings() {
        eprintln!("pcbulk: warning: {}", crate::term::escape(&w));
    }
    if let Some(op) = scan
        .operations
        .iter()
        .filter_map(|name| crate::ops::by_name(name))
        .find(|op| cfg.china && !op.in_china)
    {
        return Err(Error::usage(format!(
            "{} updates are not offered in the China cloud (21Vianet); nothing was sent",
            op.name
        )));
    }
    Ok(scan)
}

/// What phase 2 leaves of the run (made once per run: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Refusal {
    /// Nothing refuses it: the run resumed (if any) and the plan it is held to (if any).
    None {
        earlier: Option<journal::Replay>,
        plan: Option<PlanRows>,
    },
    /// This run, or this content on this target, already finished: its summary says so.
    AlreadyFinished(Summary),
}

/// Phase 2: everything that can refuse the run does so before anything is recorded (the list of
/// runs, the journal, the records moved aside) and before the banner's confirmation is asked
/// for: a refusal never changes what pcbulk knows of earlier runs.
fn refuse(
    cfg: &ApplyConfig,
    read: &mut Read,
    job: &journal::Job,
    sandbox: bool,
) -> Result<Refusal, Error> {
    let path = &read.journal_path;
    let earlier = match read.earlier.take() {
        Some(replay) => match resume_from(cfg, path, replay, job, read.scan.misfit.take())? {
            Resume::Continue(replay) => Some(*replay),
            Resume::Start => None,
            Resume::Finished(said) => {
                return Ok(Refusal::AlreadyFinished(already_finished(
                    cfg, job, path, said,
                )))
            }
        },
        None => None,
    };
    let plan = match &cfg.from_plan {
        Some(p) => Some(read_plan(
            p,
            job,
            &read.scan,
            &cfg.input,
            read.plan_journal.take(),
        )?),
        None => None,
    };
    if earlier.is_none() {
        // A plan may be made again and again, and `--sandbox` starts a fresh demo tenant each
        // time: neither can apply anything twice. Their earlier files are still moved aside.
        let again = cfg.force || cfg.is_plan() || sandbox;
        if !again {
            if let Some(said) =
                crate::runs::registry::refuse_repeat(job, &cfg.input.out, cfg.resume)?
            {
                return Ok(Refusal::AlreadyFinished(already_finished(
                    cfg, job, path, said,
                )));
            }
        }
        crate::runs::records::check(&cfg.input.out, job, again)?;
    }
    Ok(Refusal::None { earlier, plan })
}

/// Phase 3: the banner, and the confirmation a production target asks for. The last moment a
/// signal ends the run with nothing recorded; from here the sending pass answers it (rows not
/// started are skipped, the run is resumable).
fn confirm_run(
    cfg: &ApplyConfig,
    target: &Target,
    scan: &check::Scan,
    plan: Option<&PlanRows>,
    earlier: Option<&journal::Replay>,
) -> Result<(), Error> {
    // With a plan, the rows to send are those it still marks planned (at most).
    let to_send = plan.map_or(scan.to_send, |p| {
        p.reviewed
            .iter()
            .filter(|r| p.status.get(r) == Some(&crate::results::Status::Planned))
            .count()
            .min(scan.to_send)
    });
    // A --resume with no earlier run starts one: its banner says so, as a plain apply's does.
    let done = earlier.map(|r| finished_before(r, cfg.retry_failed));
    banner(cfg, target, scan, to_send, done);
    if !cfg.is_plan() {
        confirm(cfg, target, scan, to_send)?;
    }
    crate::interrupt::check()
}

/// Phase 4: [registry hook] the list of runs gets this run's started line, checked again under
/// the list's lock (of two applies of one file started together, one runs). A new run not forced
/// is checked; a resume or a forced run only adds its line. Plans and sandbox runs are not listed.
fn record_start(
    cfg: &ApplyConfig,
    job: &journal::Job,
    sandbox: bool,
    fresh: bool,
) -> Result<Option<crate::runs::registry::Begun>, Error> {
    match cfg.is_plan() || sandbox {
        true => Ok(None),
        false => crate::runs::registry::begin(job, &cfg.input.out, !cfg.force && fresh),
    }
}

/// What the sending phase takes from the phases before it.
struct Run {
    job: journal::Job,
    earlier: Option<journal::Replay>,
    plan: Option<PlanRows>,
    begun: Option<crate::runs::registry::Begun>,
    started: (Instant, std::time::SystemTime),
}

/// Phase 5: opens the journal and the results file, sends every row through the dispatcher and
/// waits for the results writer's summary. A second Ctrl-C ends the process here, its rows'
/// outcomes synced to the journal.
async fn send(
    cfg: &ApplyConfig,
    output: &Output,
    read: Read,
    mut run: Run,
    target: (&str, crate::api::auth::Credentials),
    signals: &mut Signals,
) -> Result<Sent, Error> {
    let Read {
        scan,
        journal_path,
        lock,
        ..
    } = read;
    let opened = open_run(cfg, output, &scan, &mut run, &journal_path, target)?;
    let Opened {
        journal,
        replay,
        dispatcher,
        events,
        listener,
    } = opened;
    events.emit(Event::RunStarted {
        rows: scan.rows,
        to_send: scan.to_send,
    });
    let to_send = scan.to_send;
    let mut reading = Reading::from_scan(
        cfg.input.clone(),
        scan,
        replay.map(|r| (r, cfg.retry_failed)),
    );
    reading.plan = run.plan.take();
    reading.force = cfg.force;
    let drive = Drive::start(reading, Arc::clone(&dispatcher), events.clone(), to_send);
    let at_once = drive_rows(drive, &dispatcher, run.begun.take(), signals).await;
    events.emit(Event::RunFinished {
        aborted: dispatcher.stop.reason(),
    });
    drop(events);
    drop(dispatcher);
    let summary = summary_of(listener, run.started).await?;
    if at_once {
        // The rows' outcomes are in the journal's buffer: on disk before the process goes.
        let _ = journal.sync();
        output.finish(&summary, exit::ABORTED);
        std::process::exit(exit::ABORTED.into());
    }
    Ok(Sent {
        summary,
        journal,
        job: run.job,
        journal_path,
        lock,
    })
}

/// What opening a run's records gives the sending phase.
struct Opened {
    journal: Arc<Journal>,
    /// What the journal held of an earlier run, for the rows to go on from.
    replay: Option<journal::Replay>,
    dispatcher: Arc<Dispatcher>,
    events: Emitter,
    /// The results writer, listening to the run's events until they end.
    listener: std::thread::JoinHandle<Summary>,
}

/// Moves a finished run's records aside (a fresh run), opens the journal, the dispatcher and the
/// results file, and starts the results writer. A fresh run's journal is removed again when the
/// results file cannot be opened: nothing was sent, and it must not stand in the way of the next.
fn open_run(
    cfg: &ApplyConfig,
    output: &Output,
    scan: &check::Scan,
    run: &mut Run,
    journal_path: &std::path::Path,
    (base_url, credentials): (&str, crate::api::auth::Credentials),
) -> Result<Opened, Error> {
    let fresh = run.earlier.is_none();
    // Rows that finish without a call: invalid ones, and those the earlier run finished.
    let unpaced = scan.rows - scan.to_send
        + (run.earlier.as_ref()).map_or(0, |r| finished_before(r, cfg.retry_failed));
    // Before any record is touched: a client that cannot be made (an SSL_CERT_FILE that holds no
    // certificate) is a usage error that must leave no journal of a run that never began.
    let transport = HttpTransport::new(base_url, cfg.timeout)
        .map_err(|e| Error::usage(format!("cannot set up HTTP: {e:#}")))?;
    if fresh {
        set_aside(&cfg.input.out)?;
    }
    let (journal, replay) =
        journal::open_for_run(journal_path, &run.job, run.earlier.take(), cfg.retry_failed)?;
    let journal = Arc::new(journal);
    let (events, received) = Emitter::channel();
    let dispatcher = Arc::new(
        Dispatcher::new(
            Arc::new(transport),
            Arc::new(Tokens::new(credentials)),
            cfg.settings.clone(),
            Some(Arc::clone(&journal)),
        )
        .with_events(events.clone()),
    );
    let opened = open_results(
        cfg,
        (output, unpaced as u64),
        scan,
        (&run.job, run.started.1),
        &journal,
        journal_path,
    );
    let record = opened.inspect_err(|_| {
        if fresh {
            let _ = std::fs::remove_file(journal_path);
        }
    })?;
    let stop = Arc::clone(&dispatcher.stop);
    let listener = std::thread::spawn(move || record.listen(received, stop));
    Ok(Opened {
        journal,
        replay,
        dispatcher,
        events,
        listener,
    })
}

/// Moves the records of an earlier run at `out` aside, and says where.
fn set_aside(out: &std::path::Path) -> Result<(), Error> {
    if let Some(aside) = crate::runs::records::set_aside(out)? {
        eprintln!(
            "pcbulk: the earlier run's records were moved aside to {}",
            crate::term::escape(&aside.display().to_string())
        );
    }
    Ok(())
}

/// Sends every row, until the last is done or the run is stopped. Whether the run was stopped at
/// once (a second Ctrl-C), with rows still in flight.
async fn drive_rows(
    mut drive: Drive,
    dispatcher: &Dispatcher,
    begun: Option<crate::runs::registry::Begun>,
    signals: &mut Signals,
) -> bool {
    // [registry hook] Sending: the started line stays until the run finishes.
    if let Some(b) = begun {
        b.sending();
    }
    let at_once = drive_interruptibly(&mut drive, &dispatcher.stop, signals).await;
    if at_once {
        drive.stop_at_once();
    } else {
        drive.account_for_unread_rows();
    }
    at_once
}

/// Waits for the results writer's summary of the run, with its times.
async fn summary_of(
    listener: std::thread::JoinHandle<Summary>,
    started: (Instant, std::time::SystemTime),
) -> Result<Summary, Error> {
    // Waited for off the runtime's thread: rows cut off at once still hold the event stream until
    // the runtime drops their tasks, and it can only do that while this thread is free.
    let mut summary = tokio::task::spawn_blocking(move || listener.join())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| Error::Aborted("the results writer stopped unexpectedly".into()))?;
    summary.elapsed = started.0.elapsed();
    summary.about.finished = Some(std::time::SystemTime::now());
    Ok(summary)
}

/// What the sending phase leaves for the last.
struct Sent {
    summary: Summary,
    journal: Arc<Journal>,
    job: journal::Job,
    journal_path: std::path::PathBuf,
    /// Held to the end of the run.
    lock: crate::runs::records::Lock,
}

/// The results file created and the record that writes each row's line to it, with the
/// summary's description of the run.
fn open_results(
    cfg: &ApplyConfig,
    (output, unpaced): (&Output, u64),
    scan: &check::Scan,
    (job, started): (&journal::Job, std::time::SystemTime),
    journal: &Arc<Journal>,
    journal_path: &std::path::Path,
) -> Result<RunRecord, Error> {
    let results = StreamWriter::create(&cfg.input.out, &scan.planner.headers, scan.delimiter)
        .map_err(|e| crate::results::cannot_write(&cfg.input.out, e))?;
    let mut summary = Summary::new(cfg.input.out.clone());
    summary.about = About {
        command: if cfg.is_plan() { "plan" } else { "apply" },
        operation: Some(match scan.operations.as_slice() {
            [] => scan.planner.operation().0.to_owned(),
            names => names.join(","),
        }),
        target: Some(job.target.clone()),
        input: Some(cfg.input.input.clone()),
        journal: Some(journal_path.to_owned()),
        undo: (!cfg.is_plan()).then(|| super::undo::default_out(&cfg.input.out)),
        started,
        finished: None,
        read_columns: Some(scan.planner.held_columns().collect()),
    };
    Ok(RunRecord {
        results,
        journal: Arc::clone(journal),
        progress: Progress::with_mode(Some(scan.rows as u64), output.progress).unpaced(unpaced),
        summary,
        width: scan.planner.headers.len(),
        written: 0,
        half: scan.rows / 2,
    })
}

/// Phase 6: a run not stopped closes its journal and, when it changed a real target, is listed
/// as finished; the embedded sandbox reports its changes and stops.
async fn finish(
    cfg: &ApplyConfig,
    sent: Sent,
    sandbox: bool,
    running: Option<crate::sandbox::Running>,
) -> Result<Summary, Error> {
    let Sent {
        mut summary,
        journal,
        job,
        journal_path,
        lock: _lock,
    } = sent;
    if summary.aborted.is_none() {
        journal.append(journal::Record::Done, true).map_err(|e| {
            Error::Aborted(format!(
                "every row has its line, but the journal {} could not be closed: {e}",
                journal_path.display()
            ))
        })?;
        // A finished apply, however it is named or wherever its results went, is not applied to
        // this target again without --force. The sandbox's tenant ends with the run.
        if !cfg.is_plan() && !sandbox {
            crate::runs::registry::record(&crate::runs::registry::Run::finished(
                &job,
                &cfg.input.out,
                &summary,
            ));
        }
    }
    if let Some(s) = running {
        summary.sandbox_changes = Some(s.changes());
        s.shutdown().await;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::by_name;

    const URL: &str = "https://api.partnercenter.microsoft.com";

    #[test]
    fn a_million_rows_at_the_default_rate_are_said_to_take_about_56_hours() {
        let e = estimate(1_000_000, CALLS_PER_ROW, 10.0).expect("over ten minutes");
        assert_eq!(
            e,
            "at --rate 10 (2 calls a row) this takes about 56 h; raise --rate if the service \
             allows more"
        );
    }

    #[test]
    fn a_run_of_ten_minutes_or_less_gets_no_estimate_and_longer_ones_fitting_units() {
        assert_eq!(estimate(3000, 2, 10.0), None, "600 s exactly");
        assert_eq!(estimate(0, 2, 10.0), None);
        assert_eq!(estimate(10, 2, 0.0), None, "no rate, no estimate");
        let e = estimate(4500, 1, 5.0).unwrap();
        assert!(
            e.contains("about 15 min") && e.contains("(1 call a row)"),
            "{e}"
        );
        let e = estimate(10_000_000, 2, 10.0).unwrap();
        assert!(e.contains("about 23.1 days"), "{e}");
    }

    #[test]
    fn the_prompt_says_the_partner_wide_fields_change_for_every_customer() {
        let sp = by_name("support-profile").unwrap();
        assert_eq!(
            question(&[sp], &["email"], URL, 1),
            format!("Change the partner's support e-mail for every customer in {URL}?")
        );
        assert_eq!(
            question(&[sp], &["email", "telephone", "website"], URL, 1),
            format!(
                "Change the partner's support e-mail, telephone and website for every customer \
                 in {URL}?"
            )
        );
        let bp = by_name("billing-profile").unwrap();
        let q = question(&[bp, sp], &[], URL, 3);
        assert!(
            q.contains("3 rows (billing-profile, support-profile)")
                && q.contains("among them the partner's support profile for every customer"),
            "{q}"
        );
    }

    #[test]
    fn the_prompt_names_what_a_customer_operation_changes() {
        let sc = by_name("support-contact").unwrap();
        assert_eq!(
            question(&[sc], &["name"], URL, 12),
            format!("Change 12 support contacts in {URL}?")
        );
        let sr = by_name("service-request").unwrap();
        assert_eq!(
            question(&[sr], &[], URL, 1),
            format!("Change 1 service request in {URL}?")
        );
    }

    #[test]
    fn the_prompt_goes_on_only_on_yes_not_y() {
        assert!(confirmed("yes\n") && confirmed(" YES "));
        for no in ["y\n", "Y", "", "\n", "yes please", "no"] {
            assert!(!confirmed(no), "{no:?}");
        }
    }
}
