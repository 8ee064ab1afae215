//! What a run's calls did, from its events: calls, retries and 429s, the rows waiting to be sent
//! again, latency percentiles, and calls and 429s per second over time (for the report's chart).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::events::Event;

/// One second of a run: calls sent and 429s met in it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Second {
    pub calls: u32,
    pub throttled: u32,
}

/// Latency percentiles of the calls that were answered (or timed out), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The seconds a timeline keeps (a week); later calls count in the last second kept.
const MAX_SECONDS: usize = 7 * 86_400;
/// The longest latency told apart, in microseconds (an hour); longer ones count as an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Call counts of a run, kept from its events on the listener's thread.
#[derive(Debug)]
pub struct CallStats {
    pub calls: u64,
    pub retries: u64,
    pub throttled: u64,
    pub token_renewals: u64,
    /// Rows whose retry is scheduled and not yet sent.
    waiting: HashSet<usize>,
    /// When the first call went out.
    start: Option<Instant>,
    /// Calls and 429s per second since the first call.
    pub per_second: Vec<Second>,
    /// Microseconds per answered call (two significant digits: percentiles within 1%).
    latency: Histogram<u64>,
    /// From the first call to the last answer.
    sending: Duration,
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            calls: 0,
            retries: 0,
            throttled: 0,
            token_renewals: 0,
            waiting: HashSet::new(),
            start: None,
            per_second: Vec::new(),
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 2)
                .expect("bounds within what hdrhistogram supports"),
            sending: Duration::ZERO,
        }
    }
}

impl CallStats {
    /// Counts one event (events that are not about calls are ignored).
    pub fn on(&mut self, event: &Event) {
        match event {
            Event::CallSent { row, attempt, .. } => {
                self.calls += 1;
                self.second().calls += 1;
                if *attempt > 1 && !self.waiting.is_empty() {
                    self.waiting.remove(row);
                }
            }
            Event::CallAnswered { elapsed, .. } => {
                let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
                if let Some(start) = self.start {
                    self.sending = start.elapsed();
                }
            }
            Event::Throttled { .. } => {
                self.throttled += 1;
                self.second().throttled += 1;
            }
            Event::RetryScheduled { row, .. } => {
                self.retries += 1;
                self.waiting.insert(*row);
            }
            Event::TokenRenewed => self.token_renewals += 1,
            Event::RowFinished(f) if !self.waiting.is_empty() => {
                self.waiting.remove(&f.outcome.row);
            }
            _ => {}
        }
    }

    /// The second of the run it is now.
    fn second(&mut self) -> &mut Second {
        let start = *self.start.get_or_insert_with(Instant::now);
        let i = (start.elapsed().as_secs() as usize).min(MAX_SECONDS - 1);
        if self.per_second.len() <= i {
            self.per_second.resize(i + 1, Second::default());
        }
        &mut self.per_second[i]
    }

    /// Rows waiting now for a retry to be sent.
    pub fn retrying(&self) -> usize {
        self.waiting.len()
    }

    /// Calls per second from the first call to the last answer (`None` before two calls).
    pub fn rate(&self) -> Option<f64> {
        let s = self.sending.as_secs_f64();
        (self.calls > 1 && s > 0.0).then(|| self.calls as f64 / s)
    }

    /// Latency percentiles, or `None` when no call was answered.
    pub fn latency(&self) -> Option<Latency> {
        if self.latency.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            p50: ms(self.latency.value_at_quantile(0.50)),
            p90: ms(self.latency.value_at_quantile(0.90)),
            p99: ms(self.latency.value_at_quantile(0.99)),
            max: ms(self.latency.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(row: usize, attempt: u32) -> Event {
        Event::CallSent {
            row,
            method: "GET",
            attempt,
            correlation_id: uuid::Uuid::nil(),
            request_id: uuid::Uuid::nil(),
        }
    }

    fn answered(ms: u64) -> Event {
        Event::CallAnswered {
            row: 1,
            status: Some(200),
            elapsed: Duration::from_millis(ms),
        }
    }

    #[test]
    fn a_row_waits_for_its_retry_until_it_is_sent_again() {
        let mut s = CallStats::default();
        s.on(&sent(1, 1));
        s.on(&Event::Throttled {
            row: 1,
            retry_after: Some(Duration::from_secs(2)),
        });
        s.on(&Event::RetryScheduled {
            row: 1,
            attempt: 2,
            wait: Duration::from_secs(2),
        });
        assert_eq!(
            (s.calls, s.throttled, s.retries, s.retrying()),
            (1, 1, 1, 1)
        );
        // Another row's second attempt (after a token renewal: no retry scheduled) is not row 1's.
        s.on(&sent(2, 2));
        assert_eq!(s.retrying(), 1);
        s.on(&sent(1, 2));
        assert_eq!(s.retrying(), 0);
        assert_eq!(s.per_second.iter().map(|x| x.calls).sum::<u32>(), 3);
        assert_eq!(s.per_second.iter().map(|x| x.throttled).sum::<u32>(), 1);
    }

    #[test]
    fn latency_percentiles_come_from_the_answers() {
        let mut s = CallStats::default();
        assert!(s.latency().is_none());
        for ms in 1..=100 {
            s.on(&answered(ms));
        }
        let l = s.latency().unwrap();
        assert!((49.0..=51.0).contains(&l.p50), "{l:?}");
        assert!((89.0..=91.0).contains(&l.p90), "{l:?}");
        assert!((98.0..=100.5).contains(&l.p99), "{l:?}");
        assert!((99.0..=100.5).contains(&l.max), "{l:?}");
        // An absurd latency is counted, not a panic.
        s.on(&answered(u64::MAX / 1000));
        assert!(s.latency().unwrap().max >= 3_599_000.0);
    }
}
