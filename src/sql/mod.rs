//! The SQL functions (spec §2). Thin: read "now", fetch the cached verifier, call the core.
//!
//! They return `Result<_, ErrorReport>` unboxed on purpose: pgrx recognises an `ErrorReport`
//! error by downcasting and raises it with its SQLSTATE; a boxed one would become SQLSTATE 22000.
#![allow(clippy::result_large_err)]

mod key_source;
pub(crate) mod payload_jsonb;
pub(crate) mod revocation;

/// Unix seconds as a `timestamptz`; `None` past what one holds. (The other way round is
/// `verify::unix_seconds`.)
pub(crate) fn timestamp(unix: i64) -> Option<TimestampWithTimeZone> {
    const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
    let micros = unix
        .checked_sub(POSTGRES_EPOCH_IN_UNIX_SECONDS)?
        .checked_mul(1_000_000)?;
    TimestampWithTimeZone::try_from(micros).ok()
}
mod token_text;
mod user_id_text;

use pgrx::prelude::*;

// The schema pgrx creates is usable by its owner only; the functions are meant for every role
// holding EXECUTE on them (PUBLIC by default): triggers, RLS policies and views run as the caller.
pgrx::extension_sql!(
    "GRANT USAGE ON SCHEMA electric_auth TO PUBLIC;",
    name = "grant_schema_usage",
    finalize
);

// Refuses `CREATE EXTENSION` in a database whose encoding is not UTF8: tokens, claims and user
// ids are UTF-8, and Postgres would otherwise convert or reject them byte by byte.
pgrx::extension_sql!(
    r#"
DO $require_utf8$
BEGIN
  IF pg_catalog.getdatabaseencoding() <> 'UTF8' THEN
    RAISE EXCEPTION 'electric_auth requires a database with encoding UTF8, not %',
      pg_catalog.getdatabaseencoding()
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Create the database with ENCODING ''UTF8'' (for example TEMPLATE template0 ENCODING ''UTF8'').';
  END IF;
END
$require_utf8$;
"#,
    name = "require_utf8_database",
    bootstrap
);

#[pg_schema]
pub mod electric_auth {
    // A token typed into the statement must not stay readable in pg_stat_activity.
    use super::payload_jsonb::PayloadJsonb;
    use super::token_text::TokenText;
    use super::user_id_text::UserIdText;
    use crate::errors::error_report;
    use crate::guard::hide_tokens;
    use crate::identity::{self, CurrentClaims};
    use crate::verify::answer_now;
    use electric_auth_core::outcome::EntryPoint;
    use electric_auth_core::{Error, TokenError, Want};
    use pgrx::pg_sys::panic::ErrorReport;
    use pgrx::prelude::*;

    /// Verifies `token` like Electric's sync service and returns its claims (the payload object).
    /// A rejected token raises SQLSTATE 28000; a bad configuration raises 22023.
    #[pg_extern(strict, stable, parallel_safe)]
    pub fn verify(token: TokenText) -> Result<PayloadJsonb, ErrorReport> {
        hide_tokens();
        answer_now(EntryPoint::Verify, token.0, Want::Jsonb, PayloadJsonb::new)?
            .ok_or_else(|| error_report(Error::Token(TokenError::InvalidToken)))
    }

    /// Verifies `token` like `electric_auth.verify` and returns the user id (`sub`, or the legacy
    /// `user_id`, inside `electric_auth.jwt_namespace` when set).
    #[pg_extern(strict, stable, parallel_safe)]
    pub fn user_id(token: TokenText) -> Result<UserIdText, ErrorReport> {
        hide_tokens();
        answer_now(EntryPoint::UserId, token.0, Want::UserId, |passed| {
            UserIdText::new(passed.user_id)
        })
    }

    /// Verifies `token` like `user_id(token)` and makes it the identity in force for the
    /// transaction (scope `transaction`, like `SET LOCAL`) or the session (`session`, like
    /// `SET`); returns the user id. A NULL token is refused like a bad one (28000), so a missing
    /// token can never leave an earlier identity in force unnoticed.
    #[pg_extern(volatile, parallel_unsafe)]
    pub fn authenticate(
        token: Option<TokenText>,
        scope: default!(Option<&str>, "'transaction'"),
    ) -> Result<String, ErrorReport> {
        hide_tokens();
        identity::authenticate(token.map(|t| t.0), scope)
    }

    /// The user id of the identity in force (see `authenticate`), NULL when there is none.
    /// Raises 28000 `Expired token` once the token's `exp` (+ drift) is past.
    #[pg_extern(stable, parallel_safe)]
    pub fn current_user_id() -> Result<Option<String>, ErrorReport> {
        identity::current_user_id()
    }

    /// The claims (payload object) of the identity in force, NULL when there is none.
    #[pg_extern(stable, parallel_safe)]
    pub fn current_claims() -> Result<Option<CurrentClaims>, ErrorReport> {
        identity::current_claims()
    }

    /// Drops the identity in force, of either scope (like `SET` to nothing: a rolled-back
    /// transaction restores it).
    #[pg_extern(volatile, parallel_unsafe)]
    pub fn logout(revoke: default!(bool, false)) -> Result<(), ErrorReport> {
        identity::logout(revoke)
    }
}
