//! Verifying a token in this backend: the session checks, "now", the cached verifier (`cache`)
//! built from Electric's settings (`settings`). Shared by the SQL functions (`sql/`) and the
//! session identity (`identity/`).
#![allow(clippy::result_large_err)]

pub mod cache;
mod fast;
pub mod settings;

pub use fast::answer_now;

use crate::errors::{error_report, warn_once};
use crate::guard;
use crate::stats;
use electric_auth_core::outcome::{EntryPoint, Reason};
use electric_auth_core::{ConfigError, Error, TokenError, VerifiedToken, Verifier};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::cell::Cell;

/// Verifies `token` (a text argument's bytes) at statement time and maps the result with
/// `answer`; every refusal as the Postgres error the spec gives it.
pub fn verify_now<R>(
    entry: EntryPoint,
    token: &[u8],
    answer: impl FnOnce(&VerifiedToken, &Verifier) -> R,
) -> Result<R, ErrorReport> {
    check_session().inspect_err(|_| stats::refused(entry, Reason::RefusedSession))?;
    // In a UTF8 database Postgres has already validated the text; this cannot fail there.
    let Ok(token) = std::str::from_utf8(token) else {
        stats::refused(entry, Reason::InvalidToken);
        return Err(error_report(Error::Token(TokenError::InvalidToken)));
    };
    stats::counted(entry, verify_at(token, statement_time(), answer)).map_err(error_report)
}

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

/// Verifies `token` at `now` through the per-backend cache of verified tokens, after
/// [`check_session`]; warns (once) when the mode is insecure.
///
/// A token refused for its signature while it names a `kid` no key has (or refused because no
/// fetched keys arrived yet) may be signed by a key the provider just added: the key worker is
/// woken and, when new keys arrive within `electric_auth.jwks_timeout`, the token is verified
/// once more (see `keys/backend.rs`).
pub fn verify_at<R>(
    token: &str,
    now: i64,
    answer: impl FnOnce(&VerifiedToken, &Verifier) -> R,
) -> Result<R, Error> {
    let mut answer = Some(answer);
    let mut result = verify_once(token, now, &mut answer);
    if worth_waiting_for_keys(&result) && new_keys_arrived(token) {
        result = verify_once(token, now, &mut answer);
    }
    result
}

/// Whether a refusal may be cured by keys the worker has not fetched yet: a `kid` in no key
/// (or a signature no key verifies), or fetched keys still pending.
fn worth_waiting_for_keys<R>(result: &Result<R, Error>) -> bool {
    matches!(
        result,
        Err(Error::Token(
            TokenError::UnknownKey | TokenError::InvalidSignature
        )) | Err(Error::Config(ConfigError::FetchedKeysPending { .. }))
    )
}

/// Wakes the key worker for `token`'s `kid` and waits (up to `electric_auth.jwks_timeout`) for
/// a key set that names it; true when one arrived (see `keys/backend.rs`).
fn new_keys_arrived(token: &str) -> bool {
    crate::keys::backend::wait_for_new_keys(token, |kid| {
        cache::with_verifier(|verifier, _| {
            verifier
                .config()
                .key_set()
                .is_some_and(|keys| keys.names_kid(kid))
        })
        .unwrap_or(false)
    })
}

/// One verification; `answer` is taken only on success.
fn verify_once<R, F: FnOnce(&VerifiedToken, &Verifier) -> R>(
    token: &str,
    now: i64,
    answer: &mut Option<F>,
) -> Result<R, Error> {
    let (insecure, result) = cache::with_verifier(|verifier, tokens| {
        let result = tokens.verify(verifier, token, now).map(|verified| {
            let answer = answer.take().expect("taken once, on success");
            answer(verified, verifier)
        });
        (verifier.config().algorithm().is_none(), result)
    })
    .map_err(Error::Config)?;
    // The warning is raised outside the cache's borrow.
    if insecure {
        insecure_mode_warning();
    }
    result.map_err(Error::Token)
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
fn insecure_mode_warning() {
    warn_once(
        &INSECURE_MODE_WARNED,
        "electric_auth.mode is insecure: token signatures are not verified",
        "Insecure mode is for development only; set electric_auth.mode = secure in production.",
    );
}
