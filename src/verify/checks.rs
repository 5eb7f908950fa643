//! What every verification in a backend shares, whichever path answers (`verify_now`/`verify_at`
//! in `mod.rs`, `answer_now` in `fast.rs`): the session checks, "now", the insecure-mode warning,
//! and the one wait for the key worker on a `kid` in no key.
#![allow(clippy::result_large_err)]

use super::cache;
use crate::errors::warn_once;
use crate::guard;
pub(super) use crate::keys::backend::Wait;
use electric_auth_core::{ConfigError, Error, TokenError, VerifiedToken};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::cell::Cell;

/// Refuses to verify in a session that cannot verify as the superuser configured it (a refused
/// setting, see `guard/refused.rs`) or in a database that is not UTF8.
pub fn check_session() -> Result<(), ErrorReport> {
    if let Some(name) = guard::refused_setting() {
        return Err(refused_setting_error(&name));
    }
    // SAFETY: reads the backend's database encoding, fixed for its lifetime.
    if unsafe { pg_sys::GetDatabaseEncoding() } != pg_sys::pg_enc::PG_UTF8 as i32 {
        return Err(not_utf8_error());
    }
    Ok(())
}

/// Whether a refusal may be cured by keys the worker has not fetched yet, and why: a `kid` in
/// no key (or a signature no key verifies), fetched keys still pending; or fetched keys that
/// are stale or have none usable (a `jwt_alg` switched to what only a newer document holds).
pub(super) fn worth_waiting_for_keys<R>(result: &Result<R, Error>) -> Option<Wait> {
    match result {
        Err(Error::Token(TokenError::UnknownKey | TokenError::InvalidSignature))
        | Err(Error::Config(ConfigError::FetchedKeysPending { .. })) => Some(Wait::ForKey),
        Err(Error::Config(
            ConfigError::FetchedKeysStale { .. } | ConfigError::FetchedKeysUnusable { .. },
        )) => Some(Wait::ForUsableKeys),
        _ => None,
    }
}

/// The fetched keys' generation: read before a verification, so that [`new_keys_arrived`] after
/// its refusal knows which keys refused it.
pub(super) fn keys_generation() -> u64 {
    crate::keys::backend::generation()
}

/// After a refusal by the keys of `seen_generation` (see [`keys_generation`]): wakes the key
/// worker for `token`'s `kid` and waits (up to `electric_auth.jwks_timeout`) for a key set that
/// names it; true when newer keys are there, arrived meanwhile or before (see `keys/backend.rs`).
pub(super) fn new_keys_arrived(token: &str, seen_generation: u64, why: Wait) -> bool {
    // The issuer whose source to wake: the one the token names (electric_auth.issuers), else
    // the default issuer.
    let issuer = cache::issuer_of(token.as_bytes());
    crate::keys::backend::wait_for_new_keys(token, issuer, seen_generation, why, |kid| {
        cache::with_verifier(|verifier, _| verifier.config().names_kid(issuer, kid))
            .unwrap_or(false)
    })
}

/// Whether a token the fast path verified is revoked (see `revocation`).
pub(super) fn is_revoked(token: &[u8], passed: &electric_auth_core::Passed<'_>) -> bool {
    crate::revocation::revoked(token, passed.iss, passed.jti, passed.user_id, passed.iat)
}

/// Whether a token the full path (or the token cache) verified is revoked: its claims are read
/// only when something is revoked.
pub(super) fn is_revoked_verified(token: &[u8], verified: &VerifiedToken) -> bool {
    crate::revocation::any() && is_revoked(token, &electric_auth_core::Passed::of(verified))
}

/// See [`guard::refused_setting`]: the session cannot verify as the superuser configured.
fn refused_setting_error(name: &str) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!(
            "electric_auth will not verify tokens in this session: a value of {name} set \
             before the library loaded (connection options, a role/database setting, or a SET \
             since reset or rolled back) was refused or lost when the library loaded"
        ),
        "electric_auth",
    )
    .set_hint(
        "Postgres refuses such values from roles without permission to set them (see the \
         WARNING when electric_auth loaded), and the configured value is then lost for the \
         session. Reconnect without setting electric_auth.* that way (for example in \
         PGOPTIONS), load the library first (LOAD 'electric_auth') before setting \
         electric_auth.* in a session, or add electric_auth to shared_preload_libraries so \
         such connections are refused outright and RESET ALL cannot drop a setting.",
    )
}

/// A database that is not UTF8 (an install from before 0.2.0, which did not refuse one).
fn not_utf8_error() -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        "electric_auth requires a database with encoding UTF8",
        "electric_auth",
    )
    .set_hint("Use electric_auth from a database created with ENCODING 'UTF8'.")
}

/// The current statement's start, in Unix seconds: one clock for the whole statement.
pub fn statement_time() -> i64 {
    // SAFETY: reads a backend-local timestamp; callable whenever a statement runs.
    unix_seconds(unsafe { pg_sys::GetCurrentStatementStartTimestamp() })
}

/// The clock now, in Unix seconds (not the statement's start).
pub fn clock_now() -> i64 {
    // SAFETY: reads the system clock; callable whenever a backend runs.
    unix_seconds(unsafe { pg_sys::GetCurrentTimestamp() })
}

/// A Postgres timestamp (microseconds since 2000-01-01) in Unix seconds.
pub fn unix_seconds(timestamp: pg_sys::TimestampTz) -> i64 {
    const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
    timestamp.div_euclid(1_000_000) + POSTGRES_EPOCH_IN_UNIX_SECONDS
}

thread_local! {
    static INSECURE_MODE_WARNED: Cell<bool> = const { Cell::new(false) };
}

/// Warns once per session that tokens are not being verified.
pub(super) fn insecure_mode_warning() {
    warn_once(
        &INSECURE_MODE_WARNED,
        "electric_auth.mode is insecure: token signatures are not verified",
        "Insecure mode is for development only; set electric_auth.mode = secure in production.",
    );
}
