//! `electric_auth.user_id` and `electric_auth.verify`: the user id or the payload of a token
//! verified at statement time, by the core's fast path (issue 24).
//!
//! Everything `verify_now` (`mod.rs`) does (the session checks, "now", the cached verifier,
//! every refusal as the Postgres error the spec gives it), but the answer sees only what these
//! two functions return, so the core need not build the claims map; and for the HMAC
//! algorithms the per-backend cache of verified tokens is skipped, since the fast path verifies
//! an HS token in less than a lookup, and insert, cost on distinct tokens
//! (`Verifier::worth_caching`).
#![allow(clippy::result_large_err)]

use super::cache;
use super::checks::{check_session, insecure_mode_warning, statement_time};
use super::checks::{
    is_revoked, is_revoked_verified, keys_generation, new_keys_arrived, worth_waiting_for_keys,
};
use crate::errors::error_report;
use crate::stats;
use electric_auth_core::outcome::{EntryPoint, Reason};
use electric_auth_core::{Error, Passed, TokenError, Want};
use pgrx::pg_sys::panic::ErrorReport;

/// Verifies `token` (a text argument's bytes, not yet checked as UTF-8: the fast path reads
/// bytes, the full path refuses what is not UTF-8) at statement time and maps what passed with
/// `answer`; counts the outcome at `entry`. A `kid` in no key waits for the key worker once,
/// as `verify_at` does.
pub fn answer_now<R>(
    entry: EntryPoint,
    token: &[u8],
    want: Want,
    answer: impl Fn(Passed<'_>) -> R + Copy,
) -> Result<R, ErrorReport> {
    check_session().inspect_err(|_| stats::refused(entry, Reason::RefusedSession))?;
    let now = statement_time();
    let seen = keys_generation();
    let mut result = answer_once(token, now, want, answer);
    if let Some(why) = worth_waiting_for_keys(&result.0) {
        // Refused for its signature or key: the token was UTF-8 (else it is an invalid token).
        if let Ok(token) = std::str::from_utf8(token) {
            if new_keys_arrived(token, seen, why) {
                result = answer_once(token.as_bytes(), now, want, answer);
            }
        }
    }
    let (result, issuer) = result;
    stats::counted_in(entry, cache::issuer_lane(issuer), result).map_err(error_report)
}

/// One verification through the fast path (or the token cache, where it pays), and the listed
/// issuer it was verified (or refused) under.
fn answer_once<R>(
    token: &[u8],
    now: i64,
    want: Want,
    answer: impl Fn(Passed<'_>) -> R + Copy,
) -> (Result<R, Error>, Option<usize>) {
    let built = cache::with_verifier(|verifier, tokens| {
        let result = if verifier.worth_caching(token) {
            // In a UTF8 database Postgres has validated the text; this cannot fail there.
            std::str::from_utf8(token)
                .map_err(|_| TokenError::InvalidToken)
                .and_then(|token| tokens.verify(verifier, token, now))
                .map(|verified| {
                    let issuer = verified.issuer;
                    let answered = (!is_revoked_verified(token, verified)).then(|| {
                        answer(Passed {
                            user_id: &verified.user_id,
                            payload: verified.payload.as_bytes(),
                            jsonb: None,
                            issuer,
                            iat: None,
                            iss: None,
                            jti: None,
                        })
                    });
                    (answered, issuer)
                })
        } else {
            verifier.verify_with(token, now, want, |passed| {
                let issuer = passed.issuer;
                let answered = (!is_revoked(token, &passed)).then(|| answer(passed));
                (answered, issuer)
            })
        };
        let result = match result {
            Ok((Some(answered), issuer)) => (Ok(answered), issuer),
            Ok((None, issuer)) => (Err(TokenError::Revoked), issuer),
            Err(error) => (Err(error), verifier.issuer_of(token)),
        };
        (!verifier.config().is_secure(), result)
    });
    let (insecure, (result, issuer)) = match built {
        Ok(built) => built,
        Err(error) => return (Err(Error::Config(error)), None),
    };
    // The warning is raised outside the cache's borrow.
    if insecure {
        insecure_mode_warning();
    }
    (result.map_err(Error::from), issuer)
}
