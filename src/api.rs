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

#[pg_schema]
pub mod electric_auth {
    use crate::payload_jsonb::PayloadJsonb;
    use crate::{
        catalog_secret_warning, errors::error_report, gucs, insecure_mode_warning, verifier_cache,
    };
    use electric_auth_core::{AlgorithmFamily, Error, TokenError, VerifiedToken};
    use pgrx::pg_sys::panic::ErrorReport;
    use pgrx::prelude::*;

    /// Verifies `token` like Electric's sync service and returns its claims (the payload object).
    /// A rejected token raises SQLSTATE 28000; a bad configuration raises 22023.
    #[pg_extern(strict, stable, parallel_safe)]
    pub fn verify(token: &str) -> Result<PayloadJsonb, ErrorReport> {
        verify_now(token, |verified| PayloadJsonb::new(&verified.payload))?
            .ok_or_else(|| error_report(Error::Token(TokenError::InvalidToken)))
    }

    /// Verifies `token` like `electric_auth.verify` and returns the user id (`sub`, or the legacy
    /// `user_id`, inside `electric_auth.jwt_namespace` when set).
    #[pg_extern(strict, stable, parallel_safe)]
    pub fn user_id(token: &str) -> Result<String, ErrorReport> {
        verify_now(token, |verified| verified.user_id.clone())
    }

    /// Verifies `token` at statement time (through the per-backend cache of verified tokens) and
    /// maps the result with `answer`.
    fn verify_now<R>(
        token: &str,
        answer: impl FnOnce(&VerifiedToken) -> R,
    ) -> Result<R, ErrorReport> {
        if let Some(name) = gucs::refused_setting() {
            return Err(refused_setting_error(name));
        }
        let now = statement_time();
        let (algorithm, result) = verifier_cache::with_verifier(|verifier, tokens| {
            let result = tokens.verify(verifier, token, now).map(answer);
            (verifier.config().algorithm(), result)
        })
        .map_err(|e| error_report(Error::Config(e)))?;
        // Warnings are raised outside the cache's borrow.
        match algorithm {
            None => insecure_mode_warning(),
            Some(alg) => {
                if alg.family() == AlgorithmFamily::Hmac
                    && gucs::jwt_key_from_role_or_database_setting()
                {
                    catalog_secret_warning();
                }
            }
        }
        result.map_err(|e| error_report(Error::Token(e)))
    }

    /// See [`gucs::refused_setting`]: the session cannot verify as the superuser configured.
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

    /// The current statement's start, in Unix seconds: one clock for the whole statement.
    fn statement_time() -> i64 {
        const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
        // SAFETY: reads a backend-local timestamp; callable whenever a statement runs.
        let micros = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
        micros.div_euclid(1_000_000) + POSTGRES_EPOCH_IN_UNIX_SECONDS
    }
}
