//! Verifying a token in this backend: the session checks, "now", the cached verifier (`cache`)
//! built from Electric's settings (`settings`). Shared by the SQL functions (`sql/`) and the
//! session identity (`identity/`).
#![allow(clippy::result_large_err)]

pub mod cache;
mod checks;
mod fast;
pub mod settings;

pub use checks::{check_session, clock_now, statement_time, unix_seconds};
pub use fast::answer_now;

use checks::{
    insecure_mode_warning, is_revoked_verified, keys_generation, new_keys_arrived,
    worth_waiting_for_keys,
};

use crate::errors::error_report;
use crate::stats;
use electric_auth_core::outcome::{EntryPoint, Reason};
use electric_auth_core::{Error, TokenError, VerifiedToken, Verifier};
use pgrx::pg_sys::panic::ErrorReport;

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
    verify_counted(entry, token, statement_time(), answer).map_err(error_report)
}

/// [`verify_at`], counted at `entry` under the issuer the token was checked under (see
/// `stats`: the listed issuer's lane, or the default issuer's).
pub fn verify_counted<R>(
    entry: EntryPoint,
    token: &str,
    now: i64,
    answer: impl FnOnce(&VerifiedToken, &Verifier) -> R,
) -> Result<R, Error> {
    let mut under = None;
    let result = verify_at(token, now, |verified, verifier| {
        under = verified.issuer;
        answer(verified, verifier)
    });
    if result.is_err() {
        under = cache::issuer_of(token.as_bytes());
    }
    stats::counted_in(entry, cache::issuer_lane(under), result)
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
    verify_checked_at(token, now, answer, Revocation::Checked)
}

/// Whether a verification refuses a revoked token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Checked,
    /// For `revoke_token` only: revoking a revoked token again is a no-op, not an error.
    Ignored,
}

/// [`verify_at`], with revocation checked or not.
pub fn verify_checked_at<R>(
    token: &str,
    now: i64,
    answer: impl FnOnce(&VerifiedToken, &Verifier) -> R,
    revocation: Revocation,
) -> Result<R, Error> {
    let mut answer = Some(answer);
    let seen = keys_generation();
    let mut result = verify_once(token, now, &mut answer, revocation);
    if let Some(why) = worth_waiting_for_keys(&result) {
        if new_keys_arrived(token, seen, why) {
            result = verify_once(token, now, &mut answer, revocation);
        }
    }
    result
}

/// One verification; `answer` is taken only on success.
fn verify_once<R, F: FnOnce(&VerifiedToken, &Verifier) -> R>(
    token: &str,
    now: i64,
    answer: &mut Option<F>,
    revocation: Revocation,
) -> Result<R, Error> {
    let (insecure, result) = cache::with_verifier(|verifier, tokens| {
        let result = tokens.verify(verifier, token, now).and_then(|verified| {
            if revocation == Revocation::Checked && is_revoked_verified(token.as_bytes(), verified)
            {
                return Err(TokenError::Revoked);
            }
            let answer = answer.take().expect("taken once, on success");
            Ok(answer(verified, verifier))
        });
        (!verifier.config().is_secure(), result)
    })
    .map_err(Error::Config)?;
    // The warning is raised outside the cache's borrow.
    if insecure {
        insecure_mode_warning();
    }
    result.map_err(Error::from)
}
