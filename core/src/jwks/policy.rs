//! When the worker fetches, when a backend may wake it, when a set is stale, and when a failure
//! is logged. Pure functions of "now" and the settings; times are Unix seconds.

/// The shortest and longest interval between scheduled refreshes, whatever the provider says.
pub const MIN_REFRESH_SECS: i64 = 60;
pub const MAX_REFRESH_SECS: i64 = 24 * 60 * 60;

/// A failure already logged is logged again only after this long (its reason unchanged).
pub const WARNING_REPEAT_SECS: i64 = 60 * 60;

/// The `max-age` of a `Cache-Control` header value, if it has a valid one (RFC 9111 §5.2.2.1:
/// a delta-seconds, possibly quoted). `no-store` and `no-cache` are not obeyed: keys are needed
/// between fetches whatever the provider says; only the refresh interval follows.
pub fn cache_control_max_age(value: &str) -> Option<i64> {
    value.split(',').find_map(|directive| {
        let (name, argument) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        let argument = argument.trim().trim_matches('"');
        if argument.is_empty() || !argument.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Larger than any clamp: saturate instead of failing.
        Some(argument.parse::<i64>().unwrap_or(i64::MAX))
    })
}

/// Seconds until the next scheduled refresh after a success: the provider's `max-age` when it
/// sent one, else the configured interval, within [`MIN_REFRESH_SECS`, `MAX_REFRESH_SECS`].
pub fn refresh_after_success(configured_secs: i64, max_age: Option<i64>) -> i64 {
    max_age
        .unwrap_or(configured_secs)
        .clamp(MIN_REFRESH_SECS, MAX_REFRESH_SECS)
}

/// Seconds until the next attempt after `consecutive_failures` (≥ 1) failures: 30 s, doubling,
/// never later than the configured interval.
pub fn retry_after_failure(configured_secs: i64, consecutive_failures: u32) -> i64 {
    let backoff = 30i64.saturating_mul(1i64 << consecutive_failures.clamp(1, 20).saturating_sub(1));
    backoff.min(configured_secs.max(1))
}

/// When the next attempt is due, `last_attempt` being when the last one ended: after a success
/// (`consecutive_failures` 0) as [`refresh_after_success`] says, else as [`retry_after_failure`].
/// The worker calls it after each attempt and again when a reload changes the interval, so a
/// new interval applies from the last attempt rather than after the next one.
pub fn next_attempt(
    last_attempt: i64,
    configured_secs: i64,
    max_age: Option<i64>,
    consecutive_failures: u32,
) -> i64 {
    last_attempt.saturating_add(if consecutive_failures == 0 {
        refresh_after_success(configured_secs, max_age)
    } else {
        retry_after_failure(configured_secs, consecutive_failures)
    })
}

/// Whether a backend that met an unknown `kid` at `now` may wake the worker, given when the
/// last such wake-up was (0: never). At most one per `min_interval_secs`, so a flood of tokens
/// with random `kid`s costs the provider one request per interval.
pub fn may_request_refresh(now: i64, last_request: i64, min_interval_secs: i64) -> bool {
    last_request == 0 || now.saturating_sub(last_request) >= min_interval_secs
}

/// Whether a set fetched (or last confirmed) at `fetched_at` is past `max_stale_secs` at `now`.
pub fn is_stale(now: i64, fetched_at: i64, max_stale_secs: i64) -> bool {
    now.saturating_sub(fetched_at) > max_stale_secs
}

/// Which failures are logged: a reason not logged before, or the same one an hour later. A
/// provider down for a week logs its reason once an hour, not once per attempt.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WarningLimiter {
    last: Option<(String, i64)>,
}

impl WarningLimiter {
    /// Whether a failure for `reason` at `now` is logged; remembers it if so.
    pub fn should_warn(&mut self, reason: &str, now: i64) -> bool {
        let warn = match &self.last {
            Some((last, at)) => last != reason || now.saturating_sub(*at) >= WARNING_REPEAT_SECS,
            None => true,
        };
        if warn {
            self.last = Some((reason.to_owned(), now));
        }
        warn
    }

    /// A success: the next failure is logged whatever its reason.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_interval_counts_from_the_last_attempt() {
        assert_eq!(next_attempt(1000, 300, None, 0), 1300);
        assert_eq!(next_attempt(1000, 60, None, 0), 1060);
        // The provider's max-age still wins after a success; failures back off within it.
        assert_eq!(next_attempt(1000, 60, Some(600), 0), 1600);
        assert_eq!(next_attempt(1000, 300, None, 1), 1030);
        assert_eq!(next_attempt(1000, 60, None, 5), 1060);
        assert_eq!(next_attempt(i64::MAX - 1, 300, None, 0), i64::MAX);
    }

    #[test]
    fn max_age_is_read_leniently_and_safely() {
        assert_eq!(cache_control_max_age("public, max-age=300"), Some(300));
        assert_eq!(
            cache_control_max_age("MAX-AGE = \"120\" , no-cache"),
            Some(120)
        );
        assert_eq!(cache_control_max_age("s-maxage=5, max-age=7"), Some(7));
        assert_eq!(
            cache_control_max_age("max-age=99999999999999999999999"),
            Some(i64::MAX)
        );
        for bad in [
            "",
            "no-store",
            "max-age=",
            "max-age=-5",
            "max-age=1e3",
            "max-age=abc",
        ] {
            assert_eq!(cache_control_max_age(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_interval_is_clamped_to_a_minute_and_a_day() {
        assert_eq!(refresh_after_success(300, None), 300);
        assert_eq!(refresh_after_success(300, Some(3600)), 3600);
        assert_eq!(refresh_after_success(300, Some(0)), MIN_REFRESH_SECS);
        assert_eq!(refresh_after_success(300, Some(i64::MAX)), MAX_REFRESH_SECS);
        assert_eq!(refresh_after_success(10, None), MIN_REFRESH_SECS);
    }

    #[test]
    fn failures_back_off_up_to_the_interval() {
        assert_eq!(retry_after_failure(300, 1), 30);
        assert_eq!(retry_after_failure(300, 2), 60);
        assert_eq!(retry_after_failure(300, 4), 240);
        assert_eq!(retry_after_failure(300, 5), 300);
        assert_eq!(retry_after_failure(300, u32::MAX), 300);
        assert_eq!(retry_after_failure(300, 0), 30);
    }

    #[test]
    fn unknown_kids_wake_the_worker_once_per_interval() {
        assert!(may_request_refresh(1000, 0, 30));
        assert!(!may_request_refresh(1000, 990, 30));
        assert!(may_request_refresh(1020, 990, 30));
        // A clock stepped back never opens the gate early.
        assert!(!may_request_refresh(900, 990, 30));
        // A flood: one request per 30 s over ten minutes.
        let (mut last, mut requests) = (0, 0);
        for now in 1000..1600 {
            for _ in 0..100 {
                if may_request_refresh(now, last, 30) {
                    last = now;
                    requests += 1;
                }
            }
        }
        assert_eq!(requests, 20);
    }

    #[test]
    fn staleness() {
        assert!(!is_stale(1000, 400, 600));
        assert!(is_stale(1001, 400, 600));
        assert!(!is_stale(i64::MIN, 400, 600));
        assert!(is_stale(i64::MAX, i64::MIN, 600));
    }

    #[test]
    fn a_reason_is_logged_once_an_hour() {
        let mut limiter = WarningLimiter::default();
        assert!(limiter.should_warn("down", 0));
        assert!(!limiter.should_warn("down", 30));
        assert!(!limiter.should_warn("down", WARNING_REPEAT_SECS - 1));
        assert!(limiter.should_warn("other", WARNING_REPEAT_SECS - 1));
        assert!(limiter.should_warn("down", WARNING_REPEAT_SECS));
        assert!(!limiter.should_warn("down", WARNING_REPEAT_SECS + 10));
        limiter.reset();
        assert!(limiter.should_warn("down", WARNING_REPEAT_SECS + 11));
    }
}
