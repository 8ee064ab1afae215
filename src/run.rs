//! The jobs the commands run: read → plan → (send) → results, and the summary they end with.

use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::SecretString;

use crate::api::auth::{Credentials, Tokens};
use crate::api::http::HttpTransport;
use crate::api::{Method, Request};
use crate::cli::{ApplyConfig, InputConfig, Target};
use crate::dispatch::{Dispatcher, Job, Stop};
use crate::exit;
use crate::failpoint;
use crate::input;
use crate::journal::{self, Journal, Replay, SentCall};
use crate::ops::Pending;
use crate::plan::{self, Plan, Verdict};
use crate::report::Progress;
use crate::results::{Outcome, ResultsWriter, Status};
use crate::sandbox;
use uuid::Uuid;

/// How a run ended.
#[derive(Debug)]
pub struct Summary {
    /// Rows by status, indexed as [`Status::ALL`].
    counts: [usize; Status::ALL.len()],
    pub results: PathBuf,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    pub elapsed: Duration,
    /// The first invalid and failed rows, for the summary's list of problems.
    pub problems: Vec<Outcome>,
    /// How many rows are invalid or failed in all.
    pub problems_total: usize,
    /// What the sandbox changed, for `apply --sandbox`.
    pub sandbox_changes: Option<Vec<String>>,
}

/// How many problem rows a summary keeps to show.
pub const PROBLEMS_SHOWN: usize = 10;

impl Summary {
    pub fn new(results: PathBuf) -> Self {
        Summary {
            counts: [0; Status::ALL.len()],
            results,
            aborted: None,
            elapsed: Duration::ZERO,
            problems: Vec::new(),
            problems_total: 0,
            sandbox_changes: None,
        }
    }

    /// Counts one row's outcome (keeping the first few problems to show).
    pub fn count(&mut self, o: Outcome) {
        self.counts[o.status as usize] += 1;
        if matches!(o.status, Status::Invalid | Status::Failed) {
            self.problems_total += 1;
            if self.problems.len() < PROBLEMS_SHOWN {
                self.problems.push(o);
            } else if self.problems.last().is_some_and(|p| p.row > o.row) {
                // A problem found after the fact (a duplicate) may come before those shown.
                self.problems.pop();
                self.problems.push(o);
                self.problems.sort_by_key(|p| p.row);
            }
        }
    }

    /// A row counted as `was` turns out to be `o` (a duplicate found after the fact).
    pub fn recount(&mut self, was: Status, o: Outcome) {
        self.counts[was as usize] -= 1;
        self.count(o);
        self.problems.sort_by_key(|p| p.row);
    }

    pub fn count_of(&self, s: Status) -> usize {
        self.counts[s as usize]
    }

    pub fn rows(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn exit_code(&self) -> u8 {
        if self.aborted.is_some() {
            exit::ABORTED
        } else if self.count_of(Status::Invalid) + self.count_of(Status::Failed) > 0 {
            exit::ROWS_FAILED
        } else {
            exit::OK
        }
    }
}

/// Reads and plans the input; any error here is a usage error (exit 2) and nothing is sent.
fn prepare(cfg: &InputConfig) -> anyhow::Result<Plan> {
    let table = input::read_path(&cfg.input, &cfg.read)?;
    let mut plan = plan::plan(&table, cfg.operation)
        .with_context(|| format!("{} cannot be run", cfg.input.display()))?;
    plan.delimiter = table.delimiter;
    for w in &plan.warnings {
        eprintln!("pcbulk: warning: {w}");
    }
    Ok(plan)
}

/// What the results writer is told.
enum Msg {
    Row(Outcome),
    /// A row finished by an earlier run (from the journal): written, not journaled again.
    Known(Outcome),
    /// The run was cut short with rows in flight: mark them `skipped` with this message.
    CutShort(String),
}

/// The results writer on its own thread: the one owner of the file and of the progress display.
struct Writer {
    tx: mpsc::Sender<Msg>,
    handle: thread::JoinHandle<std::io::Result<Vec<Outcome>>>,
    /// Held while a line is written, so an immediate exit never tears one.
    writing: Arc<Mutex<()>>,
}

impl Writer {
    fn start(
        cfg: &InputConfig,
        plan: &Plan,
        progress: Progress,
        journal: Option<Arc<Journal>>,
    ) -> anyhow::Result<Writer> {
        let inputs = plan.rows.iter().map(|r| r.cells.clone()).collect();
        let lines: Vec<u64> = plan.rows.iter().map(|r| r.line).collect();
        let mut w = ResultsWriter::create(&cfg.out, &plan.headers, inputs, plan.delimiter)
            .with_context(|| format!("cannot write the results file {}", cfg.out.display()))?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let writing = Arc::new(Mutex::new(()));
        let lock = Arc::clone(&writing);
        let handle = thread::spawn(move || {
            for msg in rx {
                let _writing = lock.lock().unwrap_or_else(|e| e.into_inner());
                match msg {
                    Msg::Row(o) => {
                        progress.row_done(&o);
                        if let Some(j) = &journal {
                            j.append(&journal::Record::Row(o.clone()), false)?;
                        }
                        w.append(o)?;
                    }
                    Msg::Known(o) => {
                        progress.row_done(&o);
                        w.append(o)?;
                    }
                    Msg::CutShort(message) => {
                        for row in w.unfinished() {
                            let o = Outcome::unsent(
                                row,
                                lines[row - 1],
                                Status::Skipped,
                                "interrupted",
                                &message,
                            );
                            w.append(o)?;
                        }
                    }
                }
            }
            progress.finish();
            let _writing = lock.lock().unwrap_or_else(|e| e.into_inner());
            failpoint::hit("before-final-rewrite");
            w.finish()
        });
        Ok(Writer {
            tx,
            handle,
            writing,
        })
    }

    fn send(&self, o: Outcome) {
        let _ = self.tx.send(Msg::Row(o));
    }

    fn finish(self) -> anyhow::Result<Vec<Outcome>> {
        drop(self.tx);
        let outcomes = self
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("the results writer stopped unexpectedly"))?
            .context("cannot write the results file")?;
        Ok(outcomes)
    }
}

/// How long calls in flight may finish after an interrupt.
pub const GRACE: Duration = Duration::from_secs(5);

/// Waits for SIGINT or SIGTERM and names it.
async fn interrupt() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Runs the dispatch until it ends or is interrupted. On a first signal no new row starts and calls
/// in flight get [`GRACE`] to finish; on a second, the process exits at once (between two lines of
/// the results file, never in the middle of one). Returns whether rows were cut off in flight.
async fn interruptible(
    run: impl std::future::Future<Output = ()>,
    stop: &Stop,
    writer: &Writer,
) -> bool {
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => return false,
        sig = interrupt() => {
            stop.raise(format!("interrupted by {sig}; rows not started were skipped"));
            eprintln!(
                "pcbulk: {sig}: no new rows; finishing the calls in flight (up to {} s). \
                 Interrupt again to stop at once.",
                GRACE.as_secs()
            );
        }
    }
    tokio::select! {
        _ = &mut run => false,
        _ = tokio::time::sleep(GRACE) => true,
        sig = interrupt() => {
            let _no_line_half_written = writer.writing.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "pcbulk: {sig} again: stopped at once. Rows that were in flight or not started have \
                 no line in the results file; they may or may not have been applied."
            );
            std::process::exit(exit::ABORTED.into());
        }
    }
}

fn summarize(
    outcomes: Vec<Outcome>,
    cfg: &InputConfig,
    started: Instant,
    aborted: Option<String>,
) -> Summary {
    let mut summary = Summary::new(cfg.out.clone());
    for o in outcomes {
        summary.count(o);
    }
    summary.aborted = aborted;
    summary.elapsed = started.elapsed();
    summary
}

/// Splits the plan: invalid rows become outcomes at once, and so do rows an earlier run finished
/// (on resume); the rest become jobs, with any write whose outcome the journal leaves unknown.
fn split(plan: Plan, writer: &Writer, resume: Option<(&Replay, bool)>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for r in plan.rows {
        let change = match r.verdict {
            Verdict::Ready(change) => change,
            Verdict::Invalid { code, message } => {
                writer.send(Outcome::unsent(
                    r.row,
                    r.line,
                    Status::Invalid,
                    &code,
                    &message,
                ));
                continue;
            }
        };
        let op = r.op.map(|o| o.name).unwrap_or("");
        let mut job = Job::new(r.row, r.line, op, change);
        if let Some((replay, retry_failed)) = resume {
            if let Some(done) = replay.finished(r.row, r.line, retry_failed) {
                let _ = writer.tx.send(Msg::Known(done));
                continue;
            }
            if let Some((correlation_id, call)) = replay.unanswered.get(&r.row) {
                job.pending = pending(correlation_id, call);
            }
            if let Some(before) = replay.before.get(&r.row) {
                job.extra = before.extra.clone();
            }
        }
        jobs.push(job);
    }
    jobs
}

/// A journaled write, as a call to send again.
fn pending(correlation_id: &str, call: &SentCall) -> Option<(Uuid, Pending)> {
    let method = match call.method.as_str() {
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        _ => return None,
    };
    let request = Request {
        method,
        path: call.path.clone(),
        body: call.body.clone(),
        if_match: call.if_match.clone(),
    };
    Some((
        Uuid::parse_str(correlation_id).ok()?,
        Pending {
            request,
            request_id: Uuid::parse_str(&call.request_id).ok()?,
        },
    ))
}

/// `pcbulk apply`.
pub async fn apply(cfg: ApplyConfig, show_progress: bool) -> anyhow::Result<Summary> {
    let Some(target) = cfg.target else {
        return crate::stream::validate(&cfg.input, show_progress);
    };
    let started = Instant::now();
    let plan = prepare(&cfg.input)?;
    if let Some(op) = plan
        .rows
        .iter()
        .filter_map(|r| r.op)
        .find(|op| cfg.unavailable.contains(&op.name))
    {
        anyhow::bail!(
            "{} updates are not offered in the China cloud (21Vianet); nothing was sent",
            op.name
        );
    }
    let (running, base_url, credentials) = match target {
        Target::Sandbox => {
            let s = sandbox::start(sandbox::Options::default())
                .await
                .context("cannot start the sandbox")?;
            let url = s.base_url();
            (
                Some(s),
                url,
                Credentials::Static(SecretString::from("sandbox")),
            )
        }
        Target::Service {
            base_url,
            credentials,
        } => (None, base_url, credentials),
    };
    let journal_path = journal::path_for(&cfg.input.out);
    let job = journal::Job {
        input_sha256: sha256_of(&cfg.input.input)?,
        input: cfg.input.input.display().to_string(),
        operation: cfg.input.operation.map(|o| o.name.to_owned()),
        target: if running.is_some() {
            "sandbox".into()
        } else {
            base_url.clone()
        },
    };
    let (journal, replay) = open_journal(&journal_path, &job, cfg.resume, cfg.retry_failed)?;
    let journal = Arc::new(journal);
    let transport = Arc::new(HttpTransport::new(&base_url, cfg.timeout)?);
    let tokens = Arc::new(Tokens::new(credentials));
    let dispatcher = Arc::new(Dispatcher::new(
        transport,
        tokens,
        cfg.settings.clone(),
        Some(Arc::clone(&journal)),
    ));
    let writer = Writer::start(
        &cfg.input,
        &plan,
        Progress::new(Some(plan.rows.len() as u64), show_progress),
        Some(Arc::clone(&journal)),
    )?;
    let jobs = split(
        plan,
        &writer,
        replay.as_ref().map(|r| (r, cfg.retry_failed)),
    );
    let tx = writer.tx.clone();
    let run = Arc::clone(&dispatcher).run(jobs, move |o| {
        let _ = tx.send(Msg::Row(o));
    });
    if interruptible(run, &dispatcher.stop, &writer).await {
        let _ = writer.tx.send(Msg::CutShort(format!(
            "interrupted while the call was in flight and not finished within {} s: the change may \
             or may not have been applied; check before sending it again",
            GRACE.as_secs()
        )));
    }
    let outcomes = writer.finish()?;
    let mut summary = summarize(outcomes, &cfg.input, started, dispatcher.stop.reason());
    if summary.aborted.is_none() {
        journal
            .append(&journal::Record::Done, true)
            .context("cannot write the journal")?;
    }
    if let Some(s) = running {
        summary.sandbox_changes = Some(s.changes());
        s.shutdown().await;
    }
    Ok(summary)
}

fn sha256_of(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Opens the journal for this run. A new run replaces a finished journal and refuses to replace an
/// unfinished one; a resume checks that it is the same job and reads what the earlier run did.
fn open_journal(
    path: &std::path::Path,
    job: &journal::Job,
    resume: bool,
    retry_failed: bool,
) -> anyhow::Result<(Journal, Option<Replay>)> {
    let existing = if path.exists() {
        Some(
            journal::read(path)
                .with_context(|| format!("cannot read the journal {}", path.display()))?,
        )
    } else {
        None
    };
    if !resume {
        if let Some(r) = existing.as_ref().filter(|r| !r.done && r.job.is_some()) {
            anyhow::bail!(
                "{} records an unfinished run ({} rows finished): run the same command with --resume \
                 to finish it without applying anything twice, or delete that file to start over",
                path.display(),
                r.outcomes.len()
            );
        }
        let j = Journal::create(path, job)
            .with_context(|| format!("cannot write the journal {}", path.display()))?;
        return Ok((j, None));
    }
    let Some(replay) = existing else {
        anyhow::bail!(
            "nothing to resume: there is no journal {} (it is written beside the results file; give \
             the same --out as the run you are resuming)",
            path.display()
        );
    };
    let Some(earlier) = &replay.job else {
        anyhow::bail!(
            "the journal {} has no run header: it cannot be resumed",
            path.display()
        );
    };
    if earlier.input_sha256 != job.input_sha256 {
        anyhow::bail!(
            "refusing to resume: {} is not the file the run started with ({} has changed since, or \
             another file was given); resume with the original file",
            job.input, earlier.input
        );
    }
    if earlier.operation != job.operation {
        anyhow::bail!(
            "refusing to resume: the run started with --operation {}, not {}",
            earlier.operation.as_deref().unwrap_or("(none)"),
            job.operation.as_deref().unwrap_or("(none)")
        );
    }
    if earlier.target != job.target {
        anyhow::bail!(
            "refusing to resume: the run was sent to {}, not {}; resume against the same service",
            earlier.target,
            job.target
        );
    }
    let j = Journal::reopen(path)
        .with_context(|| format!("cannot write the journal {}", path.display()))?;
    j.append(&journal::Record::Resume { retry_failed }, true)?;
    Ok((j, Some(replay)))
}
