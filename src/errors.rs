//! Core errors as Postgres errors, with the spec's SQLSTATEs (§1, §2); warnings given once per
//! session. Imports nothing of the glue.

use electric_auth_core::{Error, ErrorKind};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use std::cell::Cell;

/// 22023 for a configuration problem, 28000 for a rejected token; the spec's message and hint.
pub fn error_report(error: Error) -> ErrorReport {
    let code = match error.kind() {
        ErrorKind::Configuration => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::RejectedToken => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
    };
    let hint = error.hint();
    let report = ErrorReport::new(code, error.to_string(), "electric_auth");
    match hint {
        Some(hint) => report.set_hint(hint),
        None => report,
    }
}

/// Reports a WARNING the first time `flag` is raised in this session.
pub fn warn_once(
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

/// Writes `message` to the server log as one LOG line (no SQLSTATE of an error).
pub fn log(message: String) {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
        message,
        "electric_auth",
    )
    .report(PgLogLevel::LOG);
}
