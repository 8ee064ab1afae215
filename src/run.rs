//! The jobs the commands run: read → plan → (send) → results, and the summary they end with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::SecretString;

use crate::api::auth::{Credentials, Tokens};
use crate::api::http::HttpTransport;
use crate::cli::{ApplyConfig, InputConfig, Target};
use crate::dispatch::{Dispatcher, Job, Stop};
use crate::exit;
use crate::input;
use crate::plan::{self, Plan, Verdict};
use crate::report::Progress;
use crate::results::{Outcome, ResultsWriter, Status};
use crate::sandbox;

/// How a run ended.
#[derive(Debug)]
pub struct Summary {
    pub counts: BTreeMap<Status, usize>,
    pub results: PathBuf,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    pub elapsed: Duration,
    /// Invalid and failed rows, for the summary's list of problems.
    pub problems: Vec<Outcome>,
    /// What the sandbox changed, for `apply --sandbox`.
    pub sandbox_changes: Option<Vec<String>>,
}

impl Summary {
    pub fn count(&self, s: Status) -> usize {
        self.counts.get(&s).copied().unwrap_or(0)
    }

    pub fn rows(&self) -> usize {
        self.counts.values().sum()
    }

    pub fn exit_code(&self) -> u8 {
        if self.aborted.is_some() {
            exit::ABORTED
        } else if self.count(Status::Invalid) + self.count(Status::Failed) > 0 {
            exit::ROWS_FAILED
        } else {
            exit::OK
        }
    }
}

/// Reads and plans the input; any error here is a usage error (exit 2) and nothing is sent.
fn prepare(cfg: &InputConfig) -> anyhow::Result<Plan> {
    let table = input::read_path(&cfg.input, &cfg.read)?;
    let plan = plan::plan(&table, cfg.operation)
        .with_context(|| format!("{} cannot be run", cfg.input.display()))?;
    Ok(plan)
}

/// What the results writer is told.
enum Msg {
    Row(Outcome),
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
    fn start(cfg: &InputConfig, plan: &Plan, progress: Progress) -> anyhow::Result<Writer> {
        let inputs = plan.rows.iter().map(|r| r.cells.clone()).collect();
        let lines: Vec<u64> = plan.rows.iter().map(|r| r.line).collect();
        let mut w = ResultsWriter::create(&cfg.out, &plan.headers, inputs)
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
    let mut counts = BTreeMap::new();
    for o in &outcomes {
        *counts.entry(o.status).or_insert(0) += 1;
    }
    Summary {
        counts,
        results: cfg.out.clone(),
        aborted,
        elapsed: started.elapsed(),
        problems: outcomes
            .into_iter()
            .filter(|o| matches!(o.status, Status::Invalid | Status::Failed))
            .collect(),
        sandbox_changes: None,
    }
}

/// Splits the plan: invalid rows become outcomes at once, valid rows become jobs.
fn split(plan: Plan, writer: &Writer) -> Vec<Job> {
    let mut jobs = Vec::new();
    for r in plan.rows {
        match r.verdict {
            Verdict::Ready(change) => jobs.push(Job {
                row: r.row,
                line: r.line,
                change,
            }),
            Verdict::Invalid { code, message } => {
                writer.send(Outcome::unsent(
                    r.row,
                    r.line,
                    Status::Invalid,
                    &code,
                    &message,
                ));
            }
        }
    }
    jobs
}

/// `pcbulk validate`, and `apply --dry-run`: no network at all.
pub fn validate(cfg: &InputConfig, show_progress: bool) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let plan = prepare(cfg)?;
    let writer = Writer::start(
        cfg,
        &plan,
        Progress::new(plan.rows.len() as u64, show_progress),
    )?;
    for job in split(plan, &writer) {
        writer.send(Outcome::unsent(job.row, job.line, Status::Valid, "", ""));
    }
    let outcomes = writer.finish()?;
    Ok(summarize(outcomes, cfg, started, None))
}

/// `pcbulk apply`.
pub async fn apply(cfg: ApplyConfig, show_progress: bool) -> anyhow::Result<Summary> {
    let Some(target) = cfg.target else {
        return validate(&cfg.input, show_progress);
    };
    let started = Instant::now();
    let plan = prepare(&cfg.input)?;
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
    let transport = Arc::new(HttpTransport::new(&base_url, cfg.timeout)?);
    let tokens = Arc::new(Tokens::new(credentials));
    let dispatcher = Arc::new(Dispatcher::new(transport, tokens, cfg.settings.clone()));
    let writer = Writer::start(
        &cfg.input,
        &plan,
        Progress::new(plan.rows.len() as u64, show_progress),
    )?;
    let jobs = split(plan, &writer);
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
    if let Some(s) = running {
        summary.sandbox_changes = Some(s.changes());
        s.shutdown().await;
    }
    Ok(summary)
}
