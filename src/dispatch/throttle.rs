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
//! smaller of its rate and the successes of the last second), drops to `BETA × w_max`, and climbs
//! back along a cubic curve, as CUBIC and the AWS SDKs' adaptive mode do: quickly while far below
//! `w_max`, flat near it, then probing above. 429s within [`COOLDOWN`] of a cut belong to the same
//! episode and do not cut again. A 429 with a long Retry-After means "blocked until
//! then" (a fixed window): the pacer sends nothing until that moment, then resumes at its rate, rather
//! than collecting more 429s. A 429 for a call sent before the pacer last reacted says nothing new and
//! is ignored.

use std::collections::VecDeque;

// Keys are tenant ids from the file, hashed on every call: FxHash, not SipHash (no key here is
// chosen to collide, and a collision costs a probe, not correctness).
use rustc_hash::FxHashMap as HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Multiplicative decrease on a throttle.
pub const BETA: f64 = 0.8;
/// Cubic growth constant, as a share of `w_max` per second³.
pub const C: f64 = 0.02;
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
    last_cut: Instant,
    next_slot: Instant,
    paused_until: Option<Instant>,
    successes: VecDeque<Instant>,
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
            last_cut: now,
            next_slot: now,
            paused_until: None,
            successes: VecDeque::new(),
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
                let t = now.saturating_duration_since(self.last_cut).as_secs_f64();
                let c = C * self.w_max;
                let k = (self.w_max * (1.0 - BETA) / c).cbrt();
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
        self.successes.push_back(now);
        while self
            .successes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > Duration::from_secs(1))
        {
            self.successes.pop_front();
        }
    }

    /// Successes per second over the last second (over the time since the start, if shorter, but
    /// at least a quarter second).
    fn admitted_rate(&self, now: Instant) -> f64 {
        let span = now
            .saturating_duration_since(self.started)
            .clamp(Duration::from_millis(250), Duration::from_secs(1));
        self.successes.len() as f64 / span.as_secs_f64()
    }

    /// A call sent at `sent` was answered 429 at `now`, with this Retry-After (if any).
    pub fn on_throttled(&mut self, now: Instant, sent: Instant, retry_after: Option<Duration>) {
        if let Some(wait) = retry_after.filter(|w| *w >= LONG_WAIT) {
            let until = now + wait;
            self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
            return;
        }
        if self.phase == Phase::Avoidance
            && (sent < self.last_cut || now.saturating_duration_since(self.last_cut) < COOLDOWN)
        {
            return; // the same episode as the last cut: nothing new
        }
        let current = self.rate(now);
        let admitted = self.admitted_rate(now);
        self.w_max = if admitted > 0.0 {
            current.min(admitted)
        } else {
            current
        }
        .max(MIN_RATE);
        tracing::debug!(
            current,
            admitted,
            w_max = self.w_max,
            new_rate = self.w_max * BETA,
            "throttled: cutting the rate"
        );
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
    recent: Mutex<HashMap<String, Instant>>,
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
const SPREAD: Duration = Duration::from_secs(2);

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

    pub fn on_success(&self, customer: Option<&str>) {
        let now = Instant::now();
        self.partner.pacer().on_success(now);
        if let Some(c) = customer {
            // The pacer the call waited on; none if it was pruned meanwhile, and a success makes
            // none (it would learn nothing but this one success).
            let pacer = self
                .customers
                .lock()
                .expect("pacers")
                .pacers
                .get(c)
                .cloned();
            if let Some(g) = pacer {
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
        let partner_wide = {
            let mut recent = self.recent.lock().expect("recent");
            recent.insert(customer.unwrap_or("").to_owned(), now);
            recent.retain(|_, t| now.saturating_duration_since(*t) <= SPREAD);
            customer.is_none() || recent.len() >= DISTINCT
        };
        if let Some(c) = customer {
            self.customer(c)
                .pacer()
                .on_throttled(now, sent, retry_after);
        }
        if partner_wide {
            self.partner.pacer().on_throttled(now, sent, retry_after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacers_of_many_customers_do_not_grow_memory_but_a_throttled_one_is_kept() {
        let c = Controller::new(100.0);
        c.on_throttled(Some("throttled"), Instant::now(), None);
        for i in 0..100_000 {
            c.on_success(Some(&format!("customer-{i}")));
        }
        let customers = c.customers.lock().unwrap();
        assert!(
            customers.pacers.len() <= 2048,
            "{} pacers kept",
            customers.pacers.len()
        );
        assert!(customers.pacers.contains_key("throttled"));
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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
        for i in 0..20 {
            p.on_success(t0 + ms(1000 + i * 50)); // 20 successes in the last second
        }
        let t1 = t0 + ms(2000);
        p.on_throttled(t1, t1, Some(Duration::from_secs(1)));
        assert!((p.rate(t1) - 20.0 * BETA).abs() < 0.01, "{}", p.rate(t1));
        let k = ((1.0 - BETA) / C).cbrt();
        let at_k = p.rate(t1 + Duration::from_secs_f64(k));
        assert!((at_k - 20.0).abs() < 0.01, "back to w_max after K: {at_k}");
        assert!(
            p.rate(t1 + Duration::from_secs_f64(k + 3.0)) > 20.0,
            "then probes above"
        );
    }

    #[test]
    fn a_long_retry_after_pauses_without_cutting() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, t0);
        let before = p.rate(t0);
        p.on_throttled(t0, t0, Some(Duration::from_secs(4)));
        assert!(p.paused(t0 + ms(3900)));
        assert!(!p.paused(t0 + ms(4000)));
        assert!(p.reserve(t0) >= t0 + Duration::from_secs(4));
        assert_eq!(p.rate(t0), before);
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
        p.on_throttled(t1 + COOLDOWN, t1 + COOLDOWN, None);
        assert!(
            p.rate(t1 + COOLDOWN) < after_first,
            "a later episode cuts again"
        );
    }

    #[test]
    fn slots_are_spaced_by_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0, t0);
        let t1 = t0 + Duration::from_secs(2); // slow start has reached the ceiling
        for _ in 0..10 {
            p.on_success(t1);
        }
        p.on_throttled(t1, t1, None); // into avoidance at w_max 10 → 8/s
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
