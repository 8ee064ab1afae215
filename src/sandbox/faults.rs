//! What can go wrong at the sandbox, switchable and deterministic under a seed: throttling (a token
//! bucket or fixed windows, partner-wide and per customer tenant), latency, server errors, dropped
//! connections before or after a change is applied, writes applied late or answered with a 5xx after
//! being applied, 429s without Retry-After, byte-order marks, and ETags that go stale.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a limiter admits calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Throttle {
    /// `rate` calls per second, up to `burst` at once.
    Bucket { rate: f64, burst: f64 },
    /// `limit` calls per fixed window of `window`; past it, wait for the window's end — Partner
    /// Center's "try again in 57 seconds".
    Window { limit: u64, window: Duration },
}

/// A limiter's running state.
#[derive(Debug)]
pub struct Limiter {
    shape: Throttle,
    tokens: f64,
    last: Instant,
    window_start: Instant,
    used: u64,
    /// Whether a refused call counts against the limit ("every retry counts against the limit").
    count_refused: bool,
}

/// The most a bucket's debt from refused calls grows to, in seconds of its rate: a client that
/// keeps calling is told to wait at most about a minute, as Partner Center's "Try again in 57
/// seconds" does.
const MAX_DEBT_SECONDS: f64 = 60.0;

impl Limiter {
    pub fn new(shape: Throttle, now: Instant) -> Self {
        let tokens = match shape {
            Throttle::Bucket { burst, .. } => burst,
            Throttle::Window { .. } => 0.0,
        };
        Limiter {
            shape,
            tokens,
            last: now,
            window_start: now,
            used: 0,
            count_refused: false,
        }
    }

    /// Makes refused calls count against the limit: a bucket goes into debt (bounded), a window's
    /// calls past its limit are owed by the next window (at most one window's worth).
    pub fn counting_refused(mut self, yes: bool) -> Self {
        self.count_refused = yes;
        self
    }

    /// Admits a call, or says how long until one would be admitted.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.shape {
            Throttle::Bucket { rate, burst } => {
                let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
                self.tokens = (self.tokens + elapsed * rate).min(burst);
                self.last = now;
                if self.tokens >= 1.0 {
                    self.tokens -= 1.0;
                    return Ok(());
                }
                if self.count_refused {
                    let floor = -(rate * MAX_DEBT_SECONDS).max(burst);
                    self.tokens = (self.tokens - 1.0).max(floor);
                }
                Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
            }
            Throttle::Window { limit, window } => {
                while now.saturating_duration_since(self.window_start) >= window {
                    self.window_start += window;
                    self.used = if self.count_refused {
                        self.used.saturating_sub(limit)
                    } else {
                        0
                    };
                }
                if self.used < limit {
                    self.used += 1;
                    return Ok(());
                }
                if self.count_refused {
                    self.used = self.used.saturating_add(1).min(limit.saturating_mul(2));
                }
                // A next window already owed its whole limit admits nothing either.
                let owed = self.used - limit;
                let windows = if owed >= limit { 2 } else { 1 };
                Err((self.window_start + window * windows).saturating_duration_since(now))
            }
        }
    }
}

/// How a stale ETag is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleEtag {
    /// 412 Precondition Failed.
    Status412,
    /// 400 with code 2055.
    Code2055,
    /// Either, at random.
    Mix,
}

/// Every knob; the defaults are a well-behaved service.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub throttle: Option<Throttle>,
    pub customer_throttle: Option<Throttle>,
    /// Send Retry-After as an HTTP date instead of seconds.
    pub retry_after_date: bool,
    pub latency_min: Duration,
    pub latency_max: Duration,
    /// A share of calls that take `tail` instead.
    pub tail_share: f64,
    pub tail: Duration,
    /// A share of calls answered with one of `fail_statuses` (chosen at random) without being applied.
    pub fail_share: f64,
    pub fail_statuses: Vec<u16>,
    /// A share of calls whose connection drops before the change is applied.
    pub drop_before: f64,
    /// A share of calls whose connection drops after the change is applied.
    pub drop_after: f64,
    /// A share of writes applied and then answered with 502, 503 or 504, as by a gateway that gave
    /// up on the backend.
    pub applied_5xx: f64,
    /// When set, every `/v1` call is served apart from its connection, and each write is applied
    /// this long after it arrives, whether or not its client is still there.
    pub late_writes: Option<Duration>,
    /// Whether calls refused with 429 count against the limit.
    pub refused_count: bool,
    /// A share of 429 answers that carry no Retry-After.
    pub no_retry_after: f64,
    /// A share of answers that start with a UTF-8 byte-order mark.
    pub bom_share: f64,
    /// A share of billing-profile PUTs that find the profile edited meanwhile.
    pub etag_churn: f64,
    pub stale_etag: StaleEtag,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            throttle: None,
            customer_throttle: None,
            retry_after_date: false,
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
            tail_share: 0.0,
            tail: Duration::ZERO,
            fail_share: 0.0,
            fail_statuses: vec![500, 503],
            drop_before: 0.0,
            drop_after: 0.0,
            applied_5xx: 0.0,
            late_writes: None,
            refused_count: true,
            no_retry_after: 0.0,
            bom_share: 0.0,
            etag_churn: 0.0,
            stale_etag: StaleEtag::Status412,
        }
    }
}

/// What happens to one call, decided when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Normal,
    Fail(u16),
    DropBefore,
    DropAfter,
    /// A write applied, then answered with this 5xx; a read is answered as usual.
    AppliedFail(u16),
}

/// The statuses a gateway in front of the service answers with.
const GATEWAY_STATUSES: [u16; 3] = [502, 503, 504];

/// The knobs with their random source and limiter state.
pub struct Faults {
    pub knobs: Knobs,
    rng: StdRng,
    seed: u64,
    partner: Option<Limiter>,
    customers: HashMap<String, Limiter>,
}

impl Faults {
    pub fn new(knobs: Knobs, seed: u64) -> Self {
        let now = Instant::now();
        Faults {
            partner: knobs
                .throttle
                .map(|t| Limiter::new(t, now).counting_refused(knobs.refused_count)),
            knobs,
            rng: StdRng::seed_from_u64(seed),
            seed,
            customers: HashMap::new(),
        }
    }

    /// How long this call takes before it is answered.
    pub fn latency(&mut self) -> Duration {
        let k = &self.knobs;
        if k.tail_share > 0.0 && self.rng.random::<f64>() < k.tail_share {
            return k.tail;
        }
        if k.latency_max > k.latency_min {
            let span = (k.latency_max - k.latency_min).as_secs_f64();
            k.latency_min + Duration::from_secs_f64(self.rng.random::<f64>() * span)
        } else {
            k.latency_min
        }
    }

    /// Admits a call for the partner, and for the customer tenant it concerns, if any.
    pub fn admit(&mut self, customer: Option<&str>) -> Result<(), Duration> {
        let now = Instant::now();
        if let Some(p) = self.partner.as_mut() {
            p.admit(now)?;
        }
        let count = self.knobs.refused_count;
        if let (Some(shape), Some(c)) = (self.knobs.customer_throttle, customer) {
            self.customers
                .entry(c.to_owned())
                .or_insert_with(|| Limiter::new(shape, now).counting_refused(count))
                .admit(now)?;
        }
        Ok(())
    }

    /// Rolls this call's fate and whether its answer carries a BOM.
    pub fn fate(&mut self) -> (Fate, bool) {
        let k = self.knobs.clone();
        let r: f64 = self.rng.random();
        let fate = if r < k.fail_share {
            let i = self.rng.random_range(0..k.fail_statuses.len().max(1));
            Fate::Fail(k.fail_statuses.get(i).copied().unwrap_or(503))
        } else if r < k.fail_share + k.drop_before {
            Fate::DropBefore
        } else if r < k.fail_share + k.drop_before + k.drop_after {
            Fate::DropAfter
        } else if r < k.fail_share + k.drop_before + k.drop_after + k.applied_5xx {
            let i = self.rng.random_range(0..GATEWAY_STATUSES.len());
            Fate::AppliedFail(GATEWAY_STATUSES[i])
        } else {
            Fate::Normal
        };
        let bom = k.bom_share > 0.0 && self.rng.random::<f64>() < k.bom_share;
        (fate, bom)
    }

    /// Whether this 429 goes without Retry-After.
    pub fn no_retry_after(&mut self) -> bool {
        self.knobs.no_retry_after > 0.0 && self.rng.random::<f64>() < self.knobs.no_retry_after
    }

    /// Whether a gateway's failure carries an HTML page (else an empty body).
    pub fn gateway_html(&mut self) -> bool {
        self.rng.random()
    }

    /// Whether someone else edits this billing profile just before a PUT meets it at `version`.
    /// Decided from the seed, the customer and the version, not from the order calls arrive in, so a
    /// seeded run meets the same edits however its calls interleave.
    pub fn churn(&self, customer: &str, version: u64) -> bool {
        if self.knobs.etag_churn <= 0.0 {
            return false;
        }
        let mut key = customer.as_bytes().to_vec();
        key.extend_from_slice(&version.to_le_bytes());
        let draw = xxhash_rust::xxh3::xxh3_64_with_seed(&key, self.seed) as f64 / u64::MAX as f64;
        draw < self.knobs.etag_churn
    }

    /// How this stale ETag is refused: 412, or 400 with code 2055.
    pub fn stale_as_412(&mut self) -> bool {
        match self.knobs.stale_etag {
            StaleEtag::Status412 => true,
            StaleEtag::Code2055 => false,
            StaleEtag::Mix => self.rng.random(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_admits_burst_then_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(
            Throttle::Bucket {
                rate: 10.0,
                burst: 3.0,
            },
            t0,
        );
        assert!((0..3).all(|_| l.admit(t0).is_ok()));
        let wait = l.admit(t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(l.admit(t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn window_refuses_until_its_end() {
        let t0 = Instant::now();
        let w = Duration::from_secs(5);
        let mut l = Limiter::new(
            Throttle::Window {
                limit: 2,
                window: w,
            },
            t0,
        );
        assert!(l.admit(t0).is_ok() && l.admit(t0).is_ok());
        assert_eq!(
            l.admit(t0 + Duration::from_secs(2)).unwrap_err(),
            Duration::from_secs(3)
        );
        assert!(l.admit(t0 + Duration::from_secs(5)).is_ok());
        assert!(
            l.admit(t0 + Duration::from_secs(11)).is_ok(),
            "windows roll on when idle"
        );
    }

    #[test]
    fn refused_calls_put_a_bucket_in_debt_bounded_by_a_minute() {
        let t0 = Instant::now();
        let shape = Throttle::Bucket {
            rate: 1.0,
            burst: 1.0,
        };
        let mut free = Limiter::new(shape, t0);
        let mut counting = Limiter::new(shape, t0).counting_refused(true);
        assert!(free.admit(t0).is_ok() && counting.admit(t0).is_ok());
        for _ in 0..1000 {
            assert_eq!(free.admit(t0).unwrap_err(), Duration::from_secs(1));
            let _ = counting.admit(t0);
        }
        let owed = counting.admit(t0).unwrap_err();
        assert_eq!(
            owed,
            Duration::from_secs(61),
            "one minute of debt at most, plus the call"
        );
        assert!(free.admit(t0 + Duration::from_secs(1)).is_ok());
        assert!(counting.admit(t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn refused_calls_in_a_window_are_owed_by_the_next_one() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let mut l = Limiter::new(
            Throttle::Window {
                limit: 2,
                window: w,
            },
            t0,
        )
        .counting_refused(true);
        assert!(l.admit(t0).is_ok() && l.admit(t0).is_ok());
        assert_eq!(
            l.admit(t0).unwrap_err(),
            w,
            "owes one call of the next window"
        );
        assert_eq!(
            l.admit(t0).unwrap_err(),
            w * 2,
            "the next window is spent too"
        );
        assert_eq!(l.admit(t0).unwrap_err(), w * 2, "and no more is owed");
        assert!(l.admit(t0 + w).is_err(), "the next window starts full");
        assert!(l.admit(t0 + w * 2).is_ok());
    }

    #[test]
    fn etag_churn_depends_on_seed_customer_and_version_not_on_call_order() {
        let knobs = Knobs {
            etag_churn: 0.5,
            ..Knobs::default()
        };
        let (a, b) = (Faults::new(knobs.clone(), 3), Faults::new(knobs.clone(), 3));
        let forward: Vec<bool> = (1..40).map(|v| a.churn("c1", v)).collect();
        let backward: Vec<bool> = (1..40).rev().map(|v| b.churn("c1", v)).collect();
        assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
        assert!(forward.contains(&true) && forward.contains(&false));
        let other_seed: Vec<bool> = (1..40)
            .map(|v| Faults::new(knobs.clone(), 4).churn("c1", v))
            .collect();
        assert_ne!(forward, other_seed);
    }

    #[test]
    fn same_seed_same_fates() {
        let knobs = Knobs {
            fail_share: 0.3,
            drop_before: 0.2,
            drop_after: 0.2,
            ..Knobs::default()
        };
        let roll = |seed| {
            let mut f = Faults::new(knobs.clone(), seed);
            (0..50).map(|_| f.fate()).collect::<Vec<_>>()
        };
        assert_eq!(roll(7), roll(7));
        assert_ne!(roll(7), roll(8));
        let fates = roll(7);
        assert!(fates.iter().any(|(f, _)| *f == Fate::DropAfter));
        assert!(fates.iter().any(|(f, _)| matches!(f, Fate::Fail(_))));
    }
}
