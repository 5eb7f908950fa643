//! Keeps tokens and keys out of `pg_stat_activity.query`, which every session of the same role
//! (and `pg_read_all_stats`) reads: a token typed into the statement that verifies it could be
//! replayed from there, for as long as the statement runs or its transaction sits idle.
//!
//! Postgres reports a statement's text when it starts. A `post_parse_analyze_hook` (installed
//! by [`init`]) and `verify`, `user_id` and `authenticate` call [`hide_tokens`], which reports
//! the statement again with its JWT-shaped runs masked — so the text is masked as soon as the
//! statement is parsed, before it plans or runs (even where a function is never reached: `WHERE
//! false`), leaving only the parse itself; and by the functions where no hook ran (the library
//! loaded by that very statement, without `shared_preload_libraries`)
//! (`electric_auth_core::redaction`); the utility hook (`utility.rs`) calls
//! [`hide_ranges`] for a statement that sets a key. The text is searched at most once per
//! statement, keyed by the statement's start time and the address of its text: every further
//! call in the same statement costs one comparison, and a statement without a token is never
//! reported again.

use electric_auth_core::redaction;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::ops::Range;

/// Identifies one statement: its start time and the address of its text.
type StatementKey = (pg_sys::TimestampTz, usize);

/// What this backend last reported for the statement `key`.
struct Reported {
    key: StatementKey,
    /// Byte ranges of the text overwritten in place (see [`hide_ranges`]).
    filled: Vec<Range<usize>>,
    /// Whether the text was searched for tokens, and whether it holds any.
    tokens_checked: bool,
    tokens_found: bool,
}

impl Reported {
    const fn new(key: StatementKey) -> Reported {
        Reported {
            key,
            filled: Vec::new(),
            tokens_checked: false,
            tokens_found: false,
        }
    }

    /// The text to report: `text` with the filled ranges overwritten, then tokens masked.
    fn render(&self, text: &[u8]) -> Option<CString> {
        let mut copy = text.to_vec();
        redaction::fill(&mut copy, &self.filled);
        if self.tokens_found {
            if let Some(masked) = redaction::mask_jwts(&copy) {
                copy = masked;
            }
        }
        // The text came from a C string and the masks are ASCII: no NUL can appear.
        CString::new(copy).ok()
    }
}

thread_local! {
    static REPORTED: RefCell<Reported> = const { RefCell::new(Reported::new((0, 0))) };
}

unsafe extern "C" {
    /// xact.c's getter, declared here to be called without pgrx's error guard (a `sigsetjmp`
    /// per call, which would cost more than the rest of the hot path): it only reads a static
    /// and cannot raise an error.
    #[link_name = "GetCurrentStatementStartTimestamp"]
    fn statement_start_timestamp() -> pg_sys::TimestampTz;
}

/// The statement being run (its text is `debug_query_string`), if any.
fn current() -> Option<(StatementKey, *const c_char)> {
    // SAFETY: backend-local globals, read in the backend's only thread.
    let query = unsafe { pg_sys::debug_query_string };
    if query.is_null() {
        return None;
    }
    // SAFETY: see the declaration.
    let start = unsafe { statement_start_timestamp() };
    Some(((start, query as usize), query))
}

/// The previous `post_parse_analyze_hook`, called after ours.
static mut PREVIOUS_POST_PARSE_ANALYZE: pg_sys::post_parse_analyze_hook_type = None;

/// Installs the hook, keeping any installed before it. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded, before any statement.
    unsafe {
        PREVIOUS_POST_PARSE_ANALYZE = pg_sys::post_parse_analyze_hook;
        pg_sys::post_parse_analyze_hook = Some(statement_analyzed);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn statement_analyzed(
    pstate: *mut pg_sys::ParseState,
    query: *mut pg_sys::Query,
    jstate: *mut pg_sys::JumbleState,
) {
    hide_tokens();
    // SAFETY: the previous hook, called with the arguments Postgres gave us.
    unsafe {
        if let Some(previous) = PREVIOUS_POST_PARSE_ANALYZE {
            previous(pstate, query, jstate);
        }
    }
}

/// Masks the tokens of the current statement's text in `pg_stat_activity`, once per statement.
pub fn hide_tokens() {
    let Some((key, query)) = current() else {
        return;
    };
    let report = REPORTED.with_borrow_mut(|reported| {
        if reported.key == key && reported.tokens_checked {
            return None;
        }
        if reported.key != key {
            *reported = Reported::new(key);
        }
        reported.tokens_checked = true;
        // SAFETY: debug_query_string is a NUL-terminated string for the whole statement.
        let text = unsafe { CStr::from_ptr(query) }.to_bytes();
        reported.tokens_found = !redaction::jwt_ranges(text).is_empty();
        if reported.tokens_found {
            reported.render(text)
        } else {
            None
        }
    });
    if let Some(text) = report {
        report_activity(&text);
    }
}

/// Overwrites `ranges` of the query text `query` (a statement setting a key) in
/// `pg_stat_activity`, when `query` is the text the backend reports (a top-level statement).
pub fn hide_ranges(query: *const c_char, ranges: &[Range<usize>]) {
    let Some((key, current)) = current() else {
        return;
    };
    if current != query {
        return;
    }
    let report = REPORTED.with_borrow_mut(|reported| {
        if reported.key != key {
            *reported = Reported::new(key);
        }
        reported.filled.extend_from_slice(ranges);
        // SAFETY: as in hide_tokens.
        reported.render(unsafe { CStr::from_ptr(query) }.to_bytes())
    });
    if let Some(text) = report {
        report_activity(&text);
    }
}

/// Reports `text` as the running statement, keeping the query id Postgres computed for it.
fn report_activity(text: &CStr) {
    // SAFETY: pgstat_report_activity copies the text into the backend's status entry (clipped
    // to track_activity_query_size) and returns; a process without one is a no-op.
    unsafe {
        let query_id = pg_sys::pgstat_get_my_query_id();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, text.as_ptr());
        pg_sys::pgstat_report_query_id(query_id, true);
    }
}
