//! The session identity's Postgres side: `authenticate()`, `current_user_id()`,
//! `current_claims()`, `logout()` (the rules are in `electric_auth_core::identity`).
//!
//! The identity travels as the verified token in the setting `electric_auth.identity_token`
//! (the *carrier*), so Postgres's own setting machinery gives it its lifetime and its reach:
//! - `authenticate(token, 'transaction')` sets it like `SET LOCAL` and `'session'` like `SET`,
//!   so COMMIT, ROLLBACK, PREPARE TRANSACTION, `ROLLBACK TO SAVEPOINT` and `DISCARD ALL` (it is
//!   not `GUC_NO_RESET_ALL`) end or restore it exactly as they do any setting;
//! - parallel workers receive it with the leader's other settings and verify it themselves.
//!
//! It cannot be forged: its check hook refuses every value except an empty one unless
//! `authenticate()` is setting it (a flag only this module raises, around one assignment) or a
//! parallel worker is restoring its leader's settings. And it is never trusted as it stands: the
//! token is verified again in any process, or under any settings, that has not verified it yet
//! (through the verified-token cache).
//!
//! Citus: how the identity reaches the workers (sealed, in a `SET LOCAL` Citus forwards) and
//! what a worker accepts is in `citus.rs`.
#![allow(clippy::result_large_err)] // ErrorReport unboxed, as pgrx expects (see sql/mod.rs)

use super::citus;
use crate::errors::error_report;
use crate::settings::hooks::{check_hook_candidate, refuse_in_check_hook};
use crate::settings::{self, names, Context, Setting, Value};
use crate::stats;
use crate::verify::cache::verifier_builds;
use crate::verify::{check_session, clock_now, statement_time, verify_counted, verify_now};
use electric_auth_core::identity::{
    admission, carries_nothing, Admission, Identity, IdentityState, Origin, Scope,
};
use electric_auth_core::outcome::{EntryPoint, Reason};
use electric_auth_core::{Error, TokenError, VerifiedToken, Verifier};
use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::IntoDatum;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr, CString};

/// `electric_auth.identity_token`: the carrier (see the module notes). Hidden from `SHOW ALL`
/// and readable by superusers only: it holds a bearer token.
static IDENTITY_TOKEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `electric_auth.session_scope`: whether `authenticate(token, 'session')` is allowed.
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionScope {
    #[name = c"allow"]
    Allow,
    #[name = c"refuse"]
    Refuse,
}

/// `electric_auth.session_scope`, default `refuse`: behind a transaction-pooling connection
/// pooler (PgBouncer, Supavisor, RDS Proxy) a server connection serves many clients in turn, and
/// a session-scope identity would outlive its client's transaction and act for the next client.
/// The database cannot see a pooler, so the safe answer is the default; a superuser allows it
/// where each connection belongs to one client. Context: superuser.
static SESSION_SCOPE: GucSetting<SessionScope> =
    GucSetting::<SessionScope>::new(SessionScope::Refuse);

/// `electric_auth.role_claim`: the claim that names the roles a connection authenticated by its
/// token may use when pg_hba.conf delegates the ident mapping (PostgreSQL 18, `oauth.rs` beside this file).
/// Only in the configuration files; empty means no role.
pub static ROLE_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `electric_auth.delegate_privileged_roles`: whether a delegated role may be a superuser or
/// have REPLICATION or BYPASSRLS (PostgreSQL 18, `oauth.rs` beside this file). Only in the configuration files;
/// default off.
#[cfg_attr(not(feature = "pg18"), allow(dead_code))] // read by oauth.rs, PostgreSQL 18 only
pub static DELEGATE_PRIVILEGED_ROLES: GucSetting<bool> = GucSetting::<bool>::new(false);

thread_local! {
    /// Bumped whenever the carrier is assigned: set, reset, or restored at rollback.
    static EPOCH: Cell<u64> = const { Cell::new(0) };
    /// Raised only while `authenticate()` puts a token it verified into the carrier.
    static AUTHENTICATING: Cell<bool> = const { Cell::new(false) };
    static STATE: RefCell<IdentityState> = const { RefCell::new(IdentityState::new()) };
    /// The held identity's claims as a jsonb value's bytes, built once per identity (by serial).
    static CLAIMS_JSONB: RefCell<Option<(u64, Vec<u8>)>> = const { RefCell::new(None) };
    /// Raised when this connection was authenticated by its token (PostgreSQL 18 OAuth): that
    /// token is the session's identity for good.
    static CONNECTION_IDENTITY: Cell<bool> = const { Cell::new(false) };
}

#[pg_guard]
unsafe extern "C-unwind" fn check_identity_token(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passed to this string check hook.
    let candidate = unsafe { check_hook_candidate(newval) };
    // SAFETY: a plain read of a backend global.
    let restoring_in_worker = unsafe { pg_sys::InitializingParallelWorker };
    let origin = if AUTHENTICATING.get() {
        Origin::Authenticate
    } else if restoring_in_worker {
        Origin::ParallelWorkerRestore
    } else if source == pg_sys::GucSource::PGC_S_SESSION {
        Origin::SessionSet
    } else {
        Origin::Other
    };
    let pinned = CONNECTION_IDENTITY.get();
    match admission(
        candidate.to_bytes(),
        origin,
        citus::accepts_propagated(),
        pinned,
    ) {
        Admission::Accept => return true,
        // SAFETY: the candidate read above, still owned by the GUC machinery.
        Admission::AcceptIfItVerifies => {
            return unsafe { citus::propagated_value_accepted(candidate) }
        }
        Admission::Refuse => {}
    }
    if pinned {
        // SAFETY: a check hook about to return false.
        unsafe {
            refuse_in_check_hook(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "electric_auth.identity_token cannot be changed on a connection authenticated by its token",
                "This connection logged in with an OAuth bearer token (pg_hba.conf method oauth); that token is its identity until it disconnects.",
                "Open a new connection to act with another token.",
            );
        }
        return false;
    }
    // SAFETY: a check hook about to return false.
    unsafe {
        refuse_in_check_hook(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "electric_auth.identity_token can only be set by electric_auth.authenticate()",
            "It carries the token a successful electric_auth.authenticate() verified; no SET, set_config(), role, database, function or connection setting can supply one.",
            "Call electric_auth.authenticate(token) instead.",
        );
    }
    false
}

#[pg_guard]
unsafe extern "C-unwind" fn identity_token_assigned(_newval: *const c_char, _extra: *mut c_void) {
    EPOCH.set(EPOCH.get().wrapping_add(1));
}

/// The carrier and the session settings, declared for the registry. The carrier is not
/// `GUC_NO_RESET_ALL`: `RESET ALL` and `DISCARD ALL` end a session identity.
pub fn declared() -> [Setting; 4] {
    [
        Setting {
            name: names::IDENTITY_TOKEN,
            short: c"The token of the identity in force, set only by electric_auth.authenticate().",
            long: c"Read it with electric_auth.current_user_id() and electric_auth.current_claims().",
            context: Context::Userset,
            flags: GucFlags::NO_SHOW_ALL
                .union(GucFlags::SUPERUSER_ONLY)
                .union(GucFlags::DISALLOW_IN_FILE)
                .union(GucFlags::DISALLOW_IN_AUTO_FILE),
            value: Value::Text {
                setting: &IDENTITY_TOKEN,
                check: Some(check_identity_token),
                assign: Some(identity_token_assigned),
            },
        },
        Setting {
            name: names::SESSION_SCOPE,
            short: c"Whether electric_auth.authenticate(token, 'session') is allowed: allow or refuse (default).",
            long: c"Refuse behind a transaction-pooling connection pooler, where a session identity would act for the next client of the server connection.",
            context: Context::Suset,
            flags: GucFlags::NO_RESET_ALL,
            value: Value::Enum {
                setting: &SESSION_SCOPE,
                assign: None,
            },
        },
        Setting {
            name: names::DELEGATE_PRIVILEGED_ROLES,
            short: c"Whether a token may log in as a superuser, REPLICATION or BYPASSRLS role when pg_hba.conf delegates ident mapping (PostgreSQL 18 OAuth).",
            long: c"Off by default: such roles are refused, with the reason in the server log.",
            context: Context::Sighup,
            flags: GucFlags::empty(),
            value: Value::Bool {
                setting: &DELEGATE_PRIVILEGED_ROLES,
                assign: None,
            },
        },
        Setting {
            name: names::ROLE_CLAIM,
            short: c"Claim naming the roles a token may use when pg_hba.conf delegates ident mapping (PostgreSQL 18 OAuth).",
            long: c"A string or an array of role names in the token; empty means no role is authorized.",
            context: Context::Sighup,
            flags: GucFlags::empty(),
            value: Value::Text {
                setting: &ROLE_CLAIM,
                check: None,
                assign: None,
            },
        },
    ]
}

/// Makes `token`, which authenticated this connection (PostgreSQL 18 OAuth), the session's
/// identity for good: assigned as the carrier's reset value (so `RESET` and `DISCARD ALL` come
/// back to it, and parallel workers receive it), and `authenticate()`/`logout()` refuse.
#[cfg_attr(not(feature = "pg18"), allow(dead_code))] // called by oauth.rs, PostgreSQL 18 only
pub fn pin_connection_identity(token: &CStr) {
    // PGC_S_OVERRIDE makes it the reset value too; only a session SET outranks it, and the
    // carrier's check hook refuses those.
    assign_carrier(
        token,
        pg_sys::GucSource::PGC_S_OVERRIDE,
        pg_sys::GucAction::GUC_ACTION_SET,
    );
    CONNECTION_IDENTITY.set(true);
}

/// Refuses to replace a connection's token identity (see [`pin_connection_identity`]).
fn refuse_if_connection_identity(what: &str) -> Result<(), ErrorReport> {
    if !CONNECTION_IDENTITY.get() {
        return Ok(());
    }
    Err(ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{what} cannot replace the identity of a connection authenticated by its token"),
        "electric_auth",
    )
    .set_hint("This connection logged in with an OAuth bearer token (pg_hba.conf method oauth); that token is its identity until it disconnects."))
}

/// Runs `assign` with the flag that lets the carrier's check hook take a token raised (for a
/// non-empty `value`), and lowers it again afterwards, also when `assign` raises an error.
fn as_authenticate<R>(value: &CStr, assign: impl FnOnce() -> R) -> R {
    struct Lower;
    impl Drop for Lower {
        fn drop(&mut self) {
            AUTHENTICATING.set(false);
        }
    }
    AUTHENTICATING.set(!value.is_empty());
    let _lower = Lower; // errors unwind through here
    assign()
}

/// Assigns the carrier directly, as the library (see [`as_authenticate`]).
fn assign_carrier(value: &CStr, source: pg_sys::GucSource::Type, action: pg_sys::GucAction::Type) {
    as_authenticate(value, || {
        // SAFETY: an ordinary setting assignment with NUL-terminated strings that outlive the
        // call; with elevel ERROR it either succeeds or raises.
        unsafe {
            pg_sys::set_config_option(
                names::IDENTITY_TOKEN.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                source,
                action,
                true,
                PgLogLevel::ERROR as i32,
                false,
            )
        }
    });
}

/// Puts `value` into the carrier with `action` (`GUC_ACTION_LOCAL`: like `SET LOCAL`;
/// `GUC_ACTION_SET`: like `SET`). Postgres raises any error (e.g. in a parallel operation).
fn set_carrier(value: &CStr, action: pg_sys::GucAction::Type) {
    if citus::loaded() {
        if action == pg_sys::GucAction::GUC_ACTION_LOCAL {
            // Citus forwards a SET LOCAL statement (the value sealed), never an assignment made
            // from C; the assignment below then keeps the token itself on this node.
            citus::forward_set_local(value, |statement| {
                as_authenticate(value, || Spi::run(statement))
            });
        } else {
            citus::warn_session_scope(value);
        }
    }
    assign_carrier(value, pg_sys::GucSource::PGC_S_SESSION, action);
}

/// `electric_auth.authenticate(token, scope)`.
pub fn authenticate(token: Option<&[u8]>, scope: Option<&str>) -> Result<String, ErrorReport> {
    let scope = scope.and_then(Scope::from_name).ok_or_else(|| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "invalid scope: {}",
                scope.map_or("NULL".to_owned(), |s| format!("\"{}\"", s.escape_default()))
            ),
            "electric_auth",
        )
        .set_hint("The scope must be 'transaction' (the default) or 'session'.")
    })?;
    refuse_if_connection_identity("electric_auth.authenticate()")
        .inspect_err(|_| stats::refused(EntryPoint::Authenticate, Reason::RefusedSession))?;
    if scope == Scope::Session && SESSION_SCOPE.get() == SessionScope::Refuse {
        stats::refused(EntryPoint::Authenticate, Reason::RefusedSession);
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "session-scope identities are refused here (electric_auth.session_scope = refuse)",
            "electric_auth",
        )
        .set_detail("Behind a transaction-pooling connection pooler a server connection serves many clients in turn; a session-scope identity would act for the next one.")
        .set_hint("Call electric_auth.authenticate(token) inside each transaction (scope 'transaction'). A superuser can set electric_auth.session_scope = allow where each connection belongs to one client."));
    }
    let Some(token) = token else {
        stats::refused(EntryPoint::Authenticate, Reason::InvalidToken);
        return Err(error_report(Error::Token(TokenError::InvalidToken))
            .set_hint("electric_auth.authenticate() was given NULL instead of a token."));
    };
    // What the identity is verified under, read BEFORE the check (red team): keys that move
    // during it (a fetched key retired) must make the next read verify again, never be taken
    // as what this identity was checked with.
    let generation = identity_generation();
    let identity = verify_now(EntryPoint::Authenticate, token, identity_of)?;
    // A verified token is UTF-8 text without NUL (Postgres text cannot hold one).
    let token = CString::new(token).map_err(|_| error_report(TokenError::InvalidToken.into()))?;
    let action = match scope {
        Scope::Transaction => pg_sys::GucAction::GUC_ACTION_LOCAL,
        Scope::Session => pg_sys::GucAction::GUC_ACTION_SET,
    };
    set_carrier(&token, action);
    let user_id = identity.user_id.clone();
    stats::authenticated(EntryPoint::Authenticate, &user_id, None);
    STATE.with_borrow_mut(|state| state.install(EPOCH.get(), generation, identity));
    Ok(user_id)
}

/// `electric_auth.logout(revoke)`: empties the carrier like `SET` (so both scopes end, and a
/// rolled-back transaction restores what was in force). Under Citus, also like `SET LOCAL`, so
/// the workers of the transaction drop it too. With `revoke`, the token of the identity in force
/// is revoked first (committed with the transaction, see `revocation`).
pub fn logout(revoke: bool) -> Result<(), ErrorReport> {
    refuse_if_connection_identity("electric_auth.logout()")?;
    if revoke {
        if let Some(token) = carried_token()? {
            super::revoke::revoke_token(&token)?;
        }
    }
    if citus::loaded() {
        set_carrier(c"", pg_sys::GucAction::GUC_ACTION_LOCAL);
    }
    set_carrier(c"", pg_sys::GucAction::GUC_ACTION_SET);
    Ok(())
}

/// What a held identity was verified under: it moves when a setting or the verifier's keys
/// change (a fetched key retired, or gone stale, must end the identities it made, as removing
/// it from jwt_key does). Both counters only grow, so their sum moves whenever either does.
fn identity_generation() -> u64 {
    // A revocation too: the identity's token may be the one revoked (its next read sees it).
    settings::generation() + verifier_builds() + crate::revocation::generation()
}

/// The token of the identity in force (opened, under Citus), if any.
fn carried_token() -> Result<Option<String>, ErrorReport> {
    let Some(token) = IDENTITY_TOKEN.get() else {
        return Ok(None);
    };
    if carries_nothing(token.to_bytes()) {
        return Ok(None);
    }
    let token = token
        .to_str()
        .map_err(|_| error_report(TokenError::InvalidToken.into()))?;
    let token = citus::carried_token(token).map_err(error_report)?;
    Ok(Some(token.into_owned()))
}

/// Runs `answer` on the identity in force, with its serial. Its token is verified at statement
/// time, but its expiry is checked against the clock now: a long statement, or a procedure
/// that COMMITs and goes on, must not act past `exp` (+ drift).
fn with_current<R>(answer: impl FnOnce(&Identity, u64) -> R) -> Result<Option<R>, ErrorReport> {
    check_session()?;
    let (epoch, generation, now) = (EPOCH.get(), identity_generation(), clock_now());
    STATE.with_borrow_mut(|state| {
        let current = state
            .current(epoch, generation, now, resolve_carrier)
            .map_err(error_report)?;
        Ok(current.map(|(identity, serial)| answer(identity, serial)))
    })
}

/// The carrier's token, verified under the settings in force now (`None`: the carrier is empty).
fn resolve_carrier() -> Result<Option<Identity>, Error> {
    let Some(token) = IDENTITY_TOKEN.get() else {
        return Ok(None);
    };
    if carries_nothing(token.to_bytes()) {
        return Ok(None);
    }
    let token = token.to_str().map_err(|_| TokenError::InvalidToken)?;
    let token = stats::refusal_counted(EntryPoint::Identity, citus::carried_token(token))?;
    verify_counted(EntryPoint::Identity, &token, statement_time(), identity_of).map(Some)
}

/// The identity of a token `verifier` has just verified.
fn identity_of(verified: &VerifiedToken, verifier: &Verifier) -> Identity {
    Identity::new(verified, verifier.config().clock_drift())
}

/// `electric_auth.current_user_id()`.
pub fn current_user_id() -> Result<Option<String>, ErrorReport> {
    with_current(|identity, _| identity.user_id.clone())
}

/// `electric_auth.current_claims()`.
pub fn current_claims() -> Result<Option<CurrentClaims>, ErrorReport> {
    with_current(|identity, serial| {
        CLAIMS_JSONB.with_borrow_mut(|cached| {
            if cached.as_ref().is_none_or(|(s, _)| *s != serial) {
                *cached = Some((serial, jsonb_bytes(&identity.payload)));
            }
            // SAFETY: copies bytes this module holds into a palloc'd chunk in the current
            // memory context, which Postgres then owns as the function's result.
            let bytes = &cached.as_ref().expect("filled above").1;
            CurrentClaims(unsafe { palloc_copy(bytes) })
        })
    })
}

/// `json` (the verified payload's text) as the bytes of a jsonb value, built by `jsonb_in`.
fn jsonb_bytes(json: &str) -> Vec<u8> {
    let json = CString::new(json).expect("a verified payload holds no NUL");
    // SAFETY: jsonb_in reads one NUL-terminated string and returns a palloc'd, untoasted
    // varlena whose first four bytes give its total size.
    unsafe {
        let datum = pgrx::fcinfo::direct_function_call_as_datum(
            pg_sys::jsonb_in,
            &[Some(json.as_ptr().into())],
        )
        .expect("jsonb_in returns a value");
        let varlena = datum.cast_mut_ptr::<pg_sys::varlena>();
        let size = pgrx::varsize_any(varlena);
        std::slice::from_raw_parts(varlena.cast::<u8>(), size).to_vec()
    }
}

/// # Safety
/// In a backend, with a current memory context.
unsafe fn palloc_copy(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: as the caller guarantees; the chunk is exactly `bytes.len()` long.
    unsafe {
        let chunk = pg_sys::palloc(bytes.len()).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), chunk, bytes.len());
        pg_sys::Datum::from(chunk)
    }
}

/// `current_claims()`'s result: a jsonb datum copied from the identity's cached bytes.
pub struct CurrentClaims(pg_sys::Datum);

impl IntoDatum for CurrentClaims {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: returns a palloc'd jsonb datum, as pgrx does for its own JsonB.
unsafe impl BoxRet for CurrentClaims {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        // SAFETY: a valid jsonb datum in the current memory context.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

pgrx::impl_sql_translatable!(CurrentClaims, "jsonb");
