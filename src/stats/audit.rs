//! The audit log, quiet by default: `electric_auth.log_refusals` writes one LOG line per refused
//! check, at most `electric_auth.log_refusals_per_second` per second for the whole server (per
//! backend without `shared_preload_libraries`), then one line saying how many were left out (with
//! the next line written after that second, or when a backend that left one out exits); `electric_auth.log_authentications` one per successful `authenticate()` and OAuth
//! login.
//!
//! A line names the entry point, the reason, the role, the database and the client address;
//! never the token, a key, or a claim of a token that did not verify (the user id of a
//! successful authentication was verified).

use crate::errors::log;
use electric_auth_core::outcome::{EntryPoint, Reason};
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;

thread_local! {
    /// The second (Unix) the current window started, lines written in it, lines left out.
    static WINDOW: Cell<(i64, u32, u64)> = const { Cell::new((i64::MIN, 0, 0)) };
    static EXIT_HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Logs a refusal at `entry` for `reason`, within the rate limit. `role`: the role a login asked
/// for (OAuth), else the current role.
///
/// With the library preloaded the limit holds for the server as a whole (`shmem.rs`'s
/// budget): one client reconnecting in a loop gets no fresh allowance per backend. Without it
/// (no shared memory), for each backend.
pub fn refusal(
    entry: EntryPoint,
    reason: Reason,
    role: Option<&CStr>,
    limit: i32,
    issuer: Option<&str>,
) {
    // SAFETY: reads the clock. Whole seconds since 2000-01-01: one rate-limit window each.
    let now = unsafe { pg_sys::GetCurrentTimestamp() }.div_euclid(1_000_000);
    match super::shmem::take_log_line(now, u32::try_from(limit).unwrap_or(0)) {
        Some(super::shmem::LogLine::Write { left_out }) => {
            report_left_out(left_out, "on this server");
            write_refusal(entry, reason, role, issuer);
        }
        Some(super::shmem::LogLine::LeftOut) => hook_exit_report(),
        None => refusal_per_backend(entry, reason, role, limit, now, issuer),
    }
}

/// The line names the listed issuer the token was checked under (`electric_auth.issuers`;
/// its `iss`, which selected it, is configuration, not the token's secret).
fn write_refusal(entry: EntryPoint, reason: Reason, role: Option<&CStr>, issuer: Option<&str>) {
    let issuer = issuer.map_or_else(String::new, |iss| {
        format!(", issuer \"{}\"", iss.escape_default())
    });
    log(format!(
        "electric_auth refused a token: entry point {}, reason {}{issuer}, {}",
        entry.name(),
        reason.name(),
        who(role)
    ));
}

/// At this backend's exit, reports the lines left out that nobody reported yet.
fn hook_exit_report() {
    if !EXIT_HOOKED.replace(true) {
        // SAFETY: registers a guarded callback that only logs; runs at process exit.
        unsafe { pg_sys::on_proc_exit(Some(report_at_exit), pg_sys::Datum::from(0)) };
    }
}

/// The per-backend limit, without the preloaded segment.
fn refusal_per_backend(
    entry: EntryPoint,
    reason: Reason,
    role: Option<&CStr>,
    limit: i32,
    now: i64,
    issuer: Option<&str>,
) {
    let (start, written, left_out) = WINDOW.get();
    let (written, left_out) = if start != now {
        report_left_out(left_out, "in this backend");
        (0, 0)
    } else {
        (written, left_out)
    };
    if i64::from(written) >= i64::from(limit) {
        WINDOW.set((now, written, left_out + 1));
        hook_exit_report();
        return;
    }
    WINDOW.set((now, written + 1, left_out));
    write_refusal(entry, reason, role, issuer);
}

/// Logs a successful authentication of `user_id` (verified) at `entry`.
pub fn authentication(entry: EntryPoint, user_id: &str, role: Option<&CStr>) {
    log(format!(
        "electric_auth authenticated user id \"{}\": entry point {}, {}",
        user_id.escape_default(),
        entry.name(),
        who(role)
    ));
}

fn report_left_out(left_out: u64, where_: &str) {
    if left_out > 0 {
        log(format!(
            "electric_auth left {left_out} refusal log lines out {where_} \
             (electric_auth.log_refusals_per_second)"
        ));
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn report_at_exit(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    let (_, _, left_out) = WINDOW.replace((i64::MIN, 0, 0));
    report_left_out(left_out, "in this backend");
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() }.div_euclid(1_000_000);
    report_left_out(
        super::shmem::take_left_out_at_exit(now).unwrap_or(0),
        "on this server",
    );
}

/// `role "…", database "…", client …`, each as far as this process knows it.
fn who(role: Option<&CStr>) -> String {
    // SAFETY: catalog lookups only inside a transaction (noerr: NULL when missing); the
    // results are palloc'd NUL-terminated strings or NULL.
    let (current_role, database) = unsafe {
        if pg_sys::IsTransactionState() {
            (
                pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true),
                if pg_sys::MyDatabaseId == pg_sys::InvalidOid {
                    std::ptr::null_mut()
                } else {
                    pg_sys::get_database_name(pg_sys::MyDatabaseId)
                },
            )
        } else {
            (std::ptr::null_mut(), std::ptr::null_mut())
        }
    };
    // SAFETY: NULL or a NUL-terminated string from above.
    let text = |p: *mut std::ffi::c_char| {
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let role = role
        .map(|r| r.to_string_lossy().into_owned())
        .or_else(|| text(current_role));
    let quoted = |v: Option<String>| {
        v.map_or("unknown".to_owned(), |v| {
            format!("\"{}\"", v.escape_default())
        })
    };
    format!(
        "role {}, database {}, client {}",
        quoted(role),
        quoted(text(database)),
        client_address()
    )
}

/// The client's IP address, `local` for a Unix socket, `none` without a client (a parallel
/// or background worker).
fn client_address() -> String {
    // SAFETY: inet_client_addr takes no argument and returns NULL without a TCP client;
    // inet_out returns a palloc'd C string.
    unsafe {
        if !pg_sys::IsUnderPostmaster || !has_client() {
            return "none".to_owned();
        }
        match pgrx::fcinfo::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]) {
            None => "local".to_owned(),
            Some(inet) => {
                match pgrx::fcinfo::direct_function_call_as_datum(pg_sys::inet_out, &[Some(inet)]) {
                    Some(text) => CStr::from_ptr(text.cast_mut_ptr())
                        .to_string_lossy()
                        .into_owned(),
                    None => "unknown".to_owned(),
                }
            }
        }
    }
}

fn has_client() -> bool {
    // SAFETY: a backend global; a client backend (or a login in progress) has a Port.
    !unsafe { pg_sys::MyProcPort }.is_null()
}
