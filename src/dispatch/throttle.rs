//! The adaptive rate controller: finds the service's unpublished limit, uses it, and backs off
//! politely. Hand-written: rate-limiting crates (governor) fix their quota at construction, and this
//! rate changes between calls.
//!
//! The partner's pacer is also the `--rate` ceiling: every call passes it, and its rate never
//! exceeds the ceiling (slow start stops there, the cubic curve is clamped to it). Its slots are
//! spaced by its rate; one slot of catch-up credit and a slot taken up to a [`TICK`] early are all
//! a call may run ahead, so on average the calls never exceed `--rate`.
//!
//! One [`Pacer`] for the partner and one per customer tenant. Each starts at half the ceiling
//! and doubles every half second (slow start) until the first 429. A 429 whose Retry-After is short
//! (under [`LONG_WAIT`]) means "slower": the pacer remembers the rate it could sustain (`w_max`, the
//! smaller of its rate and the successes per second of the last [`SPAN`], over at least a second),
//! drops to `BETA × w_max`, and climbs back along a cubic curve, as CUBIC and the AWS SDKs'
//! adaptive mode do: quickly while far below `w_max`, flat near it, then probing above, gently
//! (a fixed window's limit is met within a window of probing, and every call refused in it may
//! count against the next). Slow start's first 429 cuts deeper ([`BETA_FIRST`]) and sends nothing
//! until its Retry-After has passed: slow start overshoots, and what it sends past the limit is
//! refused. 429s within [`COOLDOWN`] of a cut belong to the same episode and do not cut again, but
//! every 429 skips a send slot: where refusals count against the limit, each spent a call it would
//! have admitted. A limit found again where it was found last time is held longer before the curve
//! probes above it (up to [`MAX_HOLD`]): a fixed limit gains nothing from probing. A
//! 429 with a long Retry-After means "blocked until then" (a long fixed window): the pacer sends
//! nothing until that moment, rather than collecting more 429s, then resumes at the rate the closed
//! window admitted, its curve running on the window's time. A 429 for
//! a call sent before the pacer last reacted says nothing new and is ignored.
//!
//! A 429 is one customer's limit only when that customer's calls meet 429s twice within [`SPREAD`]
//! and no other customer's do; then only its pacer slows. Otherwise it is the partner's: the
//! partner's pacer slows, and customers' pacers cut for it meanwhile are forgotten. A call that passed
//! its pacers and then waited for a permit while a 429 paused them waits out the pause too (see
//! `RowApi::permit_unpaused`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

// Keys are tenant ids from the file, hashed on every call: FxHash, not SipHash (no key here is
// chosen to collide, and a collision costs a probe, not correctness).
use rustc_hash::FxHashMap as HashMap;

use tokio::time::Instant;

/// Multiplicative decrease on a throttle.
pub const BETA: f64 = 0.9;
/// The decrease when slow start meets its first throttle: deeper, because slow start overshoots
/// and the calls it sent past the limit are owed where refusals count against it.
pub const BETA_FIRST: f64 = 0.8;
/// The decrease when a throttle comes within [`AGAIN`] of the last cut: that cut was not enough
/// (a limit in debt, where refused calls count against it, admits nothing until the calls slow
/// well below it).
pub const BETA_AGAIN: f64 = 0.7;
/// See [`BETA_AGAIN`].
pub const AGAIN: Duration = Duration::from_secs(2);
/// Cubic growth constant, as a share of `w_max` per second³.
pub const C: f64 = 0.01;
/// Slow start: the rate doubles every this long until the first throttle.
pub const DOUBLING: Duration = Duration::from_millis(500);
/// The timer's granularity: a slot due within this long is taken at once rather than slept for (a
/// shorter sleep is not possible, and sleeping a whole tick per call would cap a pacer near 1,000
/// calls a second). Slots stay spaced by the rate, so the average never exceeds it.
pub const TICK: Duration = Duration::from_millis(1);
/// A Retry-After at least this long is read as "blocked until then".
pub const LONG_WAIT: Duration = Duration::from_secs(2);
/// After a cut, further 429s are part of the same episode (the service's bucket is still empty) for
/// this long, and do not cut again.
pub const COOLDOWN: Duration = Duration::from_secs(1);
/// How far back the successes that tell the admitted rate are counted.
pub const SPAN: Duration = Duration::from_secs(4);
/// The longest the curve stays level at a limit found again where it was before.
pub const MAX_HOLD: Duration = Duration::from_secs(30);
/// The rate never goes below this (calls per second).
pub const MIN_RATE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    SlowStart,
    Avoidance,
}

/// One adaptive rate: when the next call may go.
#[derive(Debug)]
pub struct Pacer {
    ceiling: f64,
    phase: Phase,
    /// The slow-start rate as of `grown_at`.
    rate: f64,
    grown_at: Instant,
    w_max: f64,
    /// The decrease of the last cut: [`BETA`], or [`BETA_FIRST`].
    beta: f64,
    last_cut: Instant,
    next_slot: Instant,
    paused_until: Option<Instant>,
    /// When the calls of the last [`SPAN`] succeeded.
    successes: VecDeque<Instant>,
    /// Successes since the last pause began.
    since_pause: u32,
    /// Seconds per unit of the cubic curve's time: 1, or the length of the fixed window a long
    /// Retry-After showed.
    scale: f64,
    /// How long the curve stays level at `w_max` before probing above it.
    hold: Duration,
    started: Instant,
}

impl Pacer {
    pub fn new(ceiling: f64, now: Instant) -> Self {
        Pacer {
            ceiling,
            phase: Phase::SlowStart,
            rate: (ceiling / 2.0).max(MIN_RATE).min(ceiling),
            grown_at: now,
            w_max: ceiling,
            beta: BETA,
            last_cut: now,
            next_slot: now,
            paused_until: None,
            successes: VecDeque::new(),
            since_pause: 0,
            scale: 1.0,
            hold: Duration::ZERO,
            started: now,
        }
    }

    /// Whether the pacer has learnt nothing a fresh one would not: never throttled, not paused.
    /// Such a pacer can be dropped and made again when it is next needed.
    fn untaught(&self) -> bool {
        self.phase == Phase::SlowStart && self.paused_until.is_none()
    }

    /// The rate the pacer allows at `now`.
    pub fn rate(&mut self, now: Instant) -> f64 {
        match self.phase {
            Phase::SlowStart => {
                let dt = now.saturating_duration_since(self.grown_at).as_secs_f64();
                self.rate = (self.rate * 2f64.powf(dt / DOUBLING.as_secs_f64())).min(self.ceiling);
                self.grown_at = now;
                self.rate
            }
            Phase::Avoidance => {
                let t = now.saturating_duration_since(self.last_cut).as_secs_f64() / self.scale;
                let c = C * self.w_max;
                let k = (self.w_max * (1.0 - self.beta) / c).cbrt();
                let hold = self.hold.as_secs_f64() / self.scale;
                let t = if t > k {
                    k + (t - k - hold).max(0.0)
                } else {
                    t
                };
                (c * (t - k).powi(3) + self.w_max).clamp(MIN_RATE, self.ceiling)
            }
        }
    }

    /// Reserves the next send slot and returns when it is. A caller that comes late (timers fire a
    /// millisecond or so after their time) may use the slot it missed, so lateness does not add up
    /// over a run: at most one interval of credit, never a burst beyond two calls.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let interval = Duration::from_secs_f64(1.0 / self.rate(now));
        let mut slot = self.next_slot.max(now.checked_sub(interval).unwrap_or(now));
        if let Some(p) = self.paused_until {
            slot = slot.max(p);
        }
        self.next_slot = slot + interval;
        slot.max(now)
    }

    /// Takes the next slot if it is due at `now` (within a [`TICK`]), and says whether it did;
    /// leaves the pacer as it was otherwise. The fast path of a pacer below its rate: no timer, no
    /// queue.
    pub fn try_now(&mut self, now: Instant) -> bool {
        if self.paused(now) {
            return false;
        }
        let interval = Duration::from_secs_f64(1.0 / self.rate(now));
        let slot = self.next_slot.max(now.checked_sub(interval).unwrap_or(now));
        if slot > now + TICK {
            return false;
        }
        self.next_slot = slot + interval;
        true
    }

    /// Whether the pacer is holding all calls at `now`.
    pub fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|p| now < p)
    }

    pub fn on_success(&mut self, now: Instant) {
        self.since_pause = self.since_pause.saturating_add(1);
        self.successes.push_back(now);
        while self
            .successes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > SPAN)
        {
            self.successes.pop_front();
        }
    }

    /// Successes per second over the last [`SPAN`] (since the start, if shorter, but over at
    /// least a second). Near the limit, that is the limit: under a fixed window, the spans holds
    /// whole windows' worth and the ragged end of one more, spread over two seconds; under a
    /// token bucket, what the bucket refilled. Over less than a second (a run's first throttle can
    /// come within milliseconds, all its calls let through at a window's start) it would be read
    /// as a rate many times the limit.
    fn admitted_rate(&self, now: Instant) -> f64 {
        let span = now
            .saturating_duration_since(self.started)
            .clamp(Duration::from_secs(1), SPAN);
        // Pruned only as successes come: with none for a while, the old ones are still here.
        let recent = self
            .successes
            .iter()
            .rev()
            .take_while(|t| now.saturating_duration_since(**t) <= SPAN)
            .count();
        recent as f64 / span.as_secs_f64()
    }

    /// A 429 whose Retry-After says the limit is spent until then: a fixed window that reopens
    /// then. Nothing is sent until it does; the calls then go at the rate the closed window
    /// admitted, spread over the next one, rather than spend it at the ceiling and send what is in
    /// flight into a closed window.
    fn on_long_wait(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        if let Some(p) = self.paused_until.filter(|p| *p > now) {
            self.paused_until = Some(p.max(until)); // the same pause
            return;
        }
        // A limit in debt (a bucket whose refusals took tokens too) answers the first calls
        // after its Retry-After with another: waiting alone would go round like that for ever, so
        // the rate is halved as well.
        let in_debt = self.paused_until.is_some() && self.since_pause <= 1;
        // The window that closed admitted the successes since the last pause (or the start) and
        // reopens at `until`. With none, it says nothing of its size (another client spent it).
        let resumed = self.paused_until.unwrap_or(self.started);
        let window = until.saturating_duration_since(resumed).as_secs_f64();
        let admitted = self.since_pause as f64 / window;
        let current = self.rate(now);
        self.paused_until = Some(until);
        self.since_pause = 0;
        let w_max = match (in_debt, admitted > 0.0) {
            (true, _) => current / 2.0,
            (false, true) => current.min(admitted),
            (false, false) => return,
        };
        tracing::debug!(current, admitted, w_max, "throttled: pausing");
        self.w_max = w_max.max(MIN_RATE);
        self.beta = 1.0;
        self.phase = Phase::Avoidance;
        // The curve starts when the calls do again, and runs on the window's time: probing above
        // what a window admitted shows only at its end.
        self.last_cut = until;
        self.scale = window.max(1.0);
        self.next_slot = self.next_slot.max(now);
    }

    /// Skips the next send slot.
    fn repay(&mut self, now: Instant) {
        let interval = Duration::from_secs_f64(1.0 / self.rate(now));
        self.next_slot = self.next_slot.max(now) + interval;
    }

    /// A call sent at `sent` was answered 429 at `now`, with this Retry-After (if any).
    pub fn on_throttled(&mut self, now: Instant, sent: Instant, retry_after: Option<Duration>) {
        if let Some(wait) = retry_after.filter(|w| *w >= LONG_WAIT) {
            return self.on_long_wait(now, wait);
        }
        // Where refusals count against the limit, each one spent a call the limit would have
        // admitted: the slot after it is skipped to repay it, so a cut does not have to be deep
        // enough to pay for a whole episode's refusals.
        self.repay(now);
        if self.phase == Phase::Avoidance
            && (sent < self.last_cut || now.saturating_duration_since(self.last_cut) < COOLDOWN)
        {
            return; // the same episode as the last cut: nothing new
        }
        let current = self.rate(now);
        let admitted = self.admitted_rate(now);
        // Nothing admitted for a whole span: the limit is spent and, where refusals count
        // against it, each call sent keeps it so; halve, rather than take a tenth off.
        let w_max = if admitted > 0.0 {
            current.min(admitted)
        } else {
            current / 2.0
        }
        .max(MIN_RATE);
        // A limit found again where it was found last time is a fixed one: probing above it
        // again soon would only spend calls (each refused one is owed where refusals count), so
        // the curve stays level at it for longer each time, up to [`MAX_HOLD`].
        let same = self.phase == Phase::Avoidance && (w_max - self.w_max).abs() <= 0.1 * self.w_max;
        self.hold = match same {
            true => (self.hold * 2).clamp(Duration::from_secs(1), MAX_HOLD),
            false => Duration::ZERO,
        };
        self.w_max = w_max;
        self.beta = match self.phase {
            Phase::SlowStart => BETA_FIRST,
            Phase::Avoidance if now.saturating_duration_since(self.last_cut) < AGAIN => BETA_AGAIN,
            Phase::Avoidance => BETA,
        };
        tracing::debug!(
            current,
            admitted,
            w_max = self.w_max,
            new_rate = self.w_max * self.beta,
            "throttled: cutting the rate"
        );
        if self.phase == Phase::SlowStart {
            // Slow start overshoots by up to twice the limit, and every call sent until the limit
            // resets is refused (and, where refusals count against it, spends the next window):
            // nothing goes until the Retry-After has passed.
            if let Some(wait) = retry_after {
                self.paused_until = Some(now + wait);
            }
        }
        self.phase = Phase::Avoidance;
        self.last_cut = now;
        // Calls already reserved at the old rate keep their slots; new ones follow the new rate.
        self.next_slot = self.next_slot.max(now);
    }
}

/// A gate that lets one caller through at a time, the lowest row first: a row under way (its
/// second call) goes before rows behind it, so rows finish in order rather than all reading first.
#[derive(Default)]
struct RowGate {
    state: Mutex<GateState>,
    turn: tokio::sync::Notify,
}

#[derive(Default)]
struct GateState {
    busy: bool,
    /// Waiting callers as (row, arrival): the first is next.
    queue: std::collections::BTreeSet<(usize, u64)>,
    arrivals: u64,
}

/// Holds the gate; releasing it lets the next row in.
struct Pass<'g>(&'g RowGate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.state.lock().expect("gate").busy = false;
        self.0.turn.notify_waiters();
    }
}

/// Takes a waiter out of the queue if it gives up (the run stopped) before its turn.
struct Waiting<'g>(&'g RowGate, (usize, u64));

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let removed = self.0.state.lock().expect("gate").queue.remove(&self.1);
        if removed {
            self.0.turn.notify_waiters();
        }
    }
}

impl RowGate {
    async fn enter(&self, row: usize) -> Pass<'_> {
        let key = {
            let mut st = self.state.lock().expect("gate");
            st.arrivals += 1;
            let key = (row, st.arrivals);
            st.queue.insert(key);
            key
        };
        let waiting = Waiting(self, key);
        loop {
            let notified = self.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.state.lock().expect("gate");
                if !st.busy && st.queue.first() == Some(&key) {
                    st.busy = true;
                    st.queue.remove(&key);
                    std::mem::forget(waiting);
                    return Pass(self);
                }
            }
            notified.await;
        }
    }
}

/// A pacer behind a gate: callers queue, and each slot is computed when the one before it is used,
/// at the rate of that moment (booking slots ahead at an old rate would waste a rising one).
struct Gated {
    gate: RowGate,
    pacer: Mutex<Pacer>,
}

impl Gated {
    fn new(ceiling: f64) -> Self {
        Gated {
            gate: RowGate::default(),
            pacer: Mutex::new(Pacer::new(ceiling, Instant::now())),
        }
    }

    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().expect("pacer")
    }

    async fn wait_turn(&self, row: usize) {
        // Nobody waiting and a slot due: go at once (the gate stays free; the pacer's slot is taken).
        {
            let st = self.gate.state.lock().expect("gate");
            if !st.busy && st.queue.is_empty() && self.pacer().try_now(Instant::now()) {
                return;
            }
        }
        let _turn = self.gate.enter(row).await;
        loop {
            let now = Instant::now();
            let at = self.pacer().reserve(now);
            if at > now + TICK {
                tokio::time::sleep_until(at).await;
            }
            if !self.pacer().paused(Instant::now()) {
                return;
            }
        }
    }
}

/// The partner's pacer and one per customer tenant.
pub struct Controller {
    ceiling: f64,
    partner: Gated,
    customers: Mutex<Customers>,
    /// Which customers (or "" for partner-level calls) were throttled lately, for telling a
    /// partner-wide limit from a per-customer one.
    /// With the last time each was, and how many times within [`SPREAD`] of the one before.
    recent: Mutex<HashMap<String, (Instant, u32)>>,
    /// The last two customers whose calls succeeded (their ids hashed), and when.
    admitted: Mutex<[(u64, Instant); 2]>,
}

/// The per-customer pacers, pruned as the map grows: a file of many customers must not grow
/// memory with every customer it names.
#[derive(Default)]
struct Customers {
    pacers: HashMap<String, std::sync::Arc<Gated>>,
    /// Prune when the map reaches this size.
    prune_at: usize,
}

impl Customers {
    /// Drops the pacers no call holds and that learnt nothing (never throttled): a customer's next
    /// call makes a fresh one, which behaves the same.
    fn prune(&mut self) {
        self.pacers
            .retain(|_, g| std::sync::Arc::strong_count(g) > 1 || !g.pacer().untaught());
        self.pacers.shrink_to_fit();
        self.prune_at = (self.pacers.len() * 2).max(1024);
    }
}

/// Throttles from this many different customers within [`SPREAD`] mean the partner-wide limit.
const DISTINCT: usize = 2;
pub const SPREAD: Duration = Duration::from_secs(2);

impl Controller {
    pub fn new(ceiling: f64) -> Self {
        Controller {
            ceiling,
            partner: Gated::new(ceiling),
            customers: Mutex::new(Customers {
                pacers: HashMap::default(),
                prune_at: 1024,
            }),
            recent: Mutex::new(HashMap::default()),
            admitted: Mutex::new([(0, Instant::now()); 2]),
        }
    }

    fn customer(&self, c: &str) -> std::sync::Arc<Gated> {
        let mut customers = self.customers.lock().expect("pacers");
        if let Some(g) = customers.pacers.get(c) {
            return std::sync::Arc::clone(g);
        }
        if customers.pacers.len() >= customers.prune_at {
            customers.prune();
        }
        customers
            .pacers
            .entry(c.to_owned())
            .or_insert_with(|| std::sync::Arc::new(Gated::new(self.ceiling)))
            .clone()
    }

    /// Waits until a call of `row` for `customer` may be sent; lower rows go first.
    pub async fn acquire(&self, customer: Option<&str>, row: usize) {
        let own = customer.map(|c| self.customer(c));
        loop {
            if let Some(g) = &own {
                g.wait_turn(row).await;
            }
            self.partner.wait_turn(row).await;
            // The customer may have been paused while this call waited for the partner's turn.
            if !own
                .as_ref()
                .is_some_and(|g| g.pacer().paused(Instant::now()))
            {
                return;
            }
        }
    }

    /// Whether a 429 has paused the partner's pacer, or `customer`'s, at this moment.
    pub fn paused(&self, customer: Option<&str>) -> bool {
        let now = Instant::now();
        if self.partner.pacer().paused(now) {
            return true;
        }
        let Some(c) = customer else { return false };
        self.existing(c).is_some_and(|g| g.pacer().paused(now))
    }

    /// `c`'s pacer, if there is one (none was made, or it was pruned).
    fn existing(&self, c: &str) -> Option<std::sync::Arc<Gated>> {
        self.customers
            .lock()
            .expect("pacers")
            .pacers
            .get(c)
            .cloned()
    }

    /// A call the limit let through, whatever its answer (a 400 spends the limit as a 200 does).
    pub fn on_admitted(&self, customer: Option<&str>) {
        let now = Instant::now();
        self.partner.pacer().on_success(now);
        if let Some(c) = customer {
            let id = hash_of(c);
            let mut last = self.admitted.lock().expect("admitted");
            if last[0].0 != id {
                last[1] = last[0];
            }
            last[0] = (id, now);
        }
        if let Some(c) = customer {
            // The pacer the call waited on; none if it was pruned meanwhile, and a success makes
            // none (it would learn nothing but this one success).
            if let Some(g) = self.existing(c) {
                g.pacer().on_success(now);
            }
        }
    }

    /// A 429: slows the customer's pacer, and the partner's when the throttling is not confined to
    /// one customer.
    pub fn on_throttled(
        &self,
        customer: Option<&str>,
        sent: Instant,
        retry_after: Option<Duration>,
    ) {
        let now = Instant::now();
        let (partner_wide, blamed) = {
            let mut recent = self.recent.lock().expect("recent");
            recent.retain(|_, (t, _)| now.saturating_duration_since(*t) <= SPREAD);
            let seen = (recent.entry(customer.unwrap_or("").to_owned())).or_insert((now, 0));
            *seen = (now, seen.1 + 1);
            let again = seen.1 > 1;
            // One customer's limit only once its calls meet 429s again while another customer's
            // calls succeed and meet none: a single 429 says nothing of whose limit it was, and a
            // customer's pacer cut for the partner's would leave its calls crawling.
            let own = again && customer.is_some_and(|c| self.others_admitted(c, now));
            let partner_wide = customer.is_none() || recent.len() >= DISTINCT || !own;
            let blamed: Vec<String> = match partner_wide {
                true => recent.keys().filter(|c| !c.is_empty()).cloned().collect(),
                false => Vec::new(),
            };
            (partner_wide, blamed)
        };
        if partner_wide {
            // The partner's limit, not a customer's: the customers' pacers cut for it before it
            // showed on a second customer are forgotten (a customer's few calls would otherwise
            // crawl at the rate its own handful of successes suggested).
            self.forgive(&blamed);
            self.partner.pacer().on_throttled(now, sent, retry_after);
        } else if let Some(c) = customer {
            self.customer(c)
                .pacer()
                .on_throttled(now, sent, retry_after);
        }
    }

    /// The calls the partner's pacer counts as admitted over the last [`SPAN`].
    #[cfg(test)]
    pub fn admitted_calls(&self) -> usize {
        self.partner.pacer().successes.len()
    }

    /// Whether a customer other than `c` had a call succeed within [`SPREAD`].
    fn others_admitted(&self, c: &str, now: Instant) -> bool {
        let id = hash_of(c);
        let last = self.admitted.lock().expect("admitted");
        last.iter()
            .any(|(o, t)| *o != id && *o != 0 && now.saturating_duration_since(*t) <= SPREAD)
    }

    /// Makes the pacers of `customers` fresh again: what they learnt was the partner's limit.
    fn forgive(&self, customers: &[String]) {
        let all = self.customers.lock().expect("pacers");
        for c in customers {
            if let Some(g) = all.pacers.get(c) {
                *g.pacer() = Pacer::new(self.ceiling, Instant::now());
            }
        }
    }
}

/// A customer id as a number, for remembering which customers' calls succeeded without keeping
/// their ids.
fn hash_of(customer: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(customer) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacers_of_many_customers_do_not_grow_memory_but_a_throttled_one_is_kept() {
        let c = Controller::new(100.0);
        c.on_throttled(Some("throttled"), Instant::now(), None);
        c.on_admitted(Some("other"));
        c.on_throttled(Some("throttled"), Instant::now(), None); // again while another got in
        for i in 0..100_000 {
            c.on_admitted(Some(&format!("customer-{i}")));
        }
        let customers = c.customers.lock().unwrap();
        assert!(
            customers.pacers.len() <= 2048,
            "{} pacers kept",
            customers.pacers.len()
        );
        assert!(customers.pacers.contains_key("throttled"));
    }

    /// Found by the windowed export bench: a partner-wide window's 429 was blamed on the customer
    /// whose call met it, and that customer's few remaining calls crawled at the rate its own
    /// handful of successes suggested, holding up the export's ordered output.
    #[tokio::test(start_paused = true)]
    async fn a_customer_s_pacer_slows_only_when_its_calls_alone_meet_429s_again() {
        let c = Controller::new(100.0);
        let wait = Some(Duration::from_secs(1));
        c.on_throttled(Some("a"), Instant::now(), wait);
        assert!(
            !c.partner.pacer().untaught(),
            "one 429: the partner's limit"
        );
        assert!(
            c.paused(None),
            "slow start's first throttle waits out its Retry-After"
        );
        assert!(c.customer("a").pacer().untaught(), "a's own pacer not cut");
        tokio::time::advance(Duration::from_millis(500)).await;
        c.on_throttled(Some("a"), Instant::now(), wait);
        assert!(
            c.customer("a").pacer().untaught(),
            "a again, but no other customer's call got in"
        );
        c.on_admitted(Some("c"));
        tokio::time::advance(Duration::from_millis(10)).await;
        c.on_throttled(Some("a"), Instant::now(), wait);
        assert!(
            !c.customer("a").pacer().untaught(),
            "a again while c's got in: a's own limit"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        c.on_throttled(Some("b"), Instant::now(), wait);
        assert!(
            c.customer("a").pacer().untaught(),
            "b too: the partner's, a's cut forgotten"
        );
        assert!(c.customer("b").pacer().untaught(), "b's never cut");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Successes at `per_second`, evenly spaced over a [`SPAN`] from `from`.
    fn admit_a_span(p: &mut Pacer, from: Instant, per_second: u64) {
        let every = 1000 / per_second;
        for i in 0..SPAN.as_millis() as u64 / every {
            p.on_success(from + ms(i * every));
        }
    }

    #[test]
    fn slow_start_doubles_to_the_ceiling() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0);
        assert_eq!(p.rate(t0), 50.0);
        assert!((p.rate(t0 + ms(250)) - 50.0 * 2f64.sqrt()).abs() < 0.01);
        assert_eq!(p.rate(t0 + ms(2000)), 100.0);
    }

    #[test]
    fn a_short_retry_after_cuts_to_beta_of_what_was_admitted_then_climbs_back() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0);
        for i in 0..40 {
            p.on_success(t0 + ms(i * 50)); // 40 successes over the two seconds: 20/s
        }
        let t1 = t0 + ms(2000);
        p.on_throttled(t1, t1, Some(Duration::from_secs(1)));
        assert!(
            (p.rate(t1) - 20.0 * BETA_FIRST).abs() < 0.01,
            "{}",
            p.rate(t1)
        );
        assert!(
            p.paused(t1 + ms(999)),
            "slow start's overshoot waits out the Retry-After"
        );
        assert!(!p.paused(t1 + ms(1000)));
        let k = ((1.0 - BETA_FIRST) / C).cbrt();
        let at_k = p.rate(t1 + Duration::from_secs_f64(k));
        assert!((at_k - 20.0).abs() < 0.01, "back to w_max after K: {at_k}");
        assert!(
            p.rate(t1 + Duration::from_secs_f64(k + 5.0)) > 20.0,
            "then probes above"
        );
        // A later throttle, in avoidance: the shallower cut, and no pause.
        let t2 = t1 + Duration::from_secs_f64(k);
        admit_a_span(&mut p, t2 - SPAN, 20);
        p.on_throttled(t2, t2, Some(Duration::from_secs(1)));
        assert!((p.rate(t2) - 20.0 * BETA).abs() < 0.01, "{}", p.rate(t2));
        assert!(!p.paused(t2));
    }

    /// Found by the windowed export bench: a run's first 429 came 10 ms in, after a window's
    /// 200 calls were let through at its start, and was read as 800 calls a second.
    #[test]
    fn a_first_throttle_within_milliseconds_reads_the_admitted_rate_over_a_second() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000_000.0, t0);
        for i in 0..200 {
            p.on_success(t0 + Duration::from_micros(i * 50));
        }
        let t1 = t0 + ms(10);
        p.on_throttled(t1, t1, Some(Duration::from_secs(1)));
        assert!(
            (p.rate(t1) - 200.0 * BETA_FIRST).abs() < 0.01,
            "{}",
            p.rate(t1)
        );
    }

    /// Found by the dispatch bench's 5 s windows: after each long Retry-After the calls went at
    /// the ceiling again, spent the window in a second and sent what was in flight (a twentieth of
    /// the window, owed by the next one) into it closed.
    #[test]
    fn a_long_retry_after_spreads_what_the_closed_window_admitted_over_the_next() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0 - Duration::from_secs(10)); // at the ceiling
        p.on_throttled(t0, t0, Some(Duration::from_secs(5)));
        let t1 = t0 + Duration::from_secs(5);
        for i in 0..100 {
            p.on_success(t1 + ms(i * 10));
        }
        let t2 = t1 + ms(1000);
        p.on_throttled(t2, t2, Some(Duration::from_secs(4))); // the window ends at t1 + 5 s
        let t3 = t1 + Duration::from_secs(5);
        assert!(p.paused(t3 - ms(1)));
        assert!((p.rate(t3) - 20.0).abs() < 0.01, "{}", p.rate(t3));
        let a_window_on = p.rate(t3 + Duration::from_secs(5));
        assert!(
            a_window_on > 20.0 && a_window_on < 20.5,
            "probes gently over a window: {a_window_on}"
        );
    }

    /// Refusals that count against the limit spend calls it would have admitted: each one is
    /// repaid by a slot not used.
    #[test]
    fn each_refusal_skips_a_send_slot() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0, t0 - Duration::from_secs(10)); // at 10 calls a second
        assert_eq!(p.reserve(t0), t0);
        p.on_throttled(t0, t0, Some(ms(500)));
        let next = p.next_slot;
        let after_cut = Duration::from_secs_f64(1.0 / p.rate(t0 + ms(1)));
        p.on_throttled(t0 + ms(1), t0, Some(ms(500))); // the same episode: no cut, but repaid
        assert_eq!(p.next_slot, next + after_cut);
    }

    #[test]
    fn a_long_retry_after_with_nothing_admitted_only_pauses() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0);
        let before = p.rate(t0);
        p.on_throttled(t0, t0, Some(Duration::from_secs(4)));
        assert!(p.paused(t0 + ms(3900)));
        assert!(!p.paused(t0 + ms(4000)));
        assert!(p.reserve(t0) >= t0 + Duration::from_secs(4));
        assert_eq!(p.rate(t0), before);
    }

    /// Found by an outside tester: a token bucket whose refusals take tokens too answered every
    /// call after each long Retry-After with another, and the pacer, only waiting, never slowed.
    #[test]
    fn a_limit_that_refuses_again_right_after_its_long_retry_after_halves_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0 - Duration::from_secs(10)); // at the ceiling
        p.on_throttled(t0, t0, Some(Duration::from_secs(3)));
        assert!(p.paused(t0 + ms(2999)));
        assert_eq!(p.rate(t0), 100.0, "a first long wait only pauses");
        let t1 = t0 + ms(3010);
        p.on_success(t1);
        p.on_throttled(t1 + ms(10), t1, Some(Duration::from_secs(3)));
        assert!(
            (p.rate(t1 + ms(10)) - 50.0).abs() < 0.01,
            "{}",
            p.rate(t1 + ms(10))
        );
        assert!(p.paused(t1 + ms(2000)), "and waits again");
    }

    /// Found by an outside tester: with no success for seven seconds under a limit in debt, the
    /// successes of long before still counted as admitted, and each cut took a tenth off a rate
    /// that nothing was getting through at.
    #[test]
    fn successes_older_than_the_span_are_not_admitted_however_long_since_the_last() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0 - Duration::from_secs(10));
        admit_a_span(&mut p, t0, 20);
        assert!((p.admitted_rate(t0 + SPAN) - 20.0).abs() < 0.01);
        assert_eq!(p.admitted_rate(t0 + SPAN * 3), 0.0);
    }

    /// Found by the dispatch bench's 1 s windows of 5 and 20 calls: the curve probed above a
    /// limit it had found twice already every five seconds, and each probe's refusals were owed
    /// by the next window.
    #[test]
    fn a_limit_found_again_where_it_was_is_held_longer_each_time_before_probing() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0 - Duration::from_secs(10));
        let cut_at = |p: &mut Pacer, t: Instant| {
            admit_a_span(p, t - SPAN, 20);
            p.on_throttled(t, t, Some(Duration::from_secs(1)));
        };
        let mut t = t0;
        for held in [0, 1, 2, 4, 8] {
            cut_at(&mut p, t);
            assert_eq!(p.hold, Duration::from_secs(held));
            t += Duration::from_secs(20);
        }
        let k = ((1.0 - BETA) / C).cbrt();
        let t = t - Duration::from_secs(20);
        let level = p.rate(t + Duration::from_secs_f64(k + 7.9));
        assert!((level - 20.0).abs() < 0.01, "level while held: {level}");
        assert!(
            p.rate(t + Duration::from_secs_f64(k + 10.0)) > 20.0,
            "then probes"
        );
        cut_at(&mut p, t + Duration::from_secs(20)); // found at 20 again...
        admit_a_span(&mut p, t + Duration::from_secs(40) - SPAN, 10);
        p.on_throttled(
            t + Duration::from_secs(40),
            t + Duration::from_secs(40),
            None,
        );
        assert_eq!(
            p.hold,
            Duration::ZERO,
            "...then at 10: a new limit, probed as usual"
        );
    }

    #[test]
    fn throttles_of_the_same_episode_cut_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0);
        let t1 = t0 + ms(1000);
        p.on_throttled(t1, t1, None);
        let after_first = p.rate(t1);
        p.on_throttled(t1 + ms(10), t1 - ms(5), None);
        p.on_throttled(t1 + ms(500), t1 + ms(400), None);
        assert_eq!(p.rate(t1), after_first, "one episode, one cut");
        let t2 = t1 + COOLDOWN;
        let climbed = p.rate(t2);
        p.on_throttled(t2, t2, None);
        assert!(
            (p.rate(t2) - climbed / 2.0 * BETA_AGAIN).abs() < 0.01,
            "a later episode, soon after and with nothing admitted, halves and cuts deeper: {} \
             from {climbed}",
            p.rate(t2)
        );
    }

    #[test]
    fn slots_are_spaced_by_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0, t0);
        let t1 = t0 + Duration::from_secs(2); // slow start has reached the ceiling
        for _ in 0..20 {
            p.on_success(t1);
        }
        p.on_throttled(t1, t1, None); // into avoidance at w_max 10 (20 over 2 s) → 8/s
        let a = p.reserve(t1);
        let b = p.reserve(t1);
        let gap = b.duration_since(a).as_secs_f64();
        assert!((gap - 1.0 / 8.0).abs() < 0.001, "{gap}");
        // A caller that comes 30 ms after its slot gets it at once, and the next slot stays on the
        // schedule: lateness does not accumulate.
        let c_slot = b + Duration::from_millis(125);
        let late = c_slot + Duration::from_millis(30);
        assert_eq!(p.reserve(late), late);
        let d_slot = p.reserve(late);
        assert!(
            d_slot.duration_since(c_slot) <= Duration::from_millis(125),
            "the next slot follows the missed one, not the late caller"
        );
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn a_due_slot_is_taken_at_once_and_an_early_one_is_left_alone() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0, t0 - Duration::from_secs(5)); // slow start done: 10/s
        assert!(p.try_now(t0), "the first slot is due");
        assert!(
            p.try_now(t0 + Duration::from_millis(10)),
            "one slot of catch-up credit, as reserve gives"
        );
        assert!(
            !p.try_now(t0 + Duration::from_millis(20)),
            "the next is 100 ms after the last"
        );
        assert!(
            p.try_now(t0 + Duration::from_millis(99) + Duration::from_micros(500)),
            "a slot due within a timer tick is taken at once"
        );
        assert!(
            !p.try_now(t0 + Duration::from_millis(100)),
            "and spaced as before"
        );
        assert!(p.try_now(t0 + Duration::from_millis(200)));
        p.on_throttled(t0, t0, Some(Duration::from_secs(3)));
        assert!(!p.try_now(t0 + Duration::from_secs(2)), "paused");
    }
}

#[cfg(test)]
mod gate_tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_lowest_row_waiting_goes_first() {
        let gate = Arc::new(RowGate::default());
        let held = gate.enter(1).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for row in [9, 4, 7] {
            let (g, o) = (Arc::clone(&gate), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _p = g.enter(row).await;
                o.lock().unwrap().push(row);
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![4, 7, 9]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let gate = RowGate::default();
        let held = gate.enter(1).await;
        {
            let f = gate.enter(2);
            tokio::pin!(f);
            assert!(futures::poll!(f.as_mut()).is_pending());
        }
        drop(held);
        let _p = gate.enter(5).await; // would hang if row 2 were still queued
    }
}
