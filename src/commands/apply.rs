//! `pcbulk apply`: check the file, then send it, streamed, with a journal, and keep the run record
//! (results file, journal outcomes, progress, summary) from the run's events.

use std::sync::mpsc::{Receiver, TryRecvError};
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
use crate::results::{encode_line, StreamWriter};

/// How often the run record drains the event stream.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(5);

/// Everything a run leaves behind, kept from its events on one thread: the results file (in input
/// order, as rows finish), each row's outcome in the journal, the progress display and the summary.
struct RunRecord {
    results: StreamWriter,
    journal: Arc<Journal>,
    progress: Progress,
    summary: Summary,
    width: usize,
    delimiter: u8,
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
            let line = encode_line(f.raw.trimmed(self.width), &f.outcome, self.delimiter);
            self.results.write_encoded(&line)?;
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
        loop {
            // Drained every few milliseconds rather than woken for each event: a run emits several
            // events a call, and a wake-up each would cost more than the work. Lines reach the file
            // each time the stream is drained.
            let event = match events.try_recv() {
                Ok(e) => e,
                Err(TryRecvError::Empty) => {
                    // Shown while no event comes too (a Retry-After waited out).
                    self.progress.show(&self.summary);
                    if !broken {
                        if let Err(e) = self.results.flush() {
                            broken = self.fail(&stop, e);
                        }
                    }
                    std::thread::sleep(DRAIN);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            if broken {
                continue;
            }
            if let Err(e) = self.on(&event) {
                broken = self.fail(&stop, e);
            }
        }
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
fn banner(cfg: &ApplyConfig, target: &Target, scan: &check::Scan, to_send: usize) {
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
    eprintln!(
        "pcbulk: {} {op} (chosen by {how}) to {to}{plan}\n        {} to {}, {invalid} invalid or \
         duplicate; results: {}",
        if cfg.is_plan() {
            "plan (reads only)"
        } else {
            "apply"
        },
        crate::report::count(to_send, "row"),
        if cfg.is_plan() { "read" } else { "send" },
        crate::term::escape(&cfg.input.out.display().to_string())
    );
}

/// Asks before changing a production target (neither the sandbox nor loopback): yes on a
/// terminal, or `--yes`; with neither, nothing is sent (exit 2).
fn confirm(cfg: &ApplyConfig, target: &Target, to_send: usize) -> Result<(), Error> {
    use std::io::{IsTerminal, Write};
    let Target::Service { base_url, .. } = target else {
        return Ok(());
    };
    if cfg.yes || crate::config::is_loopback(base_url) || to_send == 0 {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!(
            "{base_url} is a production target and there is no terminal to confirm on: add --yes \
             to go ahead (nothing was sent)"
        )));
    }
    eprint!(
        "Change {} in {base_url}? Type yes to go on: ",
        crate::report::count(to_send, "row")
    );
    let _ = std::io::stderr().flush();
    let answer = read_answer()?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::usage("not confirmed: nothing was sent"))
    }
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
    if crate::config::same_file(journal_path, &cfg.input) {
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
/// checks it was made from this very input and target.
fn read_plan(plan: &std::path::Path, job: &journal::Job, delimiter: u8) -> Result<PlanRows, Error> {
    // The file a person reviewed first: a missing plan is named as the plan, not as its journal.
    let reviewed = reviewed_rows(plan, delimiter)?;
    let path = journal::path_for(plan);
    let replay = journal::read(&path).map_err(|e| match e {
        journal::ReadError::Io(e) => Error::io(
            format!(
                "cannot read the plan's journal {} (it is written beside the plan)",
                path.display()
            ),
            e,
        ),
        journal::ReadError::Misfit(m) => Error::Usage(format!(
            "the plan's journal {} line {}: {}: make a new plan",
            path.display(),
            m.line,
            m.what
        )),
    })?;
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
    if let Some(why) = differs {
        return Err(Error::usage(format!(
            "{} does not fit this run: {why}. Make a new plan for this run and review it; nothing \
             was sent",
            plan.display()
        )));
    }
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
        reviewed,
    })
}

/// How a plan's identity (`then`) is not this run's (`now`), for a refusal.
fn plan_differs(then: &journal::Identity, now: &journal::Identity, input: &str) -> Option<String> {
    use journal::Part;
    Some(match then.first_difference(now)? {
        Part::Target => format!("it was made against {}, not {}", then.target, now.target),
        Part::Operation => format!("it plans {}, not {}", then.operation, now.operation),
        Part::Sheet => format!("it was made from {}, not {}", then.source(), now.source()),
        Part::Mapping => "it mapped the input's columns another way".to_owned(),
        Part::Rows => format!(
            "it was made from other rows than {input} holds now (a value was changed, or rows \
             were added, taken out or moved)"
        ),
    })
}

/// The rows a plan's CSV marks `planned`, as the reviewer left it: a row taken out of the file, or
/// whose status was changed, is not applied. (The journal beside it holds what the plan read; the
/// CSV is what a person reviewed.)
fn reviewed_rows(
    plan: &std::path::Path,
    delimiter: u8,
) -> Result<std::collections::BTreeSet<usize>, Error> {
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
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let bad = |what: String| {
        Error::usage(format!(
            "{} {what}: it is not a plan pcbulk wrote (or it was saved in another format); make a \
             new plan with pcbulk plan; nothing was sent",
            plan.display()
        ))
    };
    let header = reader
        .headers()
        .map_err(|e| bad(format!("cannot be read ({e})")))?
        .clone();
    let column = |name: &str| {
        let names: Vec<&str> = header.iter().collect();
        names
            .iter()
            .rposition(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| bad(format!("has no `{name}` column")))
    };
    let (row_at, status_at) = (column("row")?, column("status")?);
    let mut rows = std::collections::BTreeSet::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("line {}: cannot be read ({e})", n + 2)))?;
        if record.get(status_at).map(str::trim) != Some("planned") {
            continue;
        }
        let row = record
            .get(row_at)
            .and_then(|r| r.trim().parse::<usize>().ok())
            .ok_or_else(|| bad(format!("line {}: its `row` is not a row number", n + 2)))?;
        rows.insert(row);
    }
    Ok(rows)
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
        target: crate::config::target_key(&target),
        sheet: scan.sheet.clone(),
        mapping: Vec::new(),
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

/// `pcbulk apply`.
pub async fn apply(mut cfg: ApplyConfig, output: &Output) -> Result<Summary, Error> {
    let show_progress = output.progress != crate::report::progress::Mode::Quiet;
    let Some(target) = cfg.target.take() else {
        return check::validate(&cfg.input, show_progress);
    };
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    let journal_path = journal::path_for(&cfg.input.out);
    refuse_unsafe_records(&cfg.input, &journal_path)?;
    // One process at a time per results file, for the whole run.
    let _lock = super::records::lock(&cfg.input.out)?;
    // A resume reads the earlier journal first: the checking pass checks it against every row.
    let input_name = cfg.input.input.display().to_string();
    let earlier = match cfg.resume {
        true => journal::read_for_resume(&journal_path, &input_name)?,
        false => None,
    };
    let mut scan = check::scan(&cfg.input, earlier.as_ref())?;
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
    let sandbox = matches!(target, Target::Sandbox);
    let job = job_of(&cfg, &scan, &target, input_name);
    // Everything that can refuse the run does so before anything is recorded (the list of runs,
    // the journal, the records moved aside) and before the banner's confirmation is asked for: a
    // refusal never changes what pcbulk knows of earlier runs.
    let earlier = match earlier {
        Some(replay) => match resume_from(&cfg, &journal_path, replay, &job, scan.misfit.take())? {
            Resume::Continue(replay) => Some(*replay),
            Resume::Start => None,
            Resume::Finished(said) => return Ok(already_finished(&cfg, &job, &journal_path, said)),
        },
        None => None,
    };
    let plan = match &cfg.from_plan {
        Some(p) => Some(read_plan(p, &job, scan.delimiter)?),
        None => None,
    };
    if earlier.is_none() {
        // A plan may be made again and again, and `--sandbox` starts a fresh demo tenant each
        // time: neither can apply anything twice. Their earlier files are still moved aside.
        let again = cfg.force || cfg.is_plan() || sandbox;
        if !again {
            if let Some(said) = super::registry::refuse_repeat(&job, &cfg.input.out, cfg.resume)? {
                return Ok(already_finished(&cfg, &job, &journal_path, said));
            }
        }
        super::records::check(&cfg.input.out, &job, again)?;
    }
    // With a plan, the rows to send are those it still marks planned (at most).
    let to_send = plan.as_ref().map_or(scan.to_send, |p| {
        p.reviewed
            .iter()
            .filter(|r| p.status.get(r) == Some(&crate::results::Status::Planned))
            .count()
            .min(scan.to_send)
    });
    banner(&cfg, &target, &scan, to_send);
    if !cfg.is_plan() {
        confirm(&cfg, &target, to_send)?;
    }
    // The last moment a signal ends the run with nothing recorded; from here the sending pass
    // answers it (rows not started are skipped, the run is resumable).
    crate::interrupt::check()?;
    let mut signals = Signals::listen();
    crate::interrupt::sending();
    // [registry hook] The list of runs gets this run's started line, checked again under the
    // list's lock (of two applies of one file started together, one runs). A new run not forced
    // is checked; a resume or a forced run only adds its line.
    let begun = match cfg.is_plan() || sandbox {
        true => None,
        false => super::registry::begin(&job, &cfg.input.out, !cfg.force && earlier.is_none())?,
    };
    let super::Reached {
        sandbox: running,
        base_url,
        credentials,
    } = super::reach(target).await?;
    if earlier.is_none() {
        super::records::set_aside(&cfg.input.out)?;
    }
    let fresh = earlier.is_none();
    let (journal, replay) = journal::open_for_run(&journal_path, &job, earlier, cfg.retry_failed)?;
    let journal = Arc::new(journal);
    let transport = HttpTransport::new(&base_url, cfg.timeout)
        .map_err(|e| Error::usage(format!("cannot set up HTTP: {e:#}")))?;
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
    let results = StreamWriter::create(&cfg.input.out, &scan.planner.headers, scan.delimiter);
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            // Nothing was sent: a new run's journal must not stand in the way of the next one.
            if fresh {
                drop(journal);
                let _ = std::fs::remove_file(&journal_path);
            }
            return Err(crate::results::cannot_write(&cfg.input.out, e));
        }
    };
    let mut summary = Summary::new(cfg.input.out.clone());
    summary.about = About {
        command: if cfg.is_plan() { "plan" } else { "apply" },
        operation: Some(match scan.operations.as_slice() {
            [] => scan.planner.operation().0.to_owned(),
            names => names.join(","),
        }),
        target: Some(job.target.clone()),
        input: Some(cfg.input.input.clone()),
        journal: Some(journal_path.clone()),
        undo: (!cfg.is_plan()).then(|| crate::undo::default_out(&cfg.input.out)),
        started: started_at,
        finished: None,
    };
    let record = RunRecord {
        results,
        journal: Arc::clone(&journal),
        progress: Progress::with_mode(Some(scan.rows as u64), output.progress),
        summary,
        width: scan.planner.headers.len(),
        delimiter: scan.delimiter,
        written: 0,
        half: scan.rows / 2,
    };
    let stop = Arc::clone(&dispatcher.stop);
    let listener = std::thread::spawn(move || record.listen(received, stop));
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
    reading.plan = plan;
    let mut drive = Drive::start(reading, Arc::clone(&dispatcher), events.clone(), to_send);
    // [registry hook] Sending: the started line stays until the run finishes.
    if let Some(b) = begun {
        b.sending();
    }
    let at_once = drive_interruptibly(&mut drive, &dispatcher.stop, &mut signals).await;
    if at_once {
        drive.stop_at_once();
    } else {
        drive.account_for_unread_rows();
    }
    drop(drive);
    events.emit(Event::RunFinished {
        aborted: dispatcher.stop.reason(),
    });
    drop(events);
    drop(dispatcher);
    // Waited for off the runtime's thread: rows cut off at once still hold the event stream until
    // the runtime drops their tasks, and it can only do that while this thread is free.
    let mut summary = tokio::task::spawn_blocking(move || listener.join())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| Error::Aborted("the results writer stopped unexpectedly".into()))?;
    summary.elapsed = started.elapsed();
    summary.about.finished = Some(std::time::SystemTime::now());
    if at_once {
        // The rows' outcomes are in the journal's buffer: on disk before the process goes.
        let _ = journal.sync();
        output.finish(&summary, exit::ABORTED);
        std::process::exit(exit::ABORTED.into());
    }
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
            super::registry::record(&super::registry::Run::finished(
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
