//! `pcbulk export OP`: every target's current values as a file of OP's rows that `apply` reads as it
//! is. The walk is `crate::export`'s; here it is set up (target, dispatcher, output file), watched
//! (progress, interrupts, a write that fails) and summed up (text on stderr, `--summary-json`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::api::auth::Tokens;
use crate::api::http::HttpTransport;
use crate::api::CallError;
use crate::cli::ExportArgs;
use crate::config::ExportConfig;
use crate::dispatch::{Dispatcher, MaxErrors, Stop, HOPELESS_AFTER, HOPELESS_REASON};
use crate::error::{usage, Error};
use crate::events::Emitter;
use crate::export::filter::Filter;
use crate::export::writer::{stdout_gone, Out, Writer, READER_GONE, STDOUT_FLUSH};
use crate::export::{Job, Produced};
use crate::report::json::LISTING_REFUSED;
use crate::report::progress::Mode;
use crate::report::stats::CallStats;
use crate::report::summary::Summary;
use crate::report::{JsonTo, Output};
use crate::results::{Outcome, Status};
use crate::text::count;

/// How often progress is said on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs `pcbulk export`; returns the exit code.
pub fn run(args: &ExportArgs) -> Result<u8, Error> {
    crate::interrupt::listen();
    let output = crate::report::Output::from(&args.output);
    let started = (Instant::now(), SystemTime::now());
    let result = ExportConfig::try_from(args).and_then(|cfg| {
        let job = job_of(&cfg)?;
        super::one_thread_runtime()?.block_on(export(cfg, job, &output, started))
    });
    match result {
        Ok((summary, end)) => {
            let code = summary.exit_code();
            finish(&output, &summary, code, &end);
            Ok(code)
        }
        Err(e) => {
            let to_stdout = args.out.as_ref().is_none_or(|p| p.as_os_str() == "-");
            // The JSON never goes where the export's rows would.
            if !(to_stdout && output.summary_json == Some(JsonTo::Stdout)) {
                let mut s = Summary::new(args.out.clone().unwrap_or_else(|| "-".into()));
                s.about.command = "export";
                s.about.operation = Some(args.operation.name.to_owned());
                s.about.started = started.1;
                s.elapsed = started.0.elapsed();
                output.finish_failed(s, &e);
            }
            Err(e)
        }
    }
}

/// The export's job: its columns, `--where` read against them, the customers to keep.
fn job_of(cfg: &ExportConfig) -> Result<Job, Error> {
    let Some(spec) = cfg.op.export else {
        usage!("{} cannot be exported", cfg.op.name);
    };
    let columns = Job::columns_of(cfg.op, spec);
    let filters = cfg
        .filters
        .iter()
        .map(|f| Filter::parse(f, &columns))
        .collect::<Result<Vec<_>, _>>()?;
    let per_customer = matches!(
        spec.walk,
        crate::ops::export::Walk::Customers | crate::ops::export::Walk::Subscriptions
    );
    let mut customers: Vec<String> = Vec::new();
    for id in &cfg.customers {
        customers.push(customer_id(id, "--customer")?);
    }
    if let Some(file) = &cfg.customers_file {
        customers.extend(customers_file(file)?);
    }
    let named = !cfg.customers.is_empty() || cfg.customers_file.is_some();
    if named && !per_customer {
        usage!(
            "{} is not exported per customer: --customer and --customers do not apply to it",
            cfg.op.name
        );
    }
    customers.dedup();
    Ok(Job {
        op: cfg.op,
        spec,
        columns,
        filters,
        customers: named.then_some(customers),
        page_size: cfg.page_size,
    })
}

fn customer_id(id: &str, flag: &str) -> Result<String, Error> {
    crate::ops::check::guid("customer_id", id)
        .map_err(|p| Error::usage(format!("{flag}: {}", p.message)))
}

/// The customer ids of a `--customers` file's `customer_id` column, read as an input is: a CSV in
/// any of the encodings and delimiters inputs may have, or a workbook's first sheet.
fn customers_file(path: &std::path::Path) -> Result<Vec<String>, Error> {
    crate::input::refuse_not_a_file(path)?;
    let cfg = crate::config::InputConfig {
        input: path.to_owned(),
        out: std::path::PathBuf::new(),
        operation: None,
        read: crate::input::ReadOptions::default(),
        mapping: Vec::new(),
    };
    let mut source = crate::pipeline::source::Source::open(&cfg)?;
    let headers = source.header(path)?;
    let column = headers
        .iter()
        .position(|h| crate::input::header::canonical(h, &["customer_id"]).is_some());
    let Some(column) = column else {
        usage!(
            "--customers {}: no customer_id column (its header names: {})",
            path.display(),
            headers.join(", ")
        );
    };
    let mut ids = Vec::new();
    for n in 1.. {
        let Some(r) = source.next_row(n)? else {
            break;
        };
        let cell = r.cells().nth(column).map_or("", crate::input::row::trim);
        if cell.is_empty() {
            continue;
        }
        let flag = format!("--customers {} line {}", path.display(), r.line);
        ids.push(customer_id(cell, &flag)?);
    }
    Ok(ids)
}

/// What an export's summary says beside the SPEC's fields.
struct End {
    /// Cells left empty (see [`Job::fit`](crate::export::Job)).
    blanked: usize,
    /// Rows read and kept, written or not: a stopped export delivers fewer (none to a file).
    read: usize,
    to_stdout: bool,
}

/// Reaches the target, walks the job through a dispatcher of its own into the output, and sums up.
async fn export(
    cfg: ExportConfig,
    job: Job,
    output: &Output,
    started: (Instant, SystemTime),
) -> Result<(Summary, End), Error> {
    let out = Out::from_flag(cfg.out.as_deref());
    crate::interrupt::check()?;
    let super::Reached {
        sandbox: running,
        base_url,
        credentials,
    } = super::reach(cfg.target).await?;
    let transport = HttpTransport::new(&base_url, cfg.timeout)
        .map_err(|e| Error::usage(format!("cannot set up HTTP: {e:#}")))?;
    let (events, received) = Emitter::channel();
    let concurrency = cfg.settings.concurrency;
    let max_errors = cfg.settings.max_errors;
    let d = Dispatcher::new(
        Arc::new(transport),
        Arc::new(Tokens::new(credentials)),
        cfg.settings,
        None,
    )
    .with_events(events);
    let writer = Writer::open(&out, &job.columns, job.op.name)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", shown(&out))))?;
    let listener = std::thread::spawn(move || listen(&received));
    crate::interrupt::sending();
    eprintln!(
        "pcbulk: exporting {} from {} to {}",
        job.op.name,
        cfg.target_name,
        shown(&out)
    );
    let scratch = writer.scratch();
    let mut tally = Tally::new(writer, &out, output.progress, max_errors);
    let walk = crate::export::walk(&job, &d, units_ahead(concurrency), |p| tally.on(p, &d.stop));
    let watched = watch_reader(walk, out == Out::Stdout, &d.stop);
    let walked = walk_interruptibly(watched, &d.stop, scratch)
        .await
        .and_then(|()| {
            tally
                .out_of_reach()
                .map_or(Ok(()), |why| Err(CallError::Aborted(why)))
        });
    let stop_reason = d.stop.reason();
    drop(d);
    let stats = listener.join().unwrap_or_default();
    let aborted = tally.close(walked, stop_reason, &out);
    let mut summary = tally.summary(&job, &cfg.target_name, aborted, stats, started);
    if let Some(s) = running {
        s.shutdown().await;
    }
    summary.about.finished = Some(SystemTime::now());
    Ok((summary, tally.end(&out)))
}

/// The export's calls, logged and counted from its events on a thread of its own.
fn listen(events: &std::sync::mpsc::Receiver<crate::events::Event>) -> CallStats {
    let mut stats = CallStats::default();
    crate::events::drain(events, |e| {
        if let Some(e) = e {
            crate::report::logs::log(&e);
            stats.on(&e);
        }
    });
    stats
}

/// Why the export stopped early (`None`: it is complete): the walk's error, or a write that failed
/// (the rows or the final file). An export that stopped leaves no file under its name.
fn ended(
    walked: Result<(), CallError>,
    stop: Option<String>,
    writer: Result<Writer, String>,
    out: &Out,
) -> Option<String> {
    let walk_error = match walked {
        Ok(()) => None,
        Err(CallError::Aborted(reason)) => Some(reason),
        Err(e) => Some(stop.unwrap_or_else(|| listing_failed(&e))),
    };
    match (walk_error, writer) {
        (Some(why), Ok(w)) => {
            drop(w);
            Some(why)
        }
        (Some(why), Err(_)) => Some(why),
        (None, Err(why)) => Some(why),
        (None, Ok(w)) => w
            .finish()
            .err()
            .map(|e| format!("cannot write {}: {e}", shown(out))),
    }
}

/// Whether a call failed for want of the service: no connection, no answer in time, or a 5xx to
/// its last try.
fn out_of_reach(e: &CallError) -> bool {
    match e {
        CallError::Unreachable(_) | CallError::Transport { .. } => true,
        CallError::Service(s) => s.status >= 500,
        _ => false,
    }
}

/// Why a listing that could not be read to its end stopped the export, worded so that the
/// summary's `outcome` names the cause: `credentials_refused`, else `unreachable` (the service did
/// not give the listing: out of reach, throttling past the tries allowed, or refusing it), never
/// `interrupted`, which is the user's stop. A cron job acts on it.
fn listing_failed(e: &CallError) -> String {
    let text = e.to_string();
    let said = sentence(&text);
    match e {
        CallError::Unauthorized(_) => format!("credentials refused while listing: {said}"),
        CallError::Service(s) if s.status == 429 => format!(
            "cannot reach the service to list it all: it still answered 429 (too many requests) \
             when the tries --max-attempts allows ran out ({said}); run the export again later"
        ),
        _ if !out_of_reach(e) => format!("{LISTING_REFUSED}: {said}"),
        CallError::Service(s) => format!(
            "cannot reach the service to list it all: it answered {} to the last try ({said})",
            s.status
        ),
        _ => format!("cannot reach the service to list it all: {said}"),
    }
}

/// A message without its closing full stop, to be joined into a longer sentence.
fn sentence(text: &str) -> &str {
    text.trim_end().trim_end_matches('.')
}

/// The walk, with stdout's reader watched (`watch`): one that has gone stops the export within
/// [`STDOUT_FLUSH`] even when no row is written (a `--where` that keeps none), where a write
/// would have failed.
async fn watch_reader(
    walk: impl std::future::Future<Output = Result<(), CallError>>,
    watch: bool,
    stop: &Stop,
) -> Result<(), CallError> {
    tokio::pin!(walk);
    let gone = async {
        if !watch {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(STDOUT_FLUSH).await;
            if stdout_gone() {
                return;
            }
        }
    };
    tokio::select! {
        r = &mut walk => return r,
        () = gone => stop.raise(format!("cannot write standard output: {READER_GONE}")),
    }
    walk.await
}

/// Walks until the end, or until a signal stops it: the first stops new reads (the export then
/// ends, leaving no file under its name); a second ends the process at once.
async fn walk_interruptibly(
    walk: impl std::future::Future<Output = Result<(), CallError>>,
    stop: &Stop,
    scratch: Option<std::path::PathBuf>,
) -> Result<(), CallError> {
    tokio::pin!(walk);
    tokio::select! {
        r = &mut walk => return r,
        sig = next_signal() => stop.raise(format!("interrupted by {sig}")),
    }
    tokio::select! {
        r = &mut walk => r,
        sig = next_signal() => {
            if let Some(p) = scratch {
                let _ = std::fs::remove_file(p);
            }
            eprintln!("pcbulk: {sig} again: stopped at once; no file was written");
            std::process::exit(crate::error::exit::ABORTED.into());
        }
    }
}

/// The next SIGINT or SIGTERM (Ctrl-C elsewhere), named.
async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// What has come out so far: the writer, rows and cells left empty, targets that failed (as the
/// summary's failed rows), and the progress said.
struct Tally {
    /// `None` once a write failed (`write_error` says why; the file is gone).
    writer: Option<Writer>,
    write_error: Option<String>,
    out_name: String,
    /// Rows read and written to the output (to stdout: at most those that reached it).
    rows: usize,
    /// Rows the output holds once the export has ended: every row of a complete one, none of a
    /// file that was not written, those that reached stdout's reader.
    delivered: usize,
    blanked: usize,
    failed: Vec<Outcome>,
    failed_total: usize,
    /// Failures beyond those kept, by code: how many, and the first (counted by code in the
    /// summary, so that its counts hold every target however many failed).
    more_failed: std::collections::BTreeMap<String, (usize, Outcome)>,
    mode: Mode,
    said: Instant,
    max_errors: Option<MaxErrors>,
    /// Every target that failed so far failed for want of the service (connection, time-out, 5xx).
    all_out_of_reach: bool,
}

/// How many failed targets a summary keeps.
const FAILURES_KEPT: usize = 1000;

/// How many customers (or other units) an export reads at once: rows are written in listing
/// order, so one call waiting out a 429's Retry-After (a whole second, as Partner Center gives it)
/// holds up every unit after it; the others keep the calls going meanwhile, if there are enough
/// of them for that second. Memory holds these units' rows, never the export's.
const UNITS_AHEAD: usize = 256;

fn units_ahead(concurrency: usize) -> usize {
    (concurrency * 2).max(UNITS_AHEAD)
}

impl Tally {
    fn new(writer: Writer, out: &Out, mode: Mode, max_errors: Option<MaxErrors>) -> Tally {
        Tally {
            writer: Some(writer),
            write_error: None,
            out_name: shown(out),
            rows: 0,
            delivered: 0,
            blanked: 0,
            failed: Vec::new(),
            failed_total: 0,
            more_failed: std::collections::BTreeMap::new(),
            mode,
            said: Instant::now(),
            max_errors,
            all_out_of_reach: true,
        }
    }

    /// Why the export did not reach the service at all: no row was read and every target failed
    /// for want of it. Such an export ends like a listing that could not be read (`unreachable`,
    /// exit 3, no file), not as a complete file of no rows.
    fn out_of_reach(&self) -> Option<String> {
        let example = self.failed.first()?;
        (self.rows == 0 && self.all_out_of_reach).then(|| {
            format!(
                "cannot reach the service: none of the {} could be read ({})",
                count(self.failed_total, "target"),
                example.error_message
            )
        })
    }

    /// Completes the output once the walk has ended; returns why the export stopped early, if it
    /// did (see [`ended`]), and counts the rows delivered.
    fn close(
        &mut self,
        walked: Result<(), CallError>,
        stop_reason: Option<String>,
        out: &Out,
    ) -> Option<String> {
        let mut writer = self.writer.take();
        if let (Some(w), Err(_)) = (writer.as_mut(), &walked) {
            // Stopped: stdout's reader gets the rows read (a failure shows in `delivered`).
            let _ = w.deliver();
        }
        let delivered = writer.as_ref().and_then(Writer::delivered);
        let written = writer.ok_or_else(|| self.write_error.clone().unwrap_or_default());
        let aborted = ended(walked, stop_reason, written, out);
        self.delivered = match (&aborted, out) {
            (None, _) => self.rows,
            // What was flushed before the export stopped: a last buffer that could not be written
            // never reached the reader.
            (Some(_), Out::Stdout) => delivered.unwrap_or(self.rows),
            // A stopped export leaves no file.
            (Some(_), _) => 0,
        };
        aborted
    }

    /// One row written, or one target that failed counted; a write that fails stops the export.
    fn on(&mut self, p: Produced, stop: &Stop) {
        match p {
            Produced::Row { cells, blanked } => {
                let Some(w) = self.writer.as_mut() else {
                    return;
                };
                if let Err(e) = w.row(&cells) {
                    // Stdout's reader gone: what it was given is what was exported.
                    self.rows = w.delivered().unwrap_or(self.rows);
                    let why = format!("cannot write {}: {e}", self.out_name);
                    stop.raise(why.clone());
                    self.write_error = Some(why);
                    self.writer = None;
                    return;
                }
                self.rows += 1;
                self.blanked += blanked;
            }
            Produced::Failed { target, error } => self.failure(&target, &error, stop),
        }
        if self.mode != Mode::Quiet && self.said.elapsed() >= PROGRESS_EVERY {
            self.said = Instant::now();
            eprintln!(
                "pcbulk: {} exported so far{}",
                count(self.rows, "row"),
                match self.failed_total {
                    0 => String::new(),
                    n => format!(", {} could not be read", count(n, "target")),
                }
            );
        }
    }

    /// A target that could not be read: kept for the summary; stops the export at --max-errors, or
    /// when the first targets read all failed (the credentials are for another tenant, say).
    fn failure(&mut self, target: &str, error: &CallError, stop: &Stop) {
        self.failed_total += 1;
        self.all_out_of_reach &= out_of_reach(error);
        let n = self.rows + self.failed_total;
        let mut o = Outcome::unsent(
            n,
            0,
            Status::Failed,
            &error.code(),
            &format!("{target}: {error}"),
        );
        o.http_status = error.status();
        if self.failed.len() < FAILURES_KEPT {
            self.failed.push(o);
        } else {
            self.more_failed
                .entry(o.error_code.clone())
                .or_insert((0, o))
                .0 += 1;
        }
        let reached = match self.max_errors {
            Some(MaxErrors::Count(n)) => self.failed_total >= n,
            Some(MaxErrors::Percent(p)) => {
                let read = self.rows + self.failed_total;
                read >= HOPELESS_AFTER && self.failed_total as f64 * 100.0 >= p * read as f64
            }
            None => self.rows == 0 && self.failed_total == HOPELESS_AFTER,
        };
        if reached && self.max_errors.is_some() {
            stop.raise(format!(
                "{} could not be read, reaching --max-errors",
                count(self.failed_total, "target")
            ));
        } else if reached {
            stop.raise(format!(
                "{HOPELESS_REASON}: the first {HOPELESS_AFTER} targets read all failed, so the \
                 export stopped (are the credentials for this partner's tenant?)"
            ));
        }
    }

    /// What the summary says beside the SPEC's fields.
    fn end(&self, out: &Out) -> End {
        End {
            blanked: self.blanked,
            read: self.rows,
            to_stdout: *out == Out::Stdout,
        }
    }

    /// The summary: rows delivered as `succeeded` (a stopped export's rows read but not written
    /// are not: see [`End::read`]), targets that could not be read as `failed`.
    fn summary(
        &self,
        job: &Job,
        target: &str,
        aborted: Option<String>,
        stats: CallStats,
        started: (Instant, SystemTime),
    ) -> Summary {
        let mut s = Summary::new(self.out_name.clone().into());
        s.about.command = "export";
        s.about.operation = Some(job.op.name.to_owned());
        s.about.target = Some(target.to_owned());
        s.about.started = started.1;
        s.elapsed = started.0.elapsed();
        for n in 1..=self.delivered {
            s.count(Outcome::unsent(n, 0, Status::Succeeded, "", ""));
        }
        for o in &self.failed {
            s.count(o.clone());
        }
        for (n, o) in self.more_failed.values() {
            for _ in 0..*n {
                s.count(o.clone());
            }
        }
        s.aborted = aborted;
        s.calls = stats;
        s
    }
}

/// The output as messages name it.
fn shown(out: &Out) -> String {
    out.path()
        .map_or_else(|| "standard output".to_owned(), |p| p.display().to_string())
}

/// Ends the export: the text summary on stderr (stdout may hold the rows), the JSON summary.
fn finish(output: &Output, s: &Summary, exit_code: u8, end: &End) {
    eprint!("{}", summary_text(s, end));
    let Some(to) = &output.summary_json else {
        return;
    };
    let mut doc = crate::report::json::summary(s, exit_code);
    doc["cells_left_empty"] = serde_json::json!(end.blanked);
    doc["rows_read"] = serde_json::json!(end.read);
    let mut doc = doc.to_string();
    doc.push('\n');
    let written = match to {
        JsonTo::Stdout => crate::term::Stream::Out.write_raw(doc.as_bytes()),
        JsonTo::File(p) => crate::fsafe::replace(
            p,
            doc.as_bytes(),
            crate::fsafe::Access::Default,
            "give --summary-json another path",
        ),
    };
    if let Err(e) = written {
        eprintln!("pcbulk: cannot write the summary JSON: {e}");
    }
}

/// What the export did, for stderr.
fn summary_text(s: &Summary, end: &End) -> String {
    let op = s.about.operation.as_deref().unwrap_or("");
    let secs = s.elapsed.as_secs_f64();
    let mut out = match s.aborted {
        None => format!(
            "pcbulk: exported {} ({op}) in {secs:.1} s to {}\n",
            count(end.read, "row"),
            s.results.display()
        ),
        // A stopped export wrote nothing under its name: the line says what was read, and what
        // of it reached stdout's reader.
        Some(_) => format!(
            "pcbulk: read {} ({op}) in {secs:.1} s before the export stopped; {}\n",
            count(end.read, "row"),
            match end.to_stdout {
                true => format!(
                    "{} reached standard output",
                    count(s.count_of(Status::Succeeded), "row")
                ),
                false => "no file was written".to_owned(),
            }
        ),
    };
    let c = &s.calls;
    if c.calls > 0 {
        out.push_str(&format!(
            "calls: {} ({} retried, {} met)\n",
            c.calls,
            c.retries,
            count(c.throttled as usize, "429")
        ));
    }
    if end.blanked > 0 {
        out.push_str(&format!(
            "{} left empty: the value read is one a row may not hold (an empty cell keeps the field \
             as it is when the file is applied)\n",
            count(end.blanked, "cell")
        ));
    }
    for g in s.errors() {
        out.push_str(&format!(
            "{} could not be read ({}), e.g. {}\n",
            count(g.count, "target"),
            g.code,
            crate::term::escape(&g.message)
        ));
    }
    if let Some(why) = &s.aborted {
        let left = match end.to_stdout {
            true => "what reached standard output is not the whole export".to_owned(),
            false => format!(
                "the export was not written to {} (a file already there is left as it was)",
                s.results.display()
            ),
        };
        out.push_str(&format!("stopped early: {}; {left}\n", sentence(why)));
    }
    out
}
