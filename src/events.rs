//! The run-event stream: the engine and the dispatcher say what happens, and everything that shows
//! or records a run (results file, journal outcomes, progress, summary, later reports) listens. The
//! dispatcher knows no output and no command line; it only emits.

use std::sync::mpsc;
use std::time::Duration;

use crate::input::row::StreamRow;
use crate::results::Outcome;

/// Something that happened in a run.
#[derive(Debug)]
pub enum Event {
    /// Sending starts: this many data rows, this many of them to send.
    RunStarted { rows: usize, to_send: usize },
    /// A row was read and planned for sending.
    RowPlanned { row: usize },
    /// A call went out (`attempt` counts from 1), with the ids it carried (for the logs).
    CallSent {
        row: usize,
        method: &'static str,
        attempt: u32,
        correlation_id: uuid::Uuid,
        request_id: uuid::Uuid,
    },
    /// An answer came (`None`: no answer, the connection failed or timed out).
    CallAnswered {
        row: usize,
        status: Option<u16>,
        elapsed: Duration,
    },
    /// A 429, with the wait the service asked for.
    Throttled {
        row: usize,
        retry_after: Option<Duration>,
    },
    /// A call will be sent again after `wait`.
    RetryScheduled {
        row: usize,
        attempt: u32,
        wait: Duration,
    },
    /// A new access token was fetched after the old one was refused or ran out.
    TokenRenewed,
    /// A row has its final outcome. Rows finish in input order.
    RowFinished(Box<Finished>),
    /// Every row has finished (or the run was cut short: `aborted` says why).
    RunFinished { aborted: Option<String> },
}

/// A finished row: its input cells, its outcome, and whether an earlier run had finished it already
/// (read from the journal on `--resume`, so not journaled again).
#[derive(Debug)]
pub struct Finished {
    pub raw: StreamRow,
    pub outcome: Outcome,
    pub known: bool,
}

/// Where events go: cheap to clone, safe to use from any thread or task. A closed stream (the
/// listener gone) drops events silently; the listener owns what must be durable.
#[derive(Clone)]
pub struct Emitter {
    tx: Option<mpsc::SyncSender<Event>>,
}

/// How many events may wait for the listener before an emitter waits for it.
const QUEUE: usize = 16 * 1024;

impl Emitter {
    /// An emitter and the receiving end of its stream.
    pub fn channel() -> (Emitter, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        (Emitter { tx: Some(tx) }, rx)
    }

    /// An emitter that goes nowhere (tests, and code run without a listener).
    pub fn none() -> Emitter {
        Emitter { tx: None }
    }

    pub fn emit(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }
}

/// How often a listener looks at the stream when it found it empty.
pub const DRAIN: Duration = Duration::from_millis(5);

/// Gives `on` every event in the stream until every emitter is gone: `Some(event)` for each one
/// queued, then `None` each time the queue is found empty, after which the listener sleeps
/// [`DRAIN`] before looking again. Drained every few milliseconds rather than woken for each event:
/// a run emits several events a call, and a thread's wake-up each would cost more than the work.
pub fn drain(events: &mpsc::Receiver<Event>, mut on: impl FnMut(Option<Event>)) {
    loop {
        match events.try_recv() {
            Ok(e) => on(Some(e)),
            Err(mpsc::TryRecvError::Empty) => {
                on(None);
                std::thread::sleep(DRAIN);
            }
            Err(mpsc::TryRecvError::Disconnected) => return,
        }
    }
}

/// Something that listens to a run's events.
pub trait Listener {
    fn on(&mut self, event: &Event) -> std::io::Result<()>;
}
