//! electric_auth: verify Electric sync clients' JWTs inside PostgreSQL.
//!
//! All token logic lives in the pgrx-free `electric_auth_core` crate; this crate is the glue,
//! one folder per concern, dependencies pointing down this list (see the README's layout):
//! `sql` (the SQL functions) → `identity` (the session identity, Citus, the PG 18 validator) →
//! `verify` (the per-backend verifier) → `keys` (keys fetched from an identity provider by a
//! background worker, read from shared memory) → `revocation` (revoked tokens and users, in
//! shared memory, WAL-logged) → `guard` (refused settings, secrets kept out of logs and
//! views) → `stats` (verifications counted in shared memory, the audit log) → `settings` (the
//! registry of every setting) → the core; `errors` maps core errors to Postgres errors for all
//! of them.

use pgrx::prelude::*;

mod errors;
mod guard;
mod identity;
mod keys;
mod revocation;
mod settings;
mod sql;
mod stats;
mod verify;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Placeholders a session created before the library loaded, which defining the settings
    // replaces (see guard/refused.rs).
    let placeholders = guard::placeholders_before_definition();
    // Before the settings: their check hooks need to know whether the library is preloaded.
    keys::init();
    revocation::init();
    settings::register(&[
        &verify::settings::declared(),
        &guard::declared_settings(),
        &identity::declared_settings(),
        &keys::settings::declared(),
        &stats::declared_settings(),
        &revocation::declared(),
    ]);
    guard::mark_refused_placeholders(placeholders);
    guard::init();
    stats::init();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
