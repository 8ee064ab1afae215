//! A run-wide retry budget, so a dying service is not hammered: every call sent earns a fifth of a
//! retry, and a second of time earns one; a retry spends one. Once the initial allowance is spent,
//! retries stay near a fifth of all calls.

use std::sync::Mutex;
use std::time::Instant;

/// Retries earned per call sent.
pub const RATIO: f64 = 0.2;
/// Retries earned per second, so a slow run can still retry.
pub const PER_SECOND: f64 = 1.0;
/// Retries allowed before anything is earned.
pub const INITIAL: f64 = 20.0;
/// The most that can be saved up.
pub const CAP: f64 = 100.0;

pub struct RetryBudget {
    state: Mutex<(f64, Instant)>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            state: Mutex::new((INITIAL, Instant::now())),
        }
    }
}

impl RetryBudget {
    fn refill(state: &mut (f64, Instant), now: Instant) {
        let dt = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + dt * PER_SECOND).min(CAP);
        state.1 = now;
    }

    /// A call was sent.
    pub fn on_call(&self) {
        let mut s = self.state.lock().expect("budget");
        s.0 = (s.0 + RATIO).min(CAP);
    }

    /// Takes one retry from the budget, if there is one.
    pub fn try_retry(&self) -> bool {
        self.try_retry_at(Instant::now())
    }

    fn try_retry_at(&self, now: Instant) -> bool {
        let mut s = self.state.lock().expect("budget");
        Self::refill(&mut s, now);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_the_allowance_is_spent_retries_are_a_fifth_of_calls() {
        let b = RetryBudget::default();
        let now = b.state.lock().unwrap().1;
        let mut granted = 0;
        for _ in 0..1000 {
            b.on_call();
            if b.try_retry_at(now) {
                granted += 1;
            }
        }
        let want = INITIAL + 1000.0 * RATIO;
        assert!(
            (granted as f64 - want).abs() <= 1.0,
            "{granted} retries for 1000 calls"
        );
    }

    #[test]
    fn time_earns_retries_back() {
        let b = RetryBudget::default();
        let now = b.state.lock().unwrap().1;
        while b.try_retry_at(now) {}
        assert!(!b.try_retry_at(now));
        assert!(b.try_retry_at(now + std::time::Duration::from_secs(1)));
    }
}
