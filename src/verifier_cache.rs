//! One parsed [`Verifier`] per backend, rebuilt only when a setting has really changed.
//!
//! The fast path is one integer comparison: the settings' assign hooks bump a generation
//! counter. When it moved, the settings are read again and compared with the ones the cached
//! verifier was built from; only a real difference re-parses the key.

use crate::gucs;
use electric_auth_core::{Config, ConfigError, Settings, Verifier};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

struct CachedVerifier {
    generation: u64,
    settings: Settings,
    verifier: Rc<Verifier>,
}

thread_local! {
    static CACHE: RefCell<Option<CachedVerifier>> = const { RefCell::new(None) };
    static REBUILDS: Cell<u64> = const { Cell::new(0) };
}

/// The verifier for the settings in force now, or the configuration error they cause.
pub fn current_verifier() -> Result<Rc<Verifier>, ConfigError> {
    let generation = gucs::settings_generation();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(cached) = cache.as_ref().filter(|c| c.generation == generation) {
            return Ok(cached.verifier.clone());
        }
        let settings = gucs::current_settings();
        if let Some(cached) = cache.as_mut().filter(|c| c.settings == settings) {
            cached.generation = generation;
            return Ok(cached.verifier.clone());
        }
        REBUILDS.set(REBUILDS.get() + 1);
        let verifier = Rc::new(Verifier::new(Config::from_settings(&settings)?));
        *cache = Some(CachedVerifier {
            generation,
            settings,
            verifier: verifier.clone(),
        });
        Ok(verifier)
    })
}

#[cfg(any(test, feature = "pg_test"))]
/// How many times this backend has parsed the settings into a verifier; tests use it to prove
/// that a key is not parsed again per call.
pub fn rebuilds() -> u64 {
    REBUILDS.get()
}
