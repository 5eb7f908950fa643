//! Revoking a token (`electric_auth.revoke_token`, `logout(revoke => true)`): it must verify
//! under the settings in force — so nobody fills the list with junk — and is then revoked by its
//! `jti` with its `iss`, or by its signature, until its `exp` (see `revocation`).
#![allow(clippy::result_large_err)]

use crate::errors::error_report;
use crate::verify::{check_session, clock_now, statement_time, verify_checked_at, Revocation};
use electric_auth_core::revocation::{Record, TokenId};
use electric_auth_core::{Error, TokenError};
use pgrx::pg_sys::panic::ErrorReport;

/// Adds `token` to this transaction's revocations, after verifying it (a revoked token again:
/// a no-op). A role without `electric_auth_revoker` may revoke a token it holds (it just gave
/// it); such revocations fill at most half the list.
pub fn revoke_token(token: &str) -> Result<(), ErrorReport> {
    check_session()?;
    crate::revocation::may_write()?;
    let record = verify_checked_at(
        token,
        statement_time(),
        |verified, _| {
            let text = |claim: &str| verified.claims.get(claim).and_then(|v| v.as_str());
            let expires_at = verified
                .expires_at
                .map_or(i64::MAX / 2, |exp| exp.ceil() as i64);
            TokenId::of(token.as_bytes(), text("iss"), text("jti")).map(|token| {
                Record::RevokeToken {
                    token,
                    expires_at,
                    by: crate::revocation::current_role(),
                    at: clock_now(),
                    by_holder: !crate::revocation::is_revoker(),
                }
            })
        },
        Revocation::Ignored,
    )
    .map_err(error_report)?
    .ok_or_else(|| error_report(Error::Token(TokenError::InvalidToken)))?;
    crate::revocation::add(record)
}
