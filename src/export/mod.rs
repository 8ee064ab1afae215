//! `pcbulk export`'s walk: list the targets an operation has (customers page by page, their
//! subscriptions, a partner-wide listing), read each one's current values through the dispatcher
//! (paced, retried, authenticated, stopped like apply's calls), and yield the operation's rows in
//! listing order.
//!
//! Targets are read concurrently, a bounded number of customers at a time, and their rows come out
//! in order through that bounded window: memory holds the customers in progress, never the export.

pub mod filter;
pub mod listing;
pub mod writer;

use futures::stream::{self, LocalBoxStream, StreamExt};
use serde_json::{json, Value};

use crate::api::{Api, CallError, Request};
use crate::dispatch::Dispatcher;
use crate::ops::export::{ExportRow, ExportSpec, Found, Walk};
use crate::ops::{OpSpec, Row};
use filter::Filter;

/// What to export.
pub struct Job {
    pub op: &'static OpSpec,
    pub spec: &'static ExportSpec,
    /// The output's columns: the operation's (`pcbulk template`'s), its walk's context, its own
    /// carried ones. The marker column is the writer's.
    pub columns: Vec<&'static str>,
    pub filters: Vec<Filter>,
    /// `--customer` / `--customers`: only these (read by id), in this order.
    pub customers: Option<Vec<String>>,
    /// The `size` asked of each page of the customer listing.
    pub page_size: usize,
}

/// What the walk yields for a target, in listing order.
#[derive(Debug)]
pub enum Produced {
    /// A row's cells, in [`Job::columns`] order; `blanked` cells were left empty because the
    /// value read is one a row may not hold (see [`Job::fit`]).
    Row { cells: Vec<String>, blanked: usize },
    /// A target whose read failed: what it was, and why.
    Failed { target: String, error: CallError },
}

/// One target (or group of targets) the walk reads.
enum Unit {
    /// A customer as listed.
    Customer(Value),
    /// A customer named by `--customer`, read by id.
    CustomerId(String),
    /// An item of a partner-wide listing.
    Item(Value),
    /// The partner itself.
    Partner,
}

impl Job {
    /// The columns an export of `op` writes.
    pub fn columns_of(op: &'static OpSpec, spec: &ExportSpec) -> Vec<&'static str> {
        let named = op.partner_wide.then_some("operation");
        let mut columns: Vec<&'static str> = named.into_iter().chain(op.columns()).collect();
        for c in spec.walk.context().iter().chain(spec.carried) {
            if !columns.contains(c) {
                columns.push(c);
            }
        }
        columns
    }

    /// The stream of units, in listing order.
    fn units<'a>(&'a self, api: &'a dyn Api) -> LocalBoxStream<'a, Result<Unit, CallError>> {
        match (self.spec.walk, &self.customers) {
            (Walk::Partner, _) => stream::iter([Ok(Unit::Partner)]).boxed_local(),
            (Walk::PartnerList(path), _) => listing::items(api, path.to_owned())
                .map(|r| r.map(Unit::Item))
                .boxed_local(),
            (_, Some(ids)) => {
                stream::iter(ids.iter().cloned().map(|id| Ok(Unit::CustomerId(id)))).boxed_local()
            }
            (_, None) => listing::items(api, format!("/customers?size={}", self.page_size))
                .map(|r| r.map(Unit::Customer))
                .boxed_local(),
        }
    }

    /// Whether a target may still give a row, by the `--where` columns already known before it is
    /// read (a customer's id and names, a subscription's): a target that cannot is not read.
    fn may_hold(&self, found: &Found) -> bool {
        self.filters
            .iter()
            .all(|f| known(found, f.column).is_none_or(|v| f.holds(v)))
    }

    /// The cells of a target's row, in column order.
    fn cells(&self, found: &Found, values: ExportRow) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| match values.iter().find(|(k, _)| k == c) {
                Some((_, v)) => v.clone(),
                None if *c == "operation" => self.op.name.to_owned(),
                None => found.context(c).to_owned(),
            })
            .collect()
    }

    /// Whether every `--where` holds on a row.
    fn keeps(&self, cells: &[String]) -> bool {
        self.filters.iter().all(|f| {
            let i = self.columns.iter().position(|c| *c == f.column);
            i.is_some_and(|i| f.holds(&cells[i]))
        })
    }

    /// Leaves empty the optional cells whose value read is one the operation would refuse in a
    /// row (an e-mail the service holds that pcbulk's checks do not accept, say): an empty cell
    /// keeps the field as it is, so the row still applies unchanged. Returns how many.
    fn fit(&self, cells: &mut [String]) -> usize {
        let at_fault: Vec<&'static str> = {
            let mut row = Row::with_capacity(self.columns.len());
            for (c, v) in self.columns.iter().zip(cells.iter()) {
                row.set_literal(c, v);
            }
            match (self.op.plan)(&row) {
                Ok(_) => return 0,
                Err(problems) => problems.iter().filter_map(|p| p.column).collect(),
            }
        };
        let mut blanked = 0;
        for column in at_fault {
            let optional = !self.op.required.contains(&column);
            if let Some(i) = self.columns.iter().position(|c| *c == column) {
                if optional && !cells[i].is_empty() {
                    cells[i].clear();
                    blanked += 1;
                }
            }
        }
        blanked
    }

    /// Reads one target and makes its row: `None` when it has none, or `--where` drops it.
    async fn read(&self, api: &dyn Api, found: Found<'_>) -> Option<Produced> {
        if !self.may_hold(&found) {
            return None;
        }
        match (self.spec.read)(api, found).await {
            Ok(None) => None,
            Ok(Some(values)) => {
                let mut cells = self.cells(&found, values);
                if !self.keeps(&cells) {
                    return None;
                }
                let blanked = self.fit(&mut cells);
                Some(Produced::Row { cells, blanked })
            }
            Err(error) => Some(Produced::Failed {
                target: describe(&found),
                error,
            }),
        }
    }

    /// Every row (or failure) one unit gives, in order.
    async fn unit(&self, d: &Dispatcher, seq: usize, unit: Unit) -> Vec<Produced> {
        let api = d.reader(seq);
        let customer = match unit {
            Unit::Partner => {
                return self
                    .read(&api, Found::default())
                    .await
                    .into_iter()
                    .collect()
            }
            Unit::Item(item) => {
                let found = Found {
                    item: Some(&item),
                    ..Found::default()
                };
                return self.read(&api, found).await.into_iter().collect();
            }
            Unit::Customer(c) => c,
            Unit::CustomerId(id) => match read_customer(&api, &id).await {
                Ok(c) => c,
                Err(error) => {
                    let target = format!("customer {id}");
                    return vec![Produced::Failed { target, error }];
                }
            },
        };
        let customer = match checked_id(customer, "customer") {
            Ok(c) => c,
            Err(error) => return vec![failed("a customer of the listing", error)],
        };
        let found = Found {
            customer: Some(&customer),
            ..Found::default()
        };
        match self.spec.walk {
            Walk::Subscriptions => self.subscriptions(&api, found).await,
            _ => self.read(&api, found).await.into_iter().collect(),
        }
    }

    /// The rows of a customer's subscriptions, read concurrently and given in listing order.
    async fn subscriptions(&self, api: &dyn Api, customer: Found<'_>) -> Vec<Produced> {
        if !self.may_hold(&customer) {
            return Vec::new();
        }
        let path = format!("/customers/{}/subscriptions", customer.customer_id());
        let listed: Result<Vec<Value>, CallError> = listing::items(api, path)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect();
        let subs = match listed {
            Ok(subs) => subs,
            Err(error) => return vec![failed(&describe(&customer), error)],
        };
        let subs: Vec<Result<Value, CallError>> = subs
            .into_iter()
            .map(|s| checked_id(s, "subscription"))
            .collect();
        let reads = subs.iter().map(|s| async move {
            match s {
                Ok(s) => {
                    let found = Found {
                        subscription: Some(s),
                        ..customer
                    };
                    self.read(api, found).await
                }
                Err(e) => Some(failed(&describe(&customer), clone_error(e))),
            }
        });
        futures::future::join_all(reads)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The value of a `--where` column known before a target is read.
fn known<'a>(found: &Found<'a>, column: &str) -> Option<&'a str> {
    match column {
        "customer_id" => found.customer.map(|_| found.customer_id()),
        "subscription_id" => found.subscription.map(|_| found.subscription_id()),
        "customer_name" | "customer_domain" => found.customer.map(|_| found.context(column)),
        "subscription_name" | "offer_name" => found.subscription.map(|_| found.context(column)),
        _ => None,
    }
}

/// What a target is, for a failure's message.
fn describe(found: &Found) -> String {
    match (found.customer, found.subscription, found.item) {
        (_, Some(_), _) => format!(
            "subscription {} of customer {}",
            found.subscription_id(),
            found.customer_id()
        ),
        (Some(_), None, _) => format!("customer {}", found.customer_id()),
        (None, None, Some(_)) => format!("item {:?} of the listing", found.item_str("id")),
        (None, None, None) => "the partner".to_owned(),
    }
}

fn failed(target: &str, error: CallError) -> Produced {
    Produced::Failed {
        target: target.to_owned(),
        error,
    }
}

/// A listed resource whose `id` is a GUID, set lower-case (it goes into the paths of later calls:
/// an id that is none is refused, never sent).
fn checked_id(mut v: Value, what: &str) -> Result<Value, CallError> {
    let id = crate::ops::json::get_str(&v, "id").unwrap_or("");
    match crate::ops::check::guid("id", id) {
        Ok(g) => {
            v["id"] = json!(g);
            Ok(v)
        }
        Err(_) => Err(CallError::Decode(format!(
            "the listing holds a {what} whose id {:?} is not a GUID",
            crate::api::error::clean(id, &[])
        ))),
    }
}

/// A customer read by id (`--customer`): its id checked first.
async fn read_customer(api: &dyn Api, id: &str) -> Result<Value, CallError> {
    api.call(Request::get(format!("/customers/{id}")))
        .await?
        .json()
}

/// `CallError` is not `Clone`; the errors cloned here are pcbulk's own decoding refusals.
fn clone_error(e: &CallError) -> CallError {
    CallError::Decode(e.to_string())
}

/// Walks the job's targets through `d`, `window` units at a time, giving each row or failure to
/// `emit` in listing order. Ends early with the error that stopped it: a listing that could not be
/// read to its end, or the run's stop (interrupt, credentials refused, service out of reach).
pub async fn walk(
    job: &Job,
    d: &Dispatcher,
    window: usize,
    mut emit: impl FnMut(Produced),
) -> Result<(), CallError> {
    let lister = d.reader(0);
    let mut results = job
        .units(&lister)
        .enumerate()
        .map(|(i, unit)| async move {
            match unit {
                Ok(unit) => Ok(job.unit(d, i + 1, unit).await),
                Err(e) => Err(e),
            }
        })
        .buffered(window.max(1));
    while let Some(done) = results.next().await {
        for p in done? {
            if let Produced::Failed { error, .. } = &p {
                stop_for(d, error);
            }
            if let Some(reason) = d.stop.reason() {
                return Err(CallError::Aborted(reason));
            }
            emit(p);
        }
        if let Some(reason) = d.stop.reason() {
            return Err(CallError::Aborted(reason));
        }
    }
    Ok(())
}

/// A failure that ends the whole export: credentials refused.
fn stop_for(d: &Dispatcher, error: &CallError) {
    if let CallError::Unauthorized(_) = error {
        d.stop.raise(format!("credentials refused: {error}"));
    }
}
