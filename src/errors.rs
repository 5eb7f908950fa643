//! Core errors as Postgres errors, with the spec's SQLSTATEs (§1, §2).

use electric_auth_core::{Error, ErrorKind};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

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
