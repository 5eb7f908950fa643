//! Keeps keys and tokens out of `pg_stat_statements` (readable with `pg_read_all_stats`), with
//! a `ProcessUtility_hook`.
//!
//! `pg_stat_statements` stores a utility statement's text as its own `ProcessUtility` hook
//! receives it, verbatim on Postgres 15–17 (`ALTER SYSTEM SET electric_auth.jwt_key = '…'`
//! included). Our hook runs first when electric_auth is listed after pg_stat_statements in
//! `shared_preload_libraries` (the README asks for last), and passes down the chain a copy of
//! the query string with the secret overwritten byte for byte (`pg_stat_statements` cuts the
//! statement out of the string by offsets, so the length is kept). Which statement sets a key is
//! decided by the parse tree (`SET`, `ALTER SYSTEM`, `ALTER ROLE/DATABASE … SET`), so
//! `U&"…"` names are already resolved; its value is overwritten from where the parse tree says
//! it starts. Any other utility statement whose text names the key has its string literals'
//! bodies overwritten, and JWT-shaped runs are overwritten in every utility statement
//! (`electric_auth_core::redaction::utility_ranges`). Execution reads the parse tree, not the
//! text: none of these statements behaves differently. `pg_stat_activity` gets the same mask.

use super::activity;
use electric_auth_core::redaction;
use pgrx::{pg_guard, pg_sys, PgList};
use std::ffi::{c_char, CStr};

/// The previous hook, called with the masked text.
static mut PREVIOUS_HOOK: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hook, keeping any hook installed before it. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded, before any statement we handle.
    unsafe {
        PREVIOUS_HOOK = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

unsafe extern "C-unwind" {
    /// Postgres's own `standard_ProcessUtility`, without pgrx's guard (see `process_utility`).
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// The hook. Deliberately not `#[pg_guard]`, and calling down the chain unguarded: an error
/// raised further down (any failing utility statement) must reach Postgres as it was raised,
/// with its context and position, not be caught and re-raised by pgrx. So this frame holds no
/// value that needs dropping, and the Rust work happens in the guarded [`masked_query`].
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    unsafe {
        let query = masked_query(pstmt, query_string, context);
        let next = PREVIOUS_HOOK.unwrap_or(standard_process_utility);
        next(
            pstmt,
            query,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        );
    }
}

/// `query_string`, or a palloc'd copy with its secrets overwritten.
///
/// # Safety
/// The arguments must be those Postgres passes to `ProcessUtility`.
#[pg_guard]
unsafe extern "C-unwind" fn masked_query(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    context: pg_sys::ProcessUtilityContext::Type,
) -> *const c_char {
    if pstmt.is_null() || query_string.is_null() {
        return query_string;
    }
    let text = unsafe { CStr::from_ptr(query_string) }.to_bytes();
    let (location, length) = unsafe { ((*pstmt).stmt_location, (*pstmt).stmt_len) };
    let start = usize::try_from(location).unwrap_or(0).min(text.len());
    let end = match usize::try_from(length) {
        Ok(length) if length > 0 => (start + length).min(text.len()),
        _ => text.len(),
    };
    let top_level = context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL;
    if unsafe { is_forwarded_carrier((*pstmt).utilityStmt, top_level) } {
        return query_string;
    }
    let value_start = unsafe { secret_setting_value((*pstmt).utilityStmt) };
    let ranges = redaction::utility_ranges(text, start..end, value_start);
    if ranges.is_empty() {
        return query_string;
    }
    let mut copy = text.to_vec();
    redaction::fill(&mut copy, &ranges);
    activity::hide_ranges(query_string, &ranges);
    // SAFETY: copies `copy.len()` bytes and a NUL into the current memory context (the
    // statement's), which outlives the ProcessUtility call.
    unsafe { pg_sys::pnstrdup(copy.as_ptr().cast(), copy.len()) }
}

/// The parse tree of the `VariableSetStmt` in `node` (a `SET`, or the one inside `ALTER
/// SYSTEM/ROLE/DATABASE … SET`), if it is one.
///
/// # Safety
/// `node` must be NULL or a utility statement's parse tree.
unsafe fn variable_set(node: *mut pg_sys::Node) -> Option<&'static pg_sys::VariableSetStmt> {
    if node.is_null() {
        return None;
    }
    let set: *mut pg_sys::VariableSetStmt = unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_VariableSetStmt => node.cast(),
            pg_sys::NodeTag::T_AlterSystemStmt => (*node.cast::<pg_sys::AlterSystemStmt>()).setstmt,
            pg_sys::NodeTag::T_AlterRoleSetStmt => {
                (*node.cast::<pg_sys::AlterRoleSetStmt>()).setstmt
            }
            pg_sys::NodeTag::T_AlterDatabaseSetStmt => {
                (*node.cast::<pg_sys::AlterDatabaseSetStmt>()).setstmt
            }
            _ => return None,
        }
    };
    // SAFETY: a node of the statement's parse tree, which outlives the ProcessUtility call.
    unsafe { set.as_ref() }
}

/// The setting `set` names, as the parser resolved it.
fn set_name(set: &pg_sys::VariableSetStmt) -> Option<&[u8]> {
    // SAFETY: a non-NULL name is a NUL-terminated string of the parse tree.
    (!set.name.is_null()).then(|| unsafe { CStr::from_ptr(set.name) }.to_bytes())
}

/// Whether `node` is the Citus coordinator's own forwarding statement: a nested (not
/// `top_level`) `SET LOCAL` of the carrier, which identity/carrier.rs and identity/citus.rs run through SPI with the
/// sealed identity. Citus, further down this chain, forwards its text to the workers as it
/// receives it, so it is passed on untouched; the workers' copy, top-level there, is masked.
///
/// # Safety
/// `node` must be NULL or a utility statement's parse tree.
unsafe fn is_forwarded_carrier(node: *mut pg_sys::Node, top_level: bool) -> bool {
    !top_level
        && unsafe { variable_set(node) }
            .and_then(set_name)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"electric_auth.identity_token"))
}

/// Where the value starts (a byte offset in the query string) when `node` sets one of
/// `redaction::SECRET_SETTINGS` to a value.
///
/// # Safety
/// `node` must be NULL or a utility statement's parse tree.
unsafe fn secret_setting_value(node: *mut pg_sys::Node) -> Option<usize> {
    let set = unsafe { variable_set(node) }?;
    if !redaction::is_secret_setting(set_name(set)?) {
        return None;
    }
    let args = unsafe { PgList::<pg_sys::Node>::from_pg(set.args) };
    let first = args.get_ptr(0)?;
    let location = unsafe { pg_sys::exprLocation(first) };
    usize::try_from(location).ok()
}
