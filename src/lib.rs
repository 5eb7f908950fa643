//! electric_auth: verify Electric sync clients' JWTs inside PostgreSQL.
//!
//! All token logic lives in the pgrx-free `electric_auth_core` crate; this crate is the glue:
//! settings (`gucs`), the per-backend verifier cache, error mapping and the SQL functions.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::cell::Cell;

mod activity;
mod api;
mod citus;
mod errors;
mod gucs;
mod log_redaction;
// PostgreSQL 18 only: the OAuth validator module API (libpq/oauth.h) is new in 18.
#[cfg(feature = "pg18")]
mod oauth;
mod payload_jsonb;
mod session;
mod tamper;
mod token_text;
mod utility_redaction;
mod verifier_cache;
mod verify;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    let placeholders = tamper::placeholders_before_definition();
    gucs::init();
    tamper::mark_refused_placeholders(placeholders);
    log_redaction::init();
    utility_redaction::init();
    activity::init();
}

thread_local! {
    static INSECURE_MODE_WARNED: Cell<bool> = const { Cell::new(false) };
}

/// Reports a WARNING the first time `flag` is raised in this session.
pub(crate) fn warn_once(
    flag: &'static std::thread::LocalKey<Cell<bool>>,
    message: &'static str,
    hint: &'static str,
) {
    if !flag.with(|warned| warned.replace(true)) {
        ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "electric_auth")
            .set_hint(hint)
            .report(PgLogLevel::WARNING);
    }
}

/// Warns once per session that tokens are not being verified.
fn insecure_mode_warning() {
    warn_once(
        &INSECURE_MODE_WARNED,
        "electric_auth.mode is insecure: token signatures are not verified",
        "Insecure mode is for development only; set electric_auth.mode = secure in production.",
    );
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
