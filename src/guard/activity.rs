//! Keeps tokens and keys out of `pg_stat_activity.query`, which every session of the same role
//! (and `pg_read_all_stats`) reads: a token typed into the statement that verifies it could be
//! replayed from there, for as long as the statement runs or its transaction sits idle.
//!
//! Postgres reports a statement's text when it starts — and again, from its own copy, at each
//! Bind and Execute message of the extended protocol (after the parse), and in each parallel
//! worker. So [`hide_tokens`], which reports the statement again with its tokens masked (JWT
//! runs inside its literals and comments: `redaction::statement_jwt_ranges`), is called by a
//! `post_parse_analyze_hook` (before the statement plans or runs, even where a function is never
//! reached: `WHERE false`), by `ExecutorStart` and `ExecutorRun` hooks (after Bind's and
//! Execute's reports, and in a parallel worker after its own), and by `verify`, `user_id` and
//! `authenticate` (where no hook ran: the library loaded by that very statement, without
//! `shared_preload_libraries`); the utility hook (`utility.rs`) calls [`hide_ranges`] for a
//! statement that sets a key, and the log hook [`hide_statement`] for a statement naming the
//! key that fails before any of these ran. The text is searched at most once per report,
//! keyed by the statement's start time and the address of its text: every further call for the
//! same text costs one comparison, and a statement without a token is never reported again.
//!
//! `pg_stat_statements` stores what the hooks further down this chain are given (the
//! post-parse text when the statement has constants, else the executor's text at its end, or
//! the planner's with `track_planning`): those three hooks pass it a copy with the tokens'
//! bytes overwritten (the same length, so its offsets hold), only when there is a token.

use super::tls::with_slot;
use electric_auth_core::redaction;
use pgrx::{pg_guard, pg_sys};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::ops::Range;

/// The part of a statement's text `pg_stat_activity` keeps (`track_activity_query_size`, at
/// most 1 MB): all any reader sees, so all that is searched and copied here, whatever the
/// statement's size (a statement of hundreds of MB must cost no more than that).
fn shown(text: &[u8]) -> &[u8] {
    // SAFETY: a setting's storage, read in the backend's only thread.
    let kept = usize::try_from(unsafe { pg_sys::pgstat_track_activity_query_size }).unwrap_or(0);
    &text[..text.len().min(kept)]
}

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
    /// The whole statement is hidden (see [`hide_statement`]).
    hidden: bool,
}

impl Reported {
    const fn new(key: StatementKey) -> Reported {
        Reported {
            key,
            filled: Vec::new(),
            tokens_checked: false,
            tokens_found: false,
            hidden: false,
        }
    }

    /// The text to report: `text` (as much as `pg_stat_activity` keeps of it) with the filled
    /// ranges overwritten, then tokens masked.
    fn render(&self, text: &[u8]) -> Option<CString> {
        if self.hidden {
            return CString::new(redaction::STATEMENT_HIDDEN).ok();
        }
        let mut copy = shown(text).to_vec();
        redaction::fill(&mut copy, &self.filled);
        if self.tokens_found {
            if let Some(masked) = redaction::mask_statement_jwts(&copy) {
                copy = masked;
            }
        }
        // The text came from a C string and the masks are ASCII: no NUL can appear.
        CString::new(copy).ok()
    }
}

/// A text's identity for [`masked_text`]: the statement's start, the text's address and length.
type TextKey = (pg_sys::TimestampTz, usize, usize);

thread_local! {
    static REPORTED: RefCell<Reported> = const { RefCell::new(Reported::new((0, 0))) };
    /// The last text [`masked_text`] answered for, and its masked copy (`None`: no token).
    static MASKED_TEXT: RefCell<Option<(TextKey, Option<*mut c_char>)>> =
        const { RefCell::new(None) };
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

/// The hooks installed before ours, called after ours.
static mut PREVIOUS_POST_PARSE_ANALYZE: pg_sys::post_parse_analyze_hook_type = None;
static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_EXECUTOR_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREVIOUS_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;
static mut PREVIOUS_PLANNER: pg_sys::planner_hook_type = None;

/// Installs the hooks, keeping any installed before them. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded, before any statement.
    unsafe {
        PREVIOUS_POST_PARSE_ANALYZE = pg_sys::post_parse_analyze_hook;
        pg_sys::post_parse_analyze_hook = Some(statement_analyzed);
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_EXECUTOR_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_EXECUTOR_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        PREVIOUS_PLANNER = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(planner);
    }
}

unsafe extern "C-unwind" {
    #[link_name = "standard_ExecutorStart"]
    fn standard_executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: c_int);
    #[cfg(not(feature = "pg18"))]
    #[link_name = "standard_ExecutorRun"]
    fn standard_executor_run(
        query_desc: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
        execute_once: bool,
    );
    #[cfg(feature = "pg18")]
    #[link_name = "standard_ExecutorRun"]
    fn standard_executor_run(
        query_desc: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
    );
    #[link_name = "standard_ExecutorEnd"]
    fn standard_executor_end(query_desc: *mut pg_sys::QueryDesc);
    #[link_name = "standard_planner"]
    fn standard_planner(
        parse: *mut pg_sys::Query,
        query_string: *const c_char,
        cursor_options: c_int,
        bound_params: pg_sys::ParamListInfo,
    ) -> *mut pg_sys::PlannedStmt;
}

// The hooks below are deliberately not `#[pg_guard]`, and call down the chain unguarded (as
// `utility.rs` explains): an error raised further down must reach Postgres as it was raised.
// Their own work happens in the guarded `hide_tokens_guarded` and `masked_text`.

unsafe extern "C-unwind" fn statement_analyzed(
    pstate: *mut pg_sys::ParseState,
    query: *mut pg_sys::Query,
    jstate: *mut pg_sys::JumbleState,
) {
    // SAFETY: the arguments Postgres gave us; the previous hook sees the source text with its
    // tokens overwritten (a copy of the same length) and ours is put back after it.
    unsafe {
        hide_tokens_guarded();
        if let Some(previous) = PREVIOUS_POST_PARSE_ANALYZE {
            let original = if pstate.is_null() {
                std::ptr::null()
            } else {
                (*pstate).p_sourcetext
            };
            let masked = masked_text(original);
            if masked != original {
                (*pstate).p_sourcetext = masked;
            }
            previous(pstate, query, jstate);
            if masked != original {
                (*pstate).p_sourcetext = original;
            }
        }
    }
}

unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: c_int) {
    // SAFETY: as Postgres calls ExecutorStart. The query's source text becomes a copy with its
    // tokens overwritten (the same length), in the query's own memory: a parallel worker is
    // handed that text (the executor's `es_sourceText`) and reports it as soon as it starts,
    // before any hook of ours runs there.
    unsafe {
        hide_tokens_guarded();
        if !query_desc.is_null() {
            let source = (*query_desc).sourceText;
            let masked = masked_text(source);
            if masked != source {
                (*query_desc).sourceText = own_copy(masked);
            }
        }
        match PREVIOUS_EXECUTOR_START {
            Some(previous) => previous(query_desc, eflags),
            None => standard_executor_start(query_desc, eflags),
        }
    }
}

#[cfg(not(feature = "pg18"))]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    // SAFETY: as Postgres calls ExecutorRun.
    unsafe {
        hide_tokens_guarded();
        match PREVIOUS_EXECUTOR_RUN {
            Some(previous) => previous(query_desc, direction, count, execute_once),
            None => standard_executor_run(query_desc, direction, count, execute_once),
        }
    }
}

#[cfg(feature = "pg18")]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    // SAFETY: as Postgres calls ExecutorRun.
    unsafe {
        hide_tokens_guarded();
        match PREVIOUS_EXECUTOR_RUN {
            Some(previous) => previous(query_desc, direction, count),
            None => standard_executor_run(query_desc, direction, count),
        }
    }
}

unsafe extern "C-unwind" fn executor_end(query_desc: *mut pg_sys::QueryDesc) {
    // SAFETY: as Postgres calls ExecutorEnd; the source text is swapped for the previous hook
    // only (as in statement_analyzed).
    unsafe {
        let Some(previous) = PREVIOUS_EXECUTOR_END else {
            return standard_executor_end(query_desc);
        };
        let original = if query_desc.is_null() {
            std::ptr::null()
        } else {
            (*query_desc).sourceText
        };
        let masked = masked_text(original);
        if masked != original {
            (*query_desc).sourceText = masked;
        }
        previous(query_desc);
        if masked != original && !query_desc.is_null() {
            (*query_desc).sourceText = original;
        }
    }
}

unsafe extern "C-unwind" fn planner(
    parse: *mut pg_sys::Query,
    query_string: *const c_char,
    cursor_options: c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    // SAFETY: as Postgres calls the planner; only a hook installed before ours gets the masked
    // text (the standard planner does not read it). The planner runs at Bind for most
    // statements (custom plans, and the first generic one), after Bind reported the text again:
    // masked here, an INSERT whose executor starts only at Execute is not shown meanwhile.
    unsafe {
        hide_tokens_guarded();
        match PREVIOUS_PLANNER {
            Some(previous) => previous(
                parse,
                masked_text(query_string),
                cursor_options,
                bound_params,
            ),
            None => standard_planner(parse, query_string, cursor_options, bound_params),
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn hide_tokens_guarded() {
    hide_tokens();
}

/// A copy of `text` in the current memory context (the query's, at ExecutorStart).
///
/// # Safety
/// `text` must be a NUL-terminated string.
#[pg_guard]
unsafe extern "C-unwind" fn own_copy(text: *const c_char) -> *const c_char {
    // SAFETY: as the caller guarantees; pstrdup copies it and its NUL.
    unsafe { pg_sys::pstrdup(text) }
}

/// `text`, or — when it holds tokens — a copy with their bytes overwritten, the same length
/// (`pg_stat_statements` slices it by offsets). Computed once per text: a string of many
/// statements reaches these hooks once per statement, and each must not read the whole string
/// again. The copy lives in `TopMemoryContext` until the next text replaces it (the hooks down
/// the chain use it only during their call); it is searched without collecting anything, so a
/// text of hundreds of MB costs one pass and one copy.
///
/// # Safety
/// `text` must be NULL or a NUL-terminated string.
#[pg_guard]
unsafe extern "C-unwind" fn masked_text(text: *const c_char) -> *const c_char {
    if text.is_null() {
        return text;
    }
    // SAFETY: see the declaration.
    let start = unsafe { statement_start_timestamp() };
    // The statement's own text (the whole string of a simple query, every statement of which
    // comes here): unchanged while it runs, so known by its address — without measuring it, which
    // for each of many statements in one string would read the whole string again.
    // SAFETY: a backend global, read in the backend's only thread.
    let top_level = text == unsafe { pg_sys::debug_query_string };
    // The answer already given, if the text last answered for is the one `matches` accepts.
    let cached = |matches: &dyn Fn(&TextKey) -> bool| {
        with_slot(&MASKED_TEXT, |slot| match slot {
            Some((known, copy)) if matches(known) => {
                Some(copy.map_or(text, |c| c as *const c_char))
            }
            _ => None,
        })
        .flatten()
    };
    if top_level {
        if let Some(answer) = cached(&|&(s, t, _)| s == start && t == text as usize) {
            return answer;
        }
    }
    // SAFETY: as the caller guarantees.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    let key = (start, text as usize, bytes.len());
    if let Some(answer) = cached(&|known| *known == key) {
        return answer;
    }
    let mut any = false;
    redaction::for_each_jwt(bytes, |_| any = true);
    let copy = if any {
        // SAFETY: a copy of `bytes` and a NUL in TopMemoryContext (an error if memory is short:
        // this hook may raise one, and the statement then fails cleanly).
        unsafe {
            let copy = pg_sys::MemoryContextAllocExtended(
                pg_sys::TopMemoryContext,
                bytes.len() + 1,
                pg_sys::MCXT_ALLOC_HUGE as i32,
            )
            .cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len());
            *copy.add(bytes.len()) = 0;
            let out = std::slice::from_raw_parts_mut(copy, bytes.len());
            if redaction::fill_statement_jwts(bytes, out) {
                Some(copy.cast::<c_char>())
            } else {
                pg_sys::pfree(copy.cast());
                None
            }
        }
    } else {
        None
    };
    with_slot(&MASKED_TEXT, |slot| {
        if let Some((_, Some(previous))) = slot.take() {
            // SAFETY: our own copy, no longer handed out (its text's turn is over).
            unsafe { pg_sys::pfree(previous.cast()) };
        }
        *slot = Some((key, copy));
    });
    copy.map_or(text, |c| c as *const c_char)
}

/// Masks the tokens of the current statement's text in `pg_stat_activity`, once per statement.
pub fn hide_tokens() {
    let Some((key, query)) = current() else {
        return;
    };
    let report = with_slot(&REPORTED, |reported| {
        if reported.key == key && reported.tokens_checked {
            return None;
        }
        if reported.key != key {
            *reported = Reported::new(key);
        }
        reported.tokens_checked = true;
        // SAFETY: debug_query_string is a NUL-terminated string for the whole statement.
        let text = unsafe { CStr::from_ptr(query) }.to_bytes();
        // A statement that names a key setting as written (a superuser's `SELECT
        // set_config('electric_auth.jwt_key', …)`, a string of statements with a `SET` of it) may
        // carry a new key: hidden whole, as the log hides it.
        if redaction::names_key_plainly(shown(text)) {
            reported.hidden = true;
            return reported.render(text);
        }
        let mut found = false;
        redaction::for_each_statement_jwt(shown(text), |_| found = true);
        reported.tokens_found = found;
        if reported.tokens_found {
            reported.render(text)
        } else {
            None
        }
    });
    if let Some(text) = report.flatten() {
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
    let report = with_slot(&REPORTED, |reported| {
        if reported.key != key {
            *reported = Reported::new(key);
        }
        reported.filled.extend_from_slice(ranges);
        // SAFETY: as in hide_tokens.
        reported.render(unsafe { CStr::from_ptr(query) }.to_bytes())
    });
    if let Some(text) = report.flatten() {
        report_activity(&text);
    }
}

/// Hides the whole current statement in `pg_stat_activity` (it names the key, or holds the key
/// in force, and failed before the utility hook could overwrite the value: a syntax error, an
/// aborted transaction). The log hook calls it for such a statement's error.
pub fn hide_statement() {
    let Some((key, query)) = current() else {
        return;
    };
    let report = with_slot(&REPORTED, |reported| {
        if reported.key != key {
            *reported = Reported::new(key);
        }
        if reported.hidden {
            return None;
        }
        reported.hidden = true;
        // SAFETY: as in hide_tokens.
        reported.render(unsafe { CStr::from_ptr(query) }.to_bytes())
    });
    if let Some(text) = report.flatten() {
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
