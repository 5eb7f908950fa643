//! What a backend does with the fetched keys: read them from shared memory when the generation
//! moved, and, for a token naming a `kid` no key has, wake the worker (at most once per
//! `electric_auth.jwks_min_refresh_interval`) and wait up to `electric_auth.jwks_timeout` for a
//! new set. Never any network here.

use super::settings::{self, KeySource};
use super::shmem;
use electric_auth_core::header_kid;
use electric_auth_core::jwks::policy::{is_stale, may_request_refresh};
use electric_auth_core::jwks::{FetchedKeys, FetchedState};
use electric_auth_core::{Config, ConfigError, Settings};
use pgrx::pg_sys;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Changes whenever the worker publishes a new document, for any source (a key setting
/// assigned here bumps the settings generation instead).
pub fn generation() -> u64 {
    shmem::shared().map_or(0, |s| s.generation())
}

/// Whether a verifier built with `recheck_at` must be rebuilt now (stale keys, see [`config`]).
pub fn past(recheck_at: Option<i64>) -> bool {
    recheck_at.is_some_and(|at| crate::keys::clock_now() >= at)
}

/// The configuration for `settings` with the fetched keys as they are now (the default
/// issuer's and each listed issuer's), and when it must be looked at again even if no
/// generation moves (when a set turns stale, or, once stale, every second until a refresh
/// succeeds).
pub fn config(settings: &Settings) -> Result<(Config, Option<i64>), ConfigError> {
    let (fetched, mut recheck_at) = fetched_keys()?;
    let recheck = std::cell::Cell::new(None::<i64>);
    let config = Config::build(settings, fetched.as_ref(), &|index, spec| {
        let (member, url) = spec.source.fetched()?;
        let max_stale = spec
            .max_stale
            .unwrap_or_else(|| i64::from(settings::MAX_STALE.get()));
        let (keys, at) = fetched_from(1 + index, member, url, max_stale);
        if let Some(at) = at {
            recheck.set(Some(recheck.get().map_or(at, |r: i64| r.min(at))));
        }
        Some(keys)
    })?;
    if let Some(at) = recheck.get() {
        recheck_at = Some(recheck_at.map_or(at, |r| r.min(at)));
    }
    Ok((config, recheck_at))
}

fn fetched_keys() -> Result<(Option<FetchedKeys>, Option<i64>), ConfigError> {
    let source = KeySource::current();
    let (setting, value) = match &source {
        KeySource::None => return Ok((None, None)),
        KeySource::Both => return Err(ConfigError::KeySourceConflict),
        _ => source.setting_and_value().expect("a source"),
    };
    let max_stale = i64::from(settings::MAX_STALE.get());
    let (keys, recheck_at) = fetched_from(0, setting, value, max_stale);
    Ok((Some(keys), recheck_at))
}

/// The keys slot `slot` holds for the source `value` (named `setting` in messages), judged
/// stale by `max_stale`; pending when the slot holds nothing for that source (yet).
fn fetched_from(
    slot: usize,
    setting: &'static str,
    value: &str,
    max_stale: i64,
) -> (FetchedKeys, Option<i64>) {
    let keys = |state| FetchedKeys {
        setting,
        source: value.to_owned(),
        state,
    };
    let Some(shared) = shmem::shared() else {
        return (keys(FetchedState::Pending), None);
    };
    let shared = shared.slot(slot);
    let fetched_at = shared.fetched_at.load(Ordering::Acquire);
    let document = shared.read(|state| {
        (state.source.get() == value.as_bytes() && !state.document.get().is_empty())
            .then(|| state.document.string())
    });
    let Some(document) = document else {
        return (keys(FetchedState::Pending), None);
    };
    let now = crate::keys::clock_now();
    if is_stale(now, fetched_at, max_stale) {
        let stale = FetchedState::Stale {
            age_secs: now - fetched_at,
            max_stale_secs: max_stale,
        };
        (keys(stale), Some(now + 1))
    } else {
        let recheck_at = fetched_at.saturating_add(max_stale).saturating_add(1);
        (keys(FetchedState::Document(document)), Some(recheck_at))
    }
}

/// Why a refusal may be cured by keys the worker has not fetched yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A `kid` in no key, a signature no key verifies, or no keys yet.
    ForKey,
    /// The fetched keys are stale or none is usable (say, for a `jwt_alg` just switched):
    /// only a fetch cures that, whatever the token.
    ForUsableKeys,
}

/// What key-source settings a backend's verifier was built with (beside Electric's eight):
/// a reload that changes one rebuilds it, so a lowered `jwks_max_stale` reaches open sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySettings {
    source: KeySource,
    max_stale: i32,
}

pub fn key_settings() -> KeySettings {
    KeySettings {
        source: KeySource::current(),
        max_stale: settings::MAX_STALE.get(),
    }
}

/// Whether the fetched keys of `slot` are stale now by `max_stale`, as verification judges
/// them (the one rule `key_source()` shows too).
pub fn stale_now(slot: &shmem::SharedKeys, max_stale: i64) -> bool {
    let fetched_at = slot.fetched_at.load(Ordering::Acquire);
    let has_document = slot.read(|state| !state.document.get().is_empty());
    has_document && is_stale(crate::keys::clock_now(), fetched_at, max_stale)
}

/// The fetched source of the token's issuer, as the settings say now: slot 0 for the default
/// issuer (`issuer` `None`), `i + 1` for listed issuer `i`; `None` when that issuer's keys are
/// not fetched.
fn fetched_slot(issuer: Option<usize>) -> Option<usize> {
    match issuer {
        None => (!matches!(KeySource::current(), KeySource::None | KeySource::Both)).then_some(0),
        Some(index) => settings::issuer_specs()
            .get(index)
            .and_then(|spec| spec.source.fetched())
            .map(|_| 1 + index),
    }
}

/// After a token was refused by a verifier built from the keys of `seen_generation` (read
/// before that verification), for `why`: whether newer keys are there, so that verifying again
/// is worth it. Asks the worker for a refresh — at most once per
/// `electric_auth.jwks_min_refresh_interval` — and waits at most `jwks_timeout` for it.
///
/// For a `kid` in no key, a request the rate limit holds back is deferred to the first moment
/// it allows (at most one such per interval, whoever asks) and waited for: a provider that
/// adds a key and signs with it at once is absorbed even while junk `kid`s keep the limit busy,
/// within `min_refresh_interval` plus one fetch (the README's defaults keep that under
/// `jwks_timeout`), and the provider still gets at most one request per interval. Stale or
/// unusable keys ask only when the limit allows (a provider that is down must not hold every
/// token for `jwks_timeout`).
///
/// Keys published after the refusal count even when this backend did not wait for them: when
/// several backends meet the same new `kid` at once (a Citus worker's connections of one
/// distributed query), one wakes the worker and the refresh may land before another has looked;
/// that one verifies again at once rather than being refused.
pub fn wait_for_new_keys(
    token: &str,
    issuer: Option<usize>,
    seen_generation: u64,
    why: Wait,
    kid_known: impl FnOnce(&str) -> bool,
) -> bool {
    let Some(sources) = shmem::shared() else {
        return false;
    };
    let Some(slot) = fetched_slot(issuer) else {
        return false;
    };
    let shared = sources.slot(slot);
    let newer = || sources.generation() != seen_generation;
    if newer() {
        return true;
    }
    if why == Wait::ForKey {
        match header_kid(token) {
            // Known to the keys of `seen_generation` (unless a refresh just landed, read above).
            Some(kid) if kid_known(&kid) => return newer(),
            Some(_) => {}
            // A token without a `kid` waits only for the very first keys.
            None if shared.fetched_at.load(Ordering::Acquire) != 0 => return newer(),
            None => {}
        }
    }
    let generation = seen_generation;
    let now = crate::keys::clock_now_ms();
    let last = shared.refresh_requested_at.load(Ordering::Acquire);
    let min_interval = i64::from(settings::MIN_REFRESH_INTERVAL.get()).saturating_mul(1000);
    let timeout = settings::timeout();
    let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    let requested = if may_request_refresh(now, last, min_interval) {
        shared
            .refresh_requested_at
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    } else if why == Wait::ForKey && !shared.refresh_pending() {
        // Held back by the limit, none under way or deferred: the first moment the limit
        // allows, for everyone (a later asker finds it pending and waits for it too) — if this
        // backend can wait that long; a limit longer than jwks_timeout defers nothing.
        let due = last.saturating_add(min_interval);
        due.saturating_sub(now) <= timeout_ms
            && shared
                .refresh_requested_at
                .compare_exchange(last, due, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    } else {
        false
    };
    if requested {
        sources.wake_worker();
    } else if !shared.refresh_pending() {
        // No refresh under way or deferred, and none allowed yet: refuse now (unless one
        // landed since the refusal).
        return newer();
    }
    // Wait for an attempt that began after the last request (ours, or the one that stopped us
    // asking): an attempt already under way may have begun before the key was published.
    let wanted = shared.refresh_requested_at.load(Ordering::Acquire);
    if wanted.saturating_sub(now) > timeout_ms {
        // Deferred past this backend's wait (another backend's jwks_timeout was longer):
        // refuse now; the refresh still runs when it is due, for the tokens that come then.
        return newer();
    }
    let deadline = Instant::now() + timeout;
    loop {
        let served = shared.refresh_served_at.load(Ordering::Acquire) >= wanted;
        if served || Instant::now() >= deadline {
            return sources.generation() != generation;
        }
        // SAFETY: waits on this backend's own latch for 10 ms (the worker does not set it);
        // interrupts (a cancel, a terminate) are served right after.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                10,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
        pgrx::check_for_interrupts!();
    }
}
