//! When to try a call again, and how long to wait first.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::api::CallError;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles each attempt.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// The longest Retry-After honoured as given; longer ones are clamped to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(20),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

/// How many 429s a call waits out for each attempt `--max-attempts` allows after the first (25 at
/// the default 6, none at 1): they do not spend attempts (the service is pacing the run, not
/// failing it), but a call the service keeps refusing that long is better reported than waited on.
pub const THROTTLED_PER_ATTEMPT: u32 = 5;

impl RetryPolicy {
    /// How many 429s one call may wait out.
    pub fn throttled_allowed(&self) -> u32 {
        self.max_attempts.saturating_sub(1) * THROTTLED_PER_ATTEMPT
    }

    /// How long to wait before attempt `attempts + 1`, or `None` when the call should not be tried
    /// again. `retry_after` is the raw header of the failed answer, if any.
    pub fn next_delay(
        &self,
        attempts: u32,
        err: &CallError,
        retry_after: Option<&str>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        // A 429's attempts are counted against their own allowance (`throttled_allowed`).
        let throttled = err.status() == Some(429);
        if !err.is_retryable() || (attempts >= self.max_attempts && !throttled) {
            return None;
        }
        if let Some(wait) = retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())) {
            return Some(wait.min(self.max_retry_after));
        }
        match throttled {
            // Without a Retry-After, a 429 waits at least a second (no limit the service can
            // state in whole seconds resets sooner), growing like any backoff.
            true => Some(self.backoff(attempts, rng).max(Duration::from_secs(1))),
            false => Some(self.backoff(attempts, rng)),
        }
    }

    /// Capped exponential backoff with full jitter: uniform in `[0, min(cap, base·2^(n-1))]`.
    pub fn backoff(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << exp).min(self.cap);
        ceiling.mul_f64(rng.random::<f64>())
    }
}

/// The longest wait any `Retry-After` is taken at: a longer one, however it is written, is read as
/// this, so no answer can stall a run for longer or overflow a clock.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`].
/// A value that is neither (negative, not a number, too long to be either) is ignored: `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.len() > 64 {
        return None;
    }
    if let Some(secs) = v.parse::<f64>().ok().filter(|s| s.is_finite()) {
        return (secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceError;
    use rand::{rngs::StdRng, SeedableRng};

    fn svc(status: u16) -> CallError {
        CallError::Service(ServiceError {
            status,
            code: None,
            message: String::new(),
        })
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("57", now), Some(Duration::from_secs(57)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn an_absurd_retry_after_is_bounded_or_ignored_never_a_panic() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for huge in ["99999999999999999999999", "1e300", "18446744073709551616"] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        let far = httpdate::fmt_http_date(now + Duration::from_secs(50 * 365 * 86_400));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
        for junk in ["-5", "-1e300", "NaN", "inf", "soon", "", &"9".repeat(5000)] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:.20}");
        }
        assert_eq!(
            parse_retry_after("2.5", now),
            Some(Duration::from_millis(2500))
        );
    }

    #[test]
    fn backoff_stays_under_its_doubling_cap() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempts in 1..=10u32 {
            let ceiling = p.base.saturating_mul(1 << (attempts - 1)).min(p.cap);
            for _ in 0..50 {
                assert!(p.backoff(attempts, &mut rng) <= ceiling);
            }
        }
    }

    #[test]
    fn no_retry_for_client_errors_or_after_the_last_attempt() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        assert!(p.next_delay(1, &svc(404), None, &mut rng).is_none());
        assert!(p.next_delay(6, &svc(503), None, &mut rng).is_none());
        assert!(p.next_delay(5, &svc(503), None, &mut rng).is_some());
        assert_eq!(
            p.next_delay(1, &svc(429), Some("3"), &mut rng),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            p.next_delay(1, &svc(429), Some("99999"), &mut rng),
            Some(p.max_retry_after)
        );
    }
}
