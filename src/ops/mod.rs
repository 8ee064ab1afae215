//! The Partner Center updates. Each file here owns one operation's columns, validation, and the
//! calls that apply a row; the shared dispatcher runs them all the same way.
//!
//! Adding an update means one new file, its `mod` line and one line in [`OPERATIONS`].

pub mod billing_profile;
pub mod check;
pub mod countries;
pub mod expect;
pub mod export;
pub mod json;
pub mod service_request;
pub mod subscription;
pub mod support_contact;
pub mod support_profile;

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::api::{Api, CallError, Request};

/// Every operation pcbulk knows, in the order `template` and messages list them.
pub static OPERATIONS: &[&OpSpec] = &[
    &support_contact::SPEC,
    &service_request::SPEC,
    &support_profile::SPEC,
    &billing_profile::SPEC,
    &subscription::SPEC,
];

/// What an operation needs from the CSV and how it turns a row into a change.
pub struct OpSpec {
    pub name: &'static str,
    /// Columns that must be in the header and filled in on every row.
    pub required: &'static [&'static str],
    /// At least one of these must be in the header, and filled in on every row.
    pub one_of: &'static [&'static str],
    /// Columns read when present; an empty cell means "leave as it is".
    pub optional: &'static [&'static str],
    /// With no `one_of`: at least one of the optional columns must be in the header (a billing
    /// file must change something).
    pub needs_an_optional: bool,
    /// The columns that say which thing a row changed (for `undo`).
    pub undo_keys: &'static [&'static str],
    /// The columns whose values a row reads before it changes them: journaled as before-values,
    /// and what `undo` puts back. No other column may have a before-value.
    pub undoable: &'static [&'static str],
    /// (column, kept): a row that sets `column` also journals the value it keeps in `kept` when it
    /// leaves that empty (a billing address moved to another country keeps its state). Only
    /// read, never changed: undo does not put it back.
    pub kept_beside: &'static [(&'static str, &'static str)],
    /// Offered in the China cloud (21Vianet)?
    pub in_china: bool,
    /// Changes the partner's own settings rather than a customer's: never chosen from a header
    /// alone, only by `--operation` or an `operation` column.
    pub partner_wide: bool,
    /// Columns that hold yes or no in any spelling ([`check::yes_no`]): compared as answers, not
    /// as text, by `expected_<column>` preconditions and `export --where`.
    pub yes_no: &'static [&'static str],
    /// Columns whose words the operation reads in any letter case (a status, a country code):
    /// compared so by `expected_<column>` preconditions and `export --where` too, as the row
    /// itself would be read.
    pub any_case: &'static [&'static str],
    /// An example row for `pcbulk template`, as (column, value).
    pub example: &'static [(&'static str, &'static str)],
    /// Validates a row and builds the change it asks for. Never sends anything.
    pub plan: fn(&Row) -> Planned,
    /// How `pcbulk export` lists this operation's targets and reads their current values.
    pub export: Option<&'static export::ExportSpec>,
}

/// Whether `column` holds yes or no in any operation that reads it.
pub fn is_yes_no(column: &str) -> bool {
    OPERATIONS.iter().any(|op| op.yes_no.contains(&column))
}

/// Whether an operation that reads `column` reads its words in any letter case.
pub fn is_any_case(column: &str) -> bool {
    OPERATIONS.iter().any(|op| op.any_case.contains(&column))
}

impl OpSpec {
    /// Every column this operation reads.
    pub fn columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.required
            .iter()
            .chain(self.one_of)
            .chain(self.optional)
            .copied()
    }
}

impl fmt::Debug for OpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Finds an operation by its name (`support-contact`, ...), forgiving case and `_`/`-`/spaces.
pub fn by_name(name: &str) -> Option<&'static OpSpec> {
    let n = crate::input::header::normalize(name);
    OPERATIONS
        .iter()
        .copied()
        .find(|op| crate::input::header::normalize(op.name) == n)
}

/// Why `name` is no operation: with the one it is closest to ("did you mean"), and every name.
pub fn unknown(name: &str) -> String {
    let n = crate::input::header::normalize(name);
    let closest = OPERATIONS
        .iter()
        .map(|op| {
            let o = crate::input::header::normalize(op.name);
            (strsim::damerau_levenshtein(&n, &o), op.name)
        })
        .min()
        .filter(|(d, _)| *d <= 3 && !n.is_empty());
    let hint = closest
        .map(|(_, name)| format!(": did you mean {name}?"))
        .unwrap_or_default();
    format!(
        "{name:?} is not an operation{hint} (the operations: {})",
        names()
    )
}

/// The names of all operations, for messages.
pub fn names() -> String {
    OPERATIONS
        .iter()
        .map(|o| o.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every column any operation reads, plus `operation` for mixed files.
pub fn all_columns() -> Vec<&'static str> {
    let mut cols = vec!["operation"];
    for op in OPERATIONS {
        for c in op.columns() {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
    }
    cols
}

/// One data row's values by canonical column, trimmed; empty cells are absent. Borrows the cells:
/// validating a row allocates nothing until a change is built.
#[derive(Debug, Default, Clone)]
pub struct Row<'a> {
    values: Vec<(&'static str, &'a str)>,
    /// Columns whose `#N/A` is the value itself, not a request to clear (an escaped `'#N/A` in a
    /// file pcbulk wrote: see `crate::undo_file`).
    literal: Vec<&'static str>,
}

impl<'a> Row<'a> {
    pub fn new() -> Self {
        Row {
            values: Vec::new(),
            literal: Vec::new(),
        }
    }

    /// A row with room for `n` columns.
    pub fn with_capacity(n: usize) -> Self {
        Row {
            values: Vec::with_capacity(n),
            literal: Vec::new(),
        }
    }

    pub fn with(mut self, column: &'static str, value: &'a str) -> Self {
        self.set(column, value);
        self
    }

    pub fn set(&mut self, column: &'static str, value: &'a str) {
        self.set_exact(column, crate::input::row::trim(value));
    }

    /// Sets a column to a value already trimmed, as it is: a marked file's cell, whose leading tab
    /// or space pcbulk escaped (`'\tx`) so that it is the value's own.
    pub fn set_exact(&mut self, column: &'static str, value: &'a str) {
        // At most one is there: every set keeps it so.
        if let Some(i) = self.values.iter().position(|(c, _)| *c == column) {
            self.values.remove(i);
        }
        self.literal.retain(|c| *c != column);
        if !value.is_empty() {
            self.values.push((column, value));
        }
    }

    /// Sets a column whose value is taken as it is: a `#N/A` there is text, not a clear.
    pub fn set_literal(&mut self, column: &'static str, value: &'a str) {
        self.set(column, value);
        if !self.literal.contains(&column) {
            self.literal.push(column);
        }
    }

    /// Whether the row asks to clear `column` (its cell is `#N/A`, and not the text itself).
    pub fn clears(&self, column: &str) -> bool {
        self.get(column).is_some_and(check::is_clear) && !self.literal.contains(&column)
    }

    /// The trimmed value of a column, or `None` when the cell is empty or the column absent.
    pub fn get(&self, column: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| *v)
    }
}

/// One thing wrong with a row, found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The canonical column at fault, if one is.
    pub column: Option<&'static str>,
    /// A stable pcbulk code for the results file (`invalid_guid`, ...).
    pub code: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl Problem {
    pub fn new(column: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            column: Some(column),
            code,
            message: message.into(),
        }
    }
}

/// How a change ended when the service accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The target already had the requested values; nothing was written.
    Unchanged,
}

/// What validating a row gives: the change to send, or everything wrong with the row.
pub type Planned = Result<Box<dyn Change>, Vec<Problem>>;

/// A validated row, ready to send.
pub trait Change: Send + Sync + fmt::Debug {
    /// What the row changes, for spotting two rows that change the same thing (`None`: rows may
    /// repeat, as notes on one service request do).
    fn target(&self) -> Option<String>;

    /// What the row touches, for running rows that touch the same thing one after another, in input
    /// order (so before-values and "is my note there yet?" checks are exact). By default its target;
    /// notes on one service request share the request.
    fn touches(&self) -> Option<String> {
        self.target()
    }

    /// Makes the calls that apply the change.
    fn apply<'a>(&'a self, api: &'a dyn Api) -> BoxFuture<'a, Result<Applied, CallError>>;

    /// What the row changes, given what it found (`before`, by column, as recorded): for the
    /// results' `change` column, `field: "before" → "after"` joined with `; `.
    fn describe(&self, before: &std::collections::BTreeMap<String, String>) -> String;

    /// Whether the row's write went in, judged from what the service holds now (`extra`: the
    /// row's extra before-values, as recorded). Asked when a write's outcome is unknown (see
    /// [`may_have_been_applied`]), at each of [`look_times`]. `None`: the operation cannot tell, and
    /// the write is sent again under its MS-RequestId for the service to recognise.
    fn landed<'a>(
        &'a self,
        _api: &'a dyn Api,
        _extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<bool>, CallError>> {
        Box::pin(async { Ok(None) })
    }

    /// After a crash: settles a write whose outcome is unknown (`pending`, as journaled, with the
    /// row's journaled `extra` before-values). Returns `Some` when the row is done, `None` when it
    /// should be applied afresh. The service is looked at first ([`Change::landed`]: at once, and
    /// for a write that is not idempotent at each of [`look_times`] after, as the write may still
    /// be on its way); a write absent at every look is sent again with its own MS-RequestId (a new
    /// one if it was answered), and one the looks cannot find or rule out ends the row as
    /// `outcome_unknown`. Every operation's journaled write is its last call.
    fn settle<'a>(
        &'a self,
        api: &'a dyn Api,
        pending: Pending,
        extra: &'a Extra,
    ) -> BoxFuture<'a, Result<Option<Applied>, CallError>> {
        Box::pin(resend(self, api, pending, extra, true))
    }

    /// After a crash, before anything is sent: whether a journaled write is one this row makes (its
    /// method, path, body and If-Match), so that a journal never makes pcbulk send what the input
    /// did not ask for. What is wrong, if it is not.
    fn check_write(&self, call: &Request) -> Result<(), String>;

    /// After a crash: whether what the row journaled beyond its before-values is what it journals.
    /// By default, a row journals nothing there.
    fn check_extra(
        &self,
        extra: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), String> {
        match extra.keys().next() {
            Some(k) => Err(format!("{k:?} is not something this operation journals")),
            None => Ok(()),
        }
    }
}

/// Whether a journaled write has the method and one of the paths a row's write has, and no
/// If-Match unless `etag` is given (then that one).
pub fn check_call(
    call: &crate::api::Request,
    method: crate::api::Method,
    paths: &[&str],
    etag: Option<&str>,
) -> Result<(), String> {
    if call.method != method || !paths.contains(&call.path.as_str()) {
        return Err(format!(
            "the row sends {} {}",
            method.as_str(),
            paths.join(" or ")
        ));
    }
    if call.if_match.as_deref() != etag {
        return Err(match etag {
            Some(_) => "its If-Match is not the ETag in its body".into(),
            None => "the row sends no If-Match".into(),
        });
    }
    Ok(())
}

/// `column: "before" → "after"` for each column whose value changes, joined with `; `; values are
/// quoted as Rust's `{:?}` quotes them.
pub fn describe_changes<'a>(
    before: &std::collections::BTreeMap<String, String>,
    after: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut out = String::with_capacity(256);
    for (col, to) in after {
        let from = before.get(col).map_or("", String::as_str);
        if from == to {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(col);
        out.push_str(": ");
        push_quoted(&mut out, from);
        out.push_str(" → ");
        push_quoted(&mut out, to);
    }
    out
}

/// Appends `value` as `{:?}` writes it, without the formatting machinery for the common case: plain
/// printable ASCII needs no escape (this runs for every row of a run).
fn push_quoted(out: &mut String, value: &str) {
    if value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        use std::fmt::Write;
        let _ = write!(out, "{value:?}");
    }
}

/// What a row records beyond its columns' before-values, for [`Change::landed`] and a resume.
pub type Extra = std::collections::BTreeMap<String, serde_json::Value>;

/// How many times a write whose outcome was unknown, and then not found, is sent again before its
/// row fails.
pub(crate) const LOST_ANSWERS: usize = 5;

/// How many times a write is looked for after its outcome became unknown.
pub const LOOKS: u32 = 3;

/// The least time between the loss of a write's answer and each of its looks, in steps: looks
/// come no sooner than 1, 2 and 3 seconds after it, whatever `--timeout` is.
pub const LOOK_STEP_AT_LEAST: Duration = Duration::from_secs(1);

/// Whether a write that ended with `e` may have been applied all the same, so that what the
/// service holds is looked at before anything is sent again.
///
/// Decided here, above the transport, so that it holds whatever sends the calls: any error after
/// the request may have left (a timeout, a connection lost, an answer that could not be read)
/// leaves the outcome unknown, and so does a 408 or 5xx answer to a write (a gateway may give one
/// after the service applied the write). A PUT is settled so too, though sending it again would
/// set the same values: the service would still record a second change, and whatever changed the
/// resource in between would be overwritten. A call that could not connect, a refusal (other
/// 4xx), and what pcbulk did not send are known not to have been applied.
pub fn may_have_been_applied(e: &CallError, req: &Request) -> bool {
    match e {
        CallError::Service(s) => {
            req.method != crate::api::Method::Get && matches!(s.status, 408 | 500..=599)
        }
        CallError::Transport { .. } | CallError::Decode(_) => true,
        _ => false,
    }
}

/// When a write whose outcome is unknown is looked for, counted from the moment it became unknown.
///
/// A service may finish a write well after its client gave up: behind load balancers and app
/// servers a request is processed to its end whether or not anyone still waits for the answer, so
/// a write not found at once may still be on its way, and sending it again would apply it twice.
/// A write is therefore looked for [`LOOKS`] times: at 1×, 2× and 3×
/// the call's timeout (`--timeout`, the time pcbulk allows the service for one call) after the
/// loss, and never sooner than 1, 2 and 3 seconds after it ([`LOOK_STEP_AT_LEAST`]). A service
/// that took a whole timeout over the call and as long again is seen by the second look; the
/// third allows for one slower still. Only a write absent at every look may go again. With the
/// default 30-second timeout that is 90 seconds before a write goes again; with `--timeout 0.5`,
/// 3 seconds.
///
/// `sent_ago` (a resume, settling a write a crash left unanswered) adds a look at once (if it is
/// there already, there is nothing to wait for), and counts the others from when the write was
/// sent, `sent_ago` before now: a run resumed an hour after the crash looks once, at once.
pub fn look_times(timeout: Duration, sent_ago: Option<Duration>) -> Vec<Duration> {
    let later = (1..=LOOKS).map(|k| (timeout * k).max(LOOK_STEP_AT_LEAST * k));
    match sent_ago {
        None => later.collect(),
        Some(ago) => std::iter::once(Duration::ZERO)
            .chain(later.filter(|t| *t > ago).map(|t| t - ago))
            .collect(),
    }
}

/// What looking at the service for a write whose outcome is unknown found.
enum Found {
    /// At some look, the service held the write.
    Landed,
    /// Every look found the service without it.
    Absent,
    /// The operation cannot tell ([`Change::landed`] gave `None`).
    CannotTell,
    /// A look failed, and none found the write: it may or may not be there.
    Unknown(CallError),
}

/// Looks for a row's write at each of `times` after now (see [`look_times`]).
async fn look_for<C: Change + ?Sized>(
    change: &C,
    api: &dyn Api,
    extra: &Extra,
    times: &[Duration],
) -> Found {
    let from = tokio::time::Instant::now();
    let mut failed = None;
    for at in times {
        tokio::time::sleep_until(from + *at).await;
        match change.landed(api, extra).await {
            Ok(Some(true)) => return Found::Landed,
            Ok(Some(false)) => {}
            Ok(None) => return Found::CannotTell,
            Err(e) => failed = Some(e),
        }
    }
    failed.map_or(Found::Absent, Found::Unknown)
}

/// The error of a row whose write may or may not have been applied: what left its outcome unknown
/// (`why`; `None` after a crash), the look that failed, and what to check.
fn outcome_unknown<C: Change + ?Sized>(
    change: &C,
    why: Option<&CallError>,
    look: &CallError,
) -> CallError {
    let what = change
        .touches()
        .unwrap_or_else(|| "what the row changes".to_owned());
    let why = match why {
        Some(CallError::Service(e)) => format!(
            "the service answered {} ({})",
            e.status,
            e.message.trim_end_matches('.')
        ),
        Some(e) => format!(
            "its answer was lost ({})",
            e.to_string().trim_end_matches('.')
        ),
        None => "an earlier run sent it and did not learn whether it was applied".to_owned(),
    };
    let look = look.to_string();
    CallError::OutcomeUnknown(format!(
        "the write may or may not have been applied: {why}, and looking at the service afterwards \
         failed ({}). It was not sent again: check {what} in Partner Center before sending this \
         row again (--retry-failed looks for it first and sends it only if it is not there)",
        look.trim_end_matches('.')
    ))
}

/// Settles a pending write after a crash by [`write_once`] (looking at the service first when
/// `look_first`): `Some` when the row is done; `None` when it should be applied afresh, after a
/// refusal that is not about the service's health (a stale ETag, say, after an edit in between)
/// and a look that did not find the row's values (the crashed run's copy, landing late, may be
/// the edit: then the row succeeded).
/// A write that was answered goes again under a new MS-RequestId: the service has an answer under
/// the old one.
pub async fn resend<C: Change + ?Sized>(
    change: &C,
    api: &dyn Api,
    pending: Pending,
    extra: &Extra,
    look_first: bool,
) -> Result<Option<Applied>, CallError> {
    let id = match pending.answered {
        true => uuid::Uuid::new_v4(),
        false => pending.request_id,
    };
    // Unknown (a journal without the time): as if it had just been sent.
    let sent_ago = pending
        .sent_at
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let resumed = Resumed {
        sent_ago,
        look_first,
    };
    match write_once(change, api, pending.request, id, extra, Some(resumed)).await {
        Ok(()) => Ok(Some(Applied::Changed)),
        Err(CallError::Service(e))
            if (400..500).contains(&e.status) && !matches!(e.status, 408 | 429) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sends a row's write so that it lands once, whether or not the service recognises a repeated
/// MS-RequestId. When its outcome is unknown ([`may_have_been_applied`]), what the service holds
/// is looked at ([`Change::landed`], at [`look_times`]) before it goes again: found, the row
/// succeeded; absent at every look, it goes again (under the same MS-RequestId after a lost
/// answer, a new one after an answer); a look that fails ends the row as `outcome_unknown`, never
/// with a second copy. `resumed` (a resume settling a write a crashed run sent) may look before
/// the first send too. Once a copy may have been applied, a refusal of the next (a stale ETag,
/// say, which that copy may have caused) is believed only after a look finds the row's values
/// not there. An operation that cannot tell has its write sent again blindly, for the service's
/// replay to recognise. Sends are bounded by `--max-attempts` and [`LOST_ANSWERS`].
pub async fn write_once<C: Change + ?Sized>(
    change: &C,
    api: &dyn Api,
    req: Request,
    request_id: uuid::Uuid,
    extra: &Extra,
    resumed: Option<Resumed>,
) -> Result<(), CallError> {
    let timeout = api.call_timeout();
    let mut id = request_id;
    let mut looks = resumed
        .filter(|r| r.look_first)
        .map(|r| look_times(timeout, Some(r.sent_ago)));
    // What left the write's outcome unknown, the last time it did.
    let mut unknown: Option<CallError> = None;
    // Whether a copy sent before the next may have been applied (a crashed run's is, to a resume).
    let mut copy_out = resumed.is_some();
    let mut sends = api.max_sends().clamp(1, LOST_ANSWERS + 1);
    loop {
        if let Some(times) = looks.take() {
            match look_for(change, api, extra, &times).await {
                Found::Landed => return Ok(()),
                Found::Absent => {}
                Found::CannotTell => return api.resend(req, id).await.map(drop),
                Found::Unknown(e) => return Err(outcome_unknown(change, unknown.as_ref(), &e)),
            }
            if sends == 0 {
                return Err(unknown.expect("no sends are left only after one"));
            }
        }
        sends -= 1;
        match api.send_unrepeatable(req.clone(), id).await {
            Ok(_) => return Ok(()),
            Err(e) if may_have_been_applied(&e, &req) => {
                if matches!(e, CallError::Service(_)) {
                    id = uuid::Uuid::new_v4();
                }
                looks = Some(look_times(timeout, None));
                unknown = Some(e);
                copy_out = true;
            }
            Err(e @ CallError::Service(_)) if copy_out => {
                return refused_after_a_copy(change, api, extra, e, unknown.as_ref()).await
            }
            Err(e) => return Err(e),
        }
    }
}

/// A write a resume settles: the copy a crashed run sent may still be on its way.
#[derive(Debug, Clone, Copy)]
pub struct Resumed {
    /// How long ago the crashed run sent it.
    pub sent_ago: Duration,
    /// Whether it is looked for before it goes again (see [`Change::settle`]); a row whose write
    /// carries its If-Match, or that has just read the target, sends it at once.
    pub look_first: bool,
}

/// A write refused by the service (`refusal`, a 4xx) after an earlier copy of it may have been
/// applied: the refusal may be that copy's doing (a stale ETag: the copy, landing late, is what
/// changed the target). The service is looked at once: holding the row's values, the write went
/// in; otherwise the refusal stands. A look that fails leaves the outcome unknown (`why`: what left
/// it unknown in this run, if anything).
async fn refused_after_a_copy<C: Change + ?Sized>(
    change: &C,
    api: &dyn Api,
    extra: &Extra,
    refusal: CallError,
    why: Option<&CallError>,
) -> Result<(), CallError> {
    match change.landed(api, extra).await {
        Ok(Some(true)) => Ok(()),
        Ok(_) => Err(refusal),
        Err(look) => Err(outcome_unknown(change, why, &look)),
    }
}

/// A write whose outcome is unknown: the call and its MS-RequestId.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request: Request,
    pub request_id: uuid::Uuid,
    /// The service answered it (a 408 or 5xx, which does not say whether it was applied): sent
    /// again, it goes under a new MS-RequestId.
    pub answered: bool,
    /// When it was sent, if the journal says.
    pub sent_at: Option<std::time::SystemTime>,
}

/// Collects problems while a row is checked, then yields the change or all the problems at once.
#[derive(Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.0.push(p);
    }

    /// Keeps the value when the check passed, records the problem otherwise.
    pub fn take<T>(&mut self, r: Result<T, Problem>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(p) => {
                self.0.push(p);
                None
            }
        }
    }

    pub fn finish<C: Change + 'static>(
        self,
        build: impl FnOnce() -> Option<C>,
    ) -> Result<Box<dyn Change>, Vec<Problem>> {
        if !self.0.is_empty() {
            return Err(self.0);
        }
        match build() {
            Some(c) => Ok(Box::new(c)),
            None => Err(vec![Problem {
                column: None,
                code: "invalid_row",
                message: "the row could not be read".into(),
            }]),
        }
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn a_change_quotes_values_exactly_as_debug_does(from in "\\PC*|[ -~]*", to in "[ -~]*|.*") {
            let before = [("c".to_owned(), from.clone())].into_iter().collect();
            let got = super::describe_changes(&before, [("c", to.as_str())]);
            let want = if from == to { String::new() } else { format!("c: {from:?} → {to:?}") };
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_write_is_looked_for_three_times_scaled_by_the_timeout() {
        use std::time::Duration;
        let s = Duration::from_secs_f64;
        assert_eq!(
            super::look_times(s(30.0), None),
            [s(30.0), s(60.0), s(90.0)]
        );
        assert_eq!(
            super::look_times(s(0.5), None),
            [s(1.0), s(2.0), s(3.0)],
            "never sooner than 1, 2 and 3 seconds"
        );
        assert_eq!(
            super::look_times(s(2.0), Some(s(0.0))),
            [s(0.0), s(2.0), s(4.0), s(6.0)],
            "a resume looks at once, then as after a loss"
        );
        assert_eq!(
            super::look_times(s(2.0), Some(s(3.0))),
            [s(0.0), s(1.0), s(3.0)],
            "counted from when the write was sent"
        );
        assert_eq!(
            super::look_times(s(30.0), Some(s(3600.0))),
            [s(0.0)],
            "an hour after the crash: once, at once"
        );
    }

    #[test]
    fn what_undo_puts_back_is_an_operation_s_own_column_and_never_a_key() {
        for op in super::OPERATIONS {
            for c in op.undoable {
                assert!(op.columns().any(|k| k == *c), "{}: {c}", op.name);
                assert!(!op.undo_keys.contains(c), "{}: {c}", op.name);
            }
        }
    }
}

/// A scripted [`Api`] for the operations' tests: answers in order, records every request.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use crate::api::{Api, CallError, Request, Response, ServiceError};

    /// One scripted answer.
    pub type Answer = Result<Response, CallError>;

    #[derive(Default)]
    pub struct FakeApi {
        answers: Mutex<VecDeque<Result<Response, CallError>>>,
        pub sent: Mutex<Vec<Request>>,
        /// The MS-RequestId of each write sent with one given.
        pub ids: Mutex<Vec<uuid::Uuid>>,
        pub before: Mutex<std::collections::BTreeMap<String, String>>,
        /// `--max-attempts`.
        pub max_sends: usize,
    }

    impl FakeApi {
        pub fn new(answers: Vec<Result<Response, CallError>>) -> Self {
            FakeApi {
                answers: Mutex::new(answers.into()),
                sent: Mutex::default(),
                ids: Mutex::default(),
                before: Mutex::default(),
                max_sends: 6,
            }
        }
    }

    pub fn ok(body: serde_json::Value) -> Result<Response, CallError> {
        Ok(Response {
            status: 200,
            body: serde_json::to_vec(&body).unwrap(),
            ..Response::default()
        })
    }

    pub fn fail(status: u16, code: Option<&str>) -> Result<Response, CallError> {
        Err(CallError::Service(ServiceError {
            status,
            code: code.map(str::to_owned),
            message: format!("HTTP {status}"),
        }))
    }

    impl Api for FakeApi {
        fn call(&self, req: Request) -> BoxFuture<'_, Result<Response, CallError>> {
            self.sent.lock().unwrap().push(req);
            let next = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("script ran out");
            Box::pin(async move { next })
        }

        fn resend(
            &self,
            req: Request,
            id: uuid::Uuid,
        ) -> BoxFuture<'_, Result<Response, CallError>> {
            self.ids.lock().unwrap().push(id);
            self.call(req)
        }

        fn max_sends(&self) -> usize {
            self.max_sends
        }

        fn record_before(
            &self,
            values: std::collections::BTreeMap<String, String>,
            _extra: std::collections::BTreeMap<String, serde_json::Value>,
        ) {
            self.before.lock().unwrap().extend(values);
        }
    }
}
