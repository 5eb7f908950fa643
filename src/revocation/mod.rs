//! Revocation (issue 33): a token, or every token of a user issued before a time, refused before
//! it expires — in every backend of the server within the revoking transaction's commit, on hot
//! standbys once they replay it, after a restart or a crash, in every database. The rules are the
//! core's `revocation`; here the list in shared memory and its file (`shmem.rs`), and the WAL
//! that makes it durable and replicated (`wal.rs`). Needs `shared_preload_libraries` (shared
//! memory, and a WAL resource manager registered before recovery). Imports `settings` and
//! `keys::clock_now` only; the SQL functions are in `sql/revocation.rs`.
#![allow(clippy::result_large_err)] // ErrorReport unboxed, as pgrx expects

mod shmem;
mod wal;

pub use shmem::{available, generation, prune, read_file, KEEP_AFTER_EXP_SECS};
pub use wal::add;

use crate::settings::{names, Context, Setting, Value};
use electric_auth_core::revocation::{is_revoked, Keys};
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// `electric_auth.max_revocations`: the most entries the list holds (server start).
static MAX_REVOCATIONS: GucSetting<i32> = GucSetting::<i32>::new(100_000);

/// The settings, for `settings::register`: only while `shared_preload_libraries` loads (a
/// server-start setting cannot be defined later, and without preloading there is no list).
pub fn declared() -> Vec<Setting> {
    // SAFETY: read in _PG_init, where Postgres sets it while preloading.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return Vec::new();
    }
    vec![Setting {
        name: names::MAX_REVOCATIONS,
        short: c"The most entries the revocation list holds (tokens and users); shared memory is sized for it at server start.",
        long: c"Each entry takes 40 to 66 bytes of shared memory (a table at most half full and a Bloom filter, rounded up to powers of two). A revocation past it is refused with an error, never dropped. Set it on a standby at least as high as on its primary.",
        context: Context::Postmaster,
        flags: GucFlags::default(),
        value: Value::Int {
            setting: &MAX_REVOCATIONS,
            min: 1000,
            max: 10_000_000,
            assign: None,
        },
    }]
}

/// The configured size.
fn max_entries() -> u64 {
    u64::try_from(MAX_REVOCATIONS.get()).unwrap_or(100_000)
}

/// From `_PG_init`: with `shared_preload_libraries`, the shared memory and the WAL resource
/// manager.
pub fn init() {
    // SAFETY: read in _PG_init, where Postgres sets it while preloading.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        shmem::init();
        wal::init();
    }
}

/// Whether a verified token is revoked: by its own entry (its `jti` with `iss`, else its
/// signature), or by its user's (issued before the user's time). One load when nothing is
/// revoked.
#[inline]
pub fn revoked(
    token: &[u8],
    iss: Option<&str>,
    jti: Option<&str>,
    user_id: &str,
    iat: Option<f64>,
) -> bool {
    match shmem::lookup(|keys: &Keys| keys.token_of(token, iss, jti), user_id) {
        None => false,
        Some((token_entry, user_entry)) => is_revoked(token_entry, user_entry, iat),
    }
}

/// Whether anything is revoked (one load): verifications skip reading a token's claims for
/// revocation otherwise.
#[inline]
pub fn any() -> bool {
    shmem::any()
}

fn warn(message: String) {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "electric_auth")
        .report(PgLogLevel::WARNING);
}

/// The role that may revoke users and read the list (created by the extension's script).
pub const REVOKER_ROLE: &std::ffi::CStr = c"electric_auth_revoker";

/// Whether the current role is a superuser or has the privileges of `electric_auth_revoker`.
pub fn is_revoker() -> bool {
    // SAFETY: catalog lookups by name and membership, inside a transaction (a SQL call).
    unsafe {
        if pg_sys::superuser() {
            return true;
        }
        let revoker = pg_sys::get_role_oid(REVOKER_ROLE.as_ptr(), true);
        revoker != pg_sys::InvalidOid && pg_sys::has_privs_of_role(pg_sys::GetUserId(), revoker)
    }
}

/// The current role's name, for `revoked_by`.
pub fn current_role() -> String {
    // SAFETY: a catalog lookup inside a transaction; NULL when the role is gone (noerr).
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true);
        if name.is_null() {
            return String::new();
        }
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Refuses to revoke where it cannot be kept: without the list (no preload), or on a hot
/// standby (read-only: revoke on the primary, the standby replays it).
pub fn may_write() -> Result<(), ErrorReport> {
    if !available() {
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "revocation needs electric_auth in shared_preload_libraries",
            "electric_auth",
        )
        .set_detail("The revocation list lives in shared memory and is WAL-logged by a resource manager registered at server start.")
        .set_hint("Add electric_auth to shared_preload_libraries and restart the server."));
    }
    // SAFETY: reads this process's view of recovery.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "cannot revoke on a hot standby",
            "electric_auth",
        )
        .set_hint("Revoke on the primary: the standby refuses the token once it has replayed the revocation."));
    }
    Ok(())
}

/// Refuses (42501) a role that is neither a superuser nor a member of `electric_auth_revoker`.
pub fn require_revoker(what: &str) -> Result<(), ErrorReport> {
    if is_revoker() {
        return Ok(());
    }
    Err(ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("permission denied to {what}"),
        "electric_auth",
    )
    .set_hint("Superusers and members of electric_auth_revoker may (GRANT electric_auth_revoker TO app_admin); any role may revoke a token it holds with electric_auth.revoke_token(token)."))
}
