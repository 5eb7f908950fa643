//! Keeps `electric_auth.jwt_key` out of the server log — the key in force, and a new key in a
//! statement that sets one, however its name is written — and tokens too, with an
//! `emit_log_hook` (the rules, on bytes, are in `electric_auth_core::redaction`).
//!
//! Postgres itself logs a reloaded setting's new value: the postmaster writes
//! `parameter "electric_auth.jwt_key" changed to "<key>"` at LOG level on every reload that
//! changes it. A statement that sets a key reaches the log as `STATEMENT:` after an error
//! (`log_min_error_statement`), as the message of `log_statement` / `log_min_duration_statement`,
//! and with its bind parameters (`parameters: $1 = '…'`). The hook rewrites each of those before
//! the line is written or sent. It is installed by `_PG_init`, so it covers the postmaster only
//! when the library is in `shared_preload_libraries`, and lines another hook emits before ours
//! (list electric_auth last there); the README says so.

use super::activity;
use super::tls::with_slot;
use crate::settings::names;
use electric_auth_core::redaction::{self, Statement};
use pgrx::{pg_guard, pg_sys};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

/// The previous hook, called after ours.
static mut PREVIOUS_HOOK: pg_sys::emit_log_hook_type = None;

thread_local! {
    /// The masked copy of the current statement `debug_query_string` points at, if any, and
    /// the original it replaced there (log lines go on quoting the original: `statement: …`).
    static MASKED_STATEMENT: RefCell<Option<(CString, usize)>> = const { RefCell::new(None) };
    /// What the rules found in the current statement, computed at its first log line: a
    /// statement of MBs logged at debug5 passes through this hook dozens of times, and each
    /// line must cost the line's size, not the statement's.
    static ANALYZED: RefCell<Option<Analyzed>> = const { RefCell::new(None) };
}

/// One statement's analysis (see `ANALYZED`).
struct Analyzed {
    /// The statement's start time, the address and the length of its text.
    key: (pg_sys::TimestampTz, usize, usize),
    names_key: bool,
    calls_set_config: bool,
    /// The key in force the text was searched for, and whether the text holds it.
    searched_for: Option<Vec<u8>>,
    holds_key: bool,
    /// Whether the text holds a token (`None`: not searched yet).
    holds_token: Option<bool>,
}

unsafe extern "C" {
    /// xact.c's getter: only reads a static and cannot raise an error.
    #[link_name = "GetCurrentStatementStartTimestamp"]
    fn statement_start_timestamp() -> pg_sys::TimestampTz;
}

/// The current statement with what the rules know of it, analysed once per statement.
fn analyzed(text: &[u8]) -> Statement<'_> {
    // SAFETY: see the declaration.
    let key = (
        unsafe { statement_start_timestamp() },
        text.as_ptr() as usize,
        text.len(),
    );
    let cached = with_slot(&ANALYZED, |slot| {
        if let Some(known) = slot.as_ref().filter(|known| known.key == key) {
            return Statement {
                text,
                names_key: known.names_key,
                calls_set_config: known.calls_set_config,
            };
        }
        let statement = Statement::new(text);
        *slot = Some(Analyzed {
            key,
            names_key: statement.names_key,
            calls_set_config: statement.calls_set_config,
            searched_for: None,
            holds_key: false,
            holds_token: None,
        });
        statement
    });
    cached.unwrap_or_else(|| Statement::new(text))
}

/// `redaction::hide_statement`, with the search for the key in force done once per statement
/// and key.
fn hide_statement(statement: &Statement, key: Option<&[u8]>) -> bool {
    if statement.names_key {
        return true;
    }
    with_slot(&ANALYZED, |slot| match slot.as_mut() {
        Some(known) if known.searched_for.as_deref() == key && known.searched_for.is_some() => {
            known.holds_key
        }
        Some(known) => {
            known.holds_key = redaction::hide_statement(statement, key);
            known.searched_for = key.map(<[u8]>::to_vec);
            known.holds_key
        }
        None => redaction::hide_statement(statement, key),
    })
    .unwrap_or_else(|| redaction::hide_statement(statement, key))
}

/// Templates (untranslated `message_id`s) whose second `%s` is a setting's value, and what a
/// secret setting's line says instead (`{}`: the setting's name).
const VALUE_TEMPLATES: [(&CStr, &str); 2] = [
    (
        c"parameter \"%s\" changed to \"%s\"",
        "parameter \"{}\" changed (value hidden by electric_auth)",
    ),
    (
        c"invalid value for parameter \"%s\": \"%s\"",
        "invalid value for parameter \"{}\" (value hidden by electric_auth)",
    ),
];

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
    let message = unsafe { bytes(edata.message) };
    if message.is_some_and(redaction::names_jwt_key) {
        let id = unsafe { bytes(edata.message_id) };
        if let Some((_, replacement)) = VALUE_TEMPLATES
            .iter()
            .find(|(template, _)| Some(template.to_bytes()) == id)
        {
            // The secret setting the line is about (a name Postgres printed in full).
            let name = message
                .and_then(|m| {
                    redaction::SECRET_SETTINGS
                        .into_iter()
                        .find(|name| redaction::contains_ignore_case(m, name.as_bytes()))
                })
                .unwrap_or("electric_auth.jwt_key");
            if let Ok(line) = CString::new(replacement.replace("{}", name)) {
                edata.message = unsafe { pg_sys::pstrdup(line.as_ptr()) };
            }
        }
    }
    // The key as the server holds it now, read by name (the verifier owns the setting): a plain
    // lookup that neither allocates nor raises (missing_ok; no placeholder is created).
    let key = unsafe {
        bytes(pg_sys::GetConfigOption(
            names::JWT_KEY.as_ptr(),
            true,
            false,
        ))
    };
    let statement = statement_text(current_statement()).map(analyzed);
    for (field, is_context) in [
        (&mut edata.message, false),
        (&mut edata.detail, false),
        (&mut edata.detail_log, false),
        (&mut edata.hint, false),
        (&mut edata.context, true),
    ] {
        let Some(text) = (unsafe { bytes(*field) }) else {
            continue;
        };
        if let Some(clean) = redaction::redact_field(text, is_context, statement.as_ref(), key) {
            *field = error_context_copy(&clean);
        }
    }
    // `QUERY:` — the inner statement the error came from (PL/pgSQL, EXECUTE).
    if let Some(query) = unsafe { bytes(edata.internalquery) } {
        if let Some(clean) = redaction::redact_inner_statement(query, statement.as_ref(), key) {
            edata.internalquery = error_context_copy(&clean);
            // The cursor position pointed into the text just replaced.
            edata.internalpos = 0;
        }
    }
    let Some(statement) = statement else {
        return;
    };
    if hide_statement(&statement, key) {
        edata.hide_stmt = true;
        // An error before the utility hook overwrote the value (a syntax error, an aborted
        // transaction) leaves the text as reported: hide it there too.
        if edata.elevel >= pg_sys::PGERROR as i32 {
            activity::hide_statement();
        }
    } else if !edata.hide_stmt {
        mask_tokens_in_statement(&statement);
    }
}

/// Where the statement that the `STATEMENT:` line (and csvlog/jsonlog) quotes holds a token,
/// points `debug_query_string` at a copy with the tokens masked: Postgres writes that line from
/// `debug_query_string` after this hook returns. The copy means the same statement and lives
/// until the next one replaces it; Postgres sets `debug_query_string` afresh for every
/// statement.
///
/// `pg_stat_activity` is masked first, from the original text: once `debug_query_string` points
/// at the copy, `activity::hide_tokens` finds no token there, and an error before any of our
/// functions ran (a statement that fails to parse) would otherwise leave the original text in
/// `pg_stat_activity` while the transaction sits aborted.
fn mask_tokens_in_statement(statement: &Statement) {
    // SAFETY: a backend global, read in the backend's only thread.
    let current = unsafe { pg_sys::debug_query_string };
    let masked_already = with_slot(&MASKED_STATEMENT, |slot| {
        slot.as_ref().is_some_and(|(m, _)| m.as_ptr() == current)
    });
    let searched = with_slot(&ANALYZED, |slot| {
        slot.as_ref().and_then(|known| known.holds_token)
    });
    // (None: the process is exiting; nothing is masked there any more.)
    if masked_already != Some(false) || searched.flatten() == Some(false) {
        return;
    }
    let masked = redaction::mask_statement_jwts(statement.text);
    with_slot(&ANALYZED, |slot| {
        if let Some(known) = slot.as_mut() {
            known.holds_token = Some(masked.is_some());
        }
    });
    let Some(mut masked) = masked else {
        return;
    };
    // The copy was allocated with room for the NUL (the rules only splice in ASCII: none inside).
    masked.push(0);
    let Ok(masked) = CString::from_vec_with_nul(masked) else {
        return;
    };
    activity::hide_tokens();
    with_slot(&MASKED_STATEMENT, |slot| {
        // SAFETY: backend-local; the copy stays alive in `slot` while it is pointed at (a later
        // copy replaces it only after debug_query_string points at the later one).
        let original = unsafe { pg_sys::debug_query_string } as usize;
        unsafe { pg_sys::debug_query_string = masked.as_ptr() };
        *slot = Some((masked, original));
    });
}

/// The statement's text at `ptr` (NULL: none): measured once per statement — a log line at
/// debug5 for each of many statements in one string must not read the whole string again.
fn statement_text<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: see the declaration.
    let start = unsafe { statement_start_timestamp() };
    let known = with_slot(&ANALYZED, |slot| {
        slot.as_ref()
            .filter(|known| known.key.0 == start && known.key.1 == ptr as usize)
            .map(|known| known.key.2)
    })
    .flatten();
    match known {
        // SAFETY: the statement's text, measured at its first log line; it does not change
        // while the statement runs.
        Some(length) => Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), length) }),
        // SAFETY: the statement's NUL-terminated text, alive while it runs.
        None => unsafe { bytes(ptr) },
    }
}

/// The statement being run as its client sent it: `debug_query_string`, or the original our
/// masked copy replaced there (the original lives as long as the statement, and the copy is
/// pointed at only while that statement runs).
fn current_statement() -> *const c_char {
    // SAFETY: a backend global, read in the backend's only thread.
    let current = unsafe { pg_sys::debug_query_string };
    with_slot(&MASKED_STATEMENT, |slot| match slot {
        Some((masked, original)) if masked.as_ptr() == current => *original as *const c_char,
        _ => current,
    })
    .unwrap_or(current)
}

/// `text` (no NUL inside: the rules only splice in ASCII) copied into the current memory
/// context — `ErrorContext` in the hook — as a C string. Allocated without raising an error (a
/// masked copy of a statement of hundreds of MB may not fit; an error in this hook would run it
/// again): when it does not fit, a short notice instead.
fn error_context_copy(text: &[u8]) -> *mut c_char {
    // SAFETY: palloc_extended with MCXT_ALLOC_NO_OOM returns NULL rather than raising; the copy
    // writes `text.len()` bytes and a NUL into the `text.len() + 1` allocated.
    unsafe {
        let copy = pg_sys::palloc_extended(
            text.len() + 1,
            (pg_sys::MCXT_ALLOC_NO_OOM | pg_sys::MCXT_ALLOC_HUGE) as i32,
        )
        .cast::<u8>();
        if copy.is_null() {
            let notice = CString::new(redaction::TOO_LARGE_HIDDEN).expect("no NUL in the notice");
            return pg_sys::pstrdup(notice.as_ptr());
        }
        std::ptr::copy_nonoverlapping(text.as_ptr(), copy, text.len());
        *copy.add(text.len()) = 0;
        copy.cast()
    }
}

/// # Safety
/// `ptr` must be NULL or a NUL-terminated string that outlives the returned borrow.
unsafe fn bytes<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    Some(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}
