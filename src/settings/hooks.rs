//! Helpers for check hooks: reading the candidate value, refusing with our own SQLSTATE and
//! words (never Postgres's message quoting the value), refusing secrets where every role could
//! read them; and reading a text setting.

use pgrx::guc::GucSetting;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::ffi::{c_char, c_int, CStr, CString};

/// Whether a value from `source` was set with `ALTER DATABASE/ROLE ... SET`: Postgres keeps those
/// values in `pg_db_role_setting`, which every role can read.
pub fn is_role_or_database_setting(source: pg_sys::GucSource::Type) -> bool {
    use pg_sys::GucSource::*;
    matches!(
        source,
        PGC_S_GLOBAL | PGC_S_DATABASE | PGC_S_USER | PGC_S_DATABASE_USER
    )
}

/// A string check hook's candidate value; no value (NULL) reads as empty.
///
/// # Safety
/// `newval` must be the pointer Postgres passes to a string check hook, read during the hook.
pub unsafe fn check_hook_candidate<'a>(newval: *mut *mut c_char) -> &'a CStr {
    // SAFETY: Postgres passes a valid pointer to the candidate value, a C string or NULL.
    let candidate = unsafe { *newval };
    if candidate.is_null() {
        c""
    } else {
        // SAFETY: a non-NULL candidate is a NUL-terminated string owned by the GUC machinery.
        unsafe { CStr::from_ptr(candidate) }
    }
}

/// Makes a check hook's refusal say `message` (instead of Postgres's "invalid value for
/// parameter", which would quote the value), with SQLSTATE `code`, a detail and a hint.
///
/// # Safety
/// Only from a check hook about to return false; Postgres reads these right after it.
pub unsafe fn refuse_in_check_hook(code: PgSqlErrorCode, message: &str, detail: &str, hint: &str) {
    // SAFETY: the caller is a check hook; the strings are palloc'd copies in the current
    // memory context, as Postgres expects of GUC_check_err*_string.
    unsafe {
        pg_sys::GUC_check_errcode(code as c_int);
        for (text, slot) in [
            (message, &raw mut pg_sys::GUC_check_errmsg_string),
            (detail, &raw mut pg_sys::GUC_check_errdetail_string),
            (hint, &raw mut pg_sys::GUC_check_errhint_string),
        ] {
            if let Ok(text) = CString::new(text) {
                *slot = pg_sys::pstrdup(text.as_ptr());
            }
        }
    }
}

/// Refuses a secret setting's non-empty value on the routes that would store it where every
/// role can read it, saying where it belongs (`hint`); true when it refused. Postgres validates
/// `ALTER ROLE/DATABASE … SET` and a function's `SET` clause with source `PGC_S_TEST` (the value
/// is then stored in `pg_db_role_setting` / `pg_proc.proconfig`), and applies stored
/// role/database values at session start with their own sources; all are refused.
///
/// # Safety
/// Only from a string check hook, with its `newval` and `source`; on true it must return false.
pub unsafe fn refuse_secret_where_readable(
    name: &CStr,
    newval: *mut *mut c_char,
    source: pg_sys::GucSource::Type,
    hint: &str,
) -> bool {
    let readable_by_every_role =
        source == pg_sys::GucSource::PGC_S_TEST || is_role_or_database_setting(source);
    // SAFETY: the pointer Postgres passed to the calling string check hook.
    let value = unsafe { check_hook_candidate(newval) };
    if !readable_by_every_role || value.to_bytes().trim_ascii().is_empty() {
        return false;
    }
    // SAFETY: the caller is a check hook about to return false.
    unsafe {
        refuse_in_check_hook(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            &format!(
                "{} cannot be set with ALTER ROLE, ALTER DATABASE or a function's SET clause",
                name.to_string_lossy()
            ),
            "Such values are stored in pg_db_role_setting or pg_proc.proconfig, which every role can read.",
            hint,
        );
    }
    true
}

/// A text setting's current value (lossily decoded), `None` when unset.
pub fn text_setting(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|value| value.to_string_lossy().into_owned())
}
