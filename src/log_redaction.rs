//! Keeps `electric_auth.jwt_key` out of the server log.
//!
//! Postgres itself logs a reloaded setting's new value: the postmaster writes
//! `parameter "electric_auth.jwt_key" changed to "<key>"` at LOG level on every reload that
//! changes it. An `emit_log_hook` rewrites such lines before they are written, and also any
//! other log line that would contain the key in force. It is installed by `_PG_init`, so it
//! covers the postmaster only when the library is in `shared_preload_libraries` (the README
//! says so).

use crate::gucs;
use pgrx::{pg_guard, pg_sys};
use std::ffi::{c_char, CStr, CString};

/// The previous hook, called after ours.
static mut PREVIOUS_HOOK: pg_sys::emit_log_hook_type = None;

/// Templates (untranslated `message_id`s) whose second `%s` is a setting's value.
const VALUE_TEMPLATES: [(&CStr, &CStr); 2] = [
    (
        c"parameter \"%s\" changed to \"%s\"",
        c"parameter \"electric_auth.jwt_key\" changed (value hidden by electric_auth)",
    ),
    (
        c"invalid value for parameter \"%s\": \"%s\"",
        c"invalid value for parameter \"electric_auth.jwt_key\" (value hidden by electric_auth)",
    ),
];

const REDACTED: &str = "[electric_auth.jwt_key hidden]";

/// Installs the hook, keeping any hook installed before it. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded, before any log line we handle.
    unsafe {
        PREVIOUS_HOOK = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(redact_jwt_key);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn redact_jwt_key(edata: *mut pg_sys::ErrorData) {
    // SAFETY: Postgres passes the ErrorData being emitted, valid for the duration of the call;
    // its strings are palloc'd in ErrorContext, the current context, where ours go too.
    unsafe {
        if let Some(edata) = edata.as_mut() {
            redact(edata);
        }
        if let Some(previous) = PREVIOUS_HOOK {
            previous(edata);
        }
    }
}

/// # Safety
/// `edata` must be the ErrorData being emitted, in ErrorContext.
unsafe fn redact(edata: &mut pg_sys::ErrorData) {
    let message = unsafe { c_str(edata.message) };
    if message.is_some_and(|m| m.contains("\"electric_auth.jwt_key\"")) {
        let id = unsafe { c_str(edata.message_id) };
        if let Some((_, replacement)) = VALUE_TEMPLATES
            .iter()
            .find(|(template, _)| Some(template.to_str().unwrap_or_default()) == id)
        {
            edata.message = unsafe { pg_sys::pstrdup(replacement.as_ptr()) };
        }
    }
    // Any other line that would show the key in force: message, detail, hint, statement.
    let Some(key) = gucs::text_setting(&gucs::JWT_KEY) else {
        return;
    };
    if key.trim().len() < 8 {
        return; // too short to search for without redacting ordinary words
    }
    for field in [
        &mut edata.message,
        &mut edata.detail,
        &mut edata.detail_log,
        &mut edata.hint,
        &mut edata.context,
    ] {
        if let Some(text) = unsafe { c_str(*field) } {
            if text.contains(key.as_str()) {
                if let Ok(clean) = CString::new(text.replace(key.as_str(), REDACTED)) {
                    *field = unsafe { pg_sys::pstrdup(clean.as_ptr()) };
                }
            }
        }
    }
    let statement = unsafe { c_str(pg_sys::debug_query_string) };
    if statement.is_some_and(|s| s.contains(key.as_str())) {
        edata.hide_stmt = true;
    }
}

/// # Safety
/// `ptr` must be NULL or a NUL-terminated string that outlives the returned borrow.
unsafe fn c_str<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}
