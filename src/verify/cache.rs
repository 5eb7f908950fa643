//! One parsed [`Verifier`] per backend, rebuilt only when a setting has really changed, and a
//! bounded [`TokenCache`] of tokens it verified, dropped whenever any setting is assigned.
//!
//! The fast path is one integer comparison: the settings' assign hooks bump a generation
//! counter. When it moved, the token cache is emptied, and the settings are read again and
//! compared with the ones the cached verifier was built from; only a real difference re-parses
//! the key.

use super::settings::current_settings;
use crate::{keys, settings};
use electric_auth_core::{ConfigError, Settings, TokenCache, Verifier, DEFAULT_BUDGET_BYTES};
use std::cell::{Cell, RefCell};

struct CachedVerifier {
    generation: u64,
    /// The fetched keys' generation and when to look at them again (see `keys/backend.rs`).
    keys_generation: u64,
    keys_recheck_at: Option<i64>,
    settings: Settings,
    /// The key-source settings the fetched keys were read with (`jwks_max_stale` decides
    /// `keys_recheck_at`).
    key_settings: keys::backend::KeySettings,
    verifier: Verifier,
    tokens: TokenCache,
    /// The stats lane of each listed issuer (`electric_auth.issuers`' order).
    lanes: Vec<usize>,
}

thread_local! {
    static CACHE: RefCell<Option<CachedVerifier>> = const { RefCell::new(None) };
    static REBUILDS: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with the verifier for the settings in force now and its token cache, or returns the
/// configuration error those settings cause.
pub fn with_verifier<R>(f: impl FnOnce(&Verifier, &mut TokenCache) -> R) -> Result<R, ConfigError> {
    let generation = settings::generation();
    let keys_generation = keys::backend::generation();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let current = cache.as_ref().is_some_and(|c| {
            c.generation == generation
                && c.keys_generation == keys_generation
                && !keys::backend::past(c.keys_recheck_at)
        });
        if !current {
            let settings = current_settings();
            let key_settings = keys::backend::key_settings();
            match cache.as_mut().filter(|c| {
                c.settings == settings
                    && c.key_settings == key_settings
                    && c.keys_generation == keys_generation
                    && !keys::backend::past(c.keys_recheck_at)
            }) {
                Some(cached) => {
                    // Same settings, but a setting was assigned: start a fresh token cache.
                    cached.generation = generation;
                    cached.tokens = TokenCache::new(DEFAULT_BUDGET_BYTES);
                }
                None => {
                    *cache = None; // never keep tokens verified under other settings
                    REBUILDS.set(REBUILDS.get() + 1);
                    let (config, keys_recheck_at) = keys::backend::config(&settings)?;
                    let lanes = crate::stats::issuer_lanes(&config.issuer_names());
                    let verifier = Verifier::new(config);
                    *cache = Some(CachedVerifier {
                        lanes,
                        generation,
                        keys_generation,
                        keys_recheck_at,
                        settings,
                        key_settings,
                        verifier,
                        tokens: TokenCache::new(DEFAULT_BUDGET_BYTES),
                    });
                }
            }
        }
        let cached = cache.as_mut().expect("built above");
        Ok(f(&cached.verifier, &mut cached.tokens))
    })
}

/// The stats lane of the issuer a token verified (or was refused) under: 0 for the default
/// issuer (`None`), else the listed issuer's (see `stats`).
pub fn issuer_lane(issuer: Option<usize>) -> usize {
    let Some(index) = issuer else {
        return 0;
    };
    CACHE.with(|cache| {
        cache
            .try_borrow()
            .ok()
            .and_then(|c| c.as_ref().and_then(|c| c.lanes.get(index).copied()))
            .unwrap_or(0)
    })
}

/// The listed issuer `token` selects under the settings in force (`None`: the default
/// issuer, or no verifier can be built); for counting a refusal.
pub fn issuer_of(token: &[u8]) -> Option<usize> {
    with_verifier(|verifier, _| verifier.issuer_of(token))
        .ok()
        .flatten()
}

/// The index of the listed issuer whose `iss` is exactly `iss`, under the settings in force.
#[cfg_attr(not(feature = "pg18"), allow(dead_code))] // the OAuth validator, PostgreSQL 18 only
pub fn issuer_index(iss: &str) -> Option<usize> {
    with_verifier(|verifier, _| verifier.config().issuer_index(iss))
        .ok()
        .flatten()
}

/// How many verifiers this backend has built, after making sure the one in force is current:
/// it moves whenever what a verification uses changes — a setting, the fetched keys (a key the
/// provider retired, a set gone stale) — so a held identity knows to be verified again
/// (`identity/carrier.rs`). A configuration that cannot be built is tried again on every call,
/// so it moves then too, and the verification that follows raises the error.
pub fn verifier_builds() -> u64 {
    let _ = with_verifier(|_, _| ());
    REBUILDS.get()
}

#[cfg(any(test, feature = "pg_test"))]
/// How many times this backend has parsed the settings into a verifier; tests use it to prove
/// that a key is not parsed again per call.
pub fn rebuilds() -> u64 {
    REBUILDS.get()
}

#[cfg(any(test, feature = "pg_test"))]
/// How many verified tokens this backend's cache holds.
pub fn cached_tokens() -> usize {
    CACHE.with(|cache| cache.borrow().as_ref().map_or(0, |c| c.tokens.len()))
}
