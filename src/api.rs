//! The SQL functions (spec §2). Thin: read "now", fetch the cached verifier, call the core.
//!
//! They return `Result<_, ErrorReport>` unboxed on purpose: pgrx recognises an `ErrorReport`
//! error by downcasting and raises it with its SQLSTATE; a boxed one would become SQLSTATE 22000.
#![allow(clippy::result_large_err)]

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
    use crate::payload_jsonb::PayloadJsonb;
    use crate::token_text::TokenText;
    use crate::{errors::error_report, insecure_mode_warning, tamper, verifier_cache};
    use electric_auth_core::{Error, TokenError, VerifiedToken};
    use pgrx::pg_sys::panic::ErrorReport;
    use pgrx::prelude::*;

    /// Verifies `token` like Electric's sync service and returns its claims (the payload object).
    /// A rejected token raises SQLSTATE 28000; a bad configuration raises 22023.
    #[pg_extern(strict, stable, parallel_safe)]
    pub fn verify(token: TokenText) -> Result<PayloadJsonb, ErrorReport> {
        verify_now(token, |verified| PayloadJsonb::new(&verified.payload))?
            .ok_or_else(|| error_report(Error::Token(TokenError::InvalidToken)))
    }

    /// Verifies `token` like `electric_auth.verify` and returns the user id (`sub`, or the legacy
    /// `user_id`, inside `electric_auth.jwt_namespace` when set).
    #[pg_extern(strict, stable, parallel_safe)]
    pub fn user_id(token: TokenText) -> Result<String, ErrorReport> {
        verify_now(token, |verified| verified.user_id.clone())
    }

    /// Verifies `token` at statement time (through the per-backend cache of verified tokens) and
    /// maps the result with `answer`.
    fn verify_now<R>(
        token: TokenText,
        answer: impl FnOnce(&VerifiedToken) -> R,
    ) -> Result<R, ErrorReport> {
        if let Some(name) = tamper::refused_setting() {
            return Err(refused_setting_error(&name));
        }
        // SAFETY: reads the backend's database encoding, fixed for its lifetime.
        if unsafe { pg_sys::GetDatabaseEncoding() } != pg_sys::pg_enc::PG_UTF8 as i32 {
            return Err(not_utf8_error());
        }
        // In a UTF8 database Postgres has already validated the text; this cannot fail there.
        let Ok(token) = std::str::from_utf8(token.0) else {
            return Err(error_report(Error::Token(TokenError::InvalidToken)));
        };
        let now = statement_time();
        let (insecure, result) = verifier_cache::with_verifier(|verifier, tokens| {
            let result = tokens.verify(verifier, token, now).map(answer);
            (verifier.config().algorithm().is_none(), result)
        })
        .map_err(|e| error_report(Error::Config(e)))?;
        // The warning is raised outside the cache's borrow.
        if insecure {
            insecure_mode_warning();
        }
        result.map_err(|e| error_report(Error::Token(e)))
    }

    /// See [`tamper::refused_setting`]: the session cannot verify as the superuser configured.
    fn refused_setting_error(name: &str) -> ErrorReport {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "electric_auth will not verify tokens in this session: the value of {name} from \
                 the connection options or a role/database setting was refused when the library loaded"
            ),
            "electric_auth",
        )
        .set_hint(
            "Postgres refuses such values from roles without permission to set them (see the \
             WARNING when electric_auth loaded), and the configured value is then lost for the \
             session. Reconnect without setting electric_auth.* that way (for example in \
             PGOPTIONS), or add electric_auth to shared_preload_libraries so such connections are \
             refused outright.",
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
    fn statement_time() -> i64 {
        const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
        // SAFETY: reads a backend-local timestamp; callable whenever a statement runs.
        let micros = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
        micros.div_euclid(1_000_000) + POSTGRES_EPOCH_IN_UNIX_SECONDS
    }
}
