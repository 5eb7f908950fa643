//! PostgreSQL 18: electric_auth as an OAuth validator module, so the database itself
//! authenticates connecting clients by their Electric token (pg_hba.conf method `oauth`, SASL
//! OAUTHBEARER; `oauth_validator_libraries = 'electric_auth'`).
//!
//! pgrx 0.18 does not bind `libpq/oauth.h`, so its three structs are declared here exactly as
//! the header has them (`magic` is a `uint32`), with their layout pinned in [`LAYOUT`] —
//! checked against these declarations at compile time, and against the PG 18 headers by
//! `tests/oauth/test_oauth.py`, which compiles a C program with them.
//!
//! `validate_cb` verifies the token with the same verifier and settings as the SQL functions,
//! in secure mode only, at the current time. At login only the settings of postgresql.conf and
//! `ALTER SYSTEM` are in force (Postgres applies `ALTER DATABASE/ROLE … SET` after
//! authentication); the session verifies the token again under its own settings on first use
//! of the identity, and refuses (28000) if it does not verify there. The token's `iss` must be
//! the pg_hba.conf line's `issuer=` and it must grant every scope of the line's `scope=`
//! (`scope` or `scp` claim). The user id becomes the connection's `authn_id` (`SYSTEM_USER` =
//! `oauth:<user id>`) and its session identity (see `session::pin_connection_identity`).
//! Which roles it may use: Postgres's ident map (`map=` in pg_hba.conf) decides, or — with
//! `delegate_ident_mapping=1` — the token must name the role in the claim
//! `electric_auth.role_claim` chooses, and the role may not be a superuser or have
//! REPLICATION or BYPASSRLS unless `electric_auth.delegate_privileged_roles` is on. A refusal
//! gives the client Postgres's standard FATAL; the server log gets the reason, never the token
//! or key. The pg_hba.conf line's fields are read through csrc/oauth_hba.c, compiled against
//! the server's headers.

use super::carrier as session;
use crate::verify::{clock_now, verify_at};
use electric_auth_core::identity::{
    hba_issuer_accepted, hba_issuer_conflict, hba_scopes_granted, role_authorized,
    role_authorized_at,
};
use electric_auth_core::outcome::Reason;
use electric_auth_core::{Error, TokenError};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::{offset_of, size_of};

/// `ValidatorModuleState` (libpq/oauth.h).
#[repr(C)]
pub struct ValidatorModuleState {
    pub sversion: c_int,
    pub private_data: *mut c_void,
}

/// `ValidatorModuleResult` (libpq/oauth.h).
#[repr(C)]
pub struct ValidatorModuleResult {
    pub authorized: bool,
    pub authn_id: *mut c_char,
}

type StartupCb = unsafe extern "C-unwind" fn(state: *mut ValidatorModuleState);
type ShutdownCb = unsafe extern "C-unwind" fn(state: *mut ValidatorModuleState);
type ValidateCb = unsafe extern "C-unwind" fn(
    state: *const ValidatorModuleState,
    token: *const c_char,
    role: *const c_char,
    result: *mut ValidatorModuleResult,
) -> bool;

/// `OAuthValidatorCallbacks` (libpq/oauth.h).
#[repr(C)]
pub struct OAuthValidatorCallbacks {
    pub magic: u32,
    pub startup_cb: Option<StartupCb>,
    pub shutdown_cb: Option<ShutdownCb>,
    pub validate_cb: Option<ValidateCb>,
}

/// `PG_OAUTH_VALIDATOR_MAGIC` (libpq/oauth.h).
pub const PG_OAUTH_VALIDATOR_MAGIC: u32 = 0x2025_0220;

/// The layout these declarations and offsets assume, as `tests/oauth/test_oauth.py` finds it
/// in the PG 18 headers (its C program prints the same names).
pub const LAYOUT: [(&str, usize); 11] = [
    ("sizeof(ValidatorModuleState)", 16),
    ("offsetof(ValidatorModuleState, sversion)", 0),
    ("offsetof(ValidatorModuleState, private_data)", 8),
    ("sizeof(ValidatorModuleResult)", 16),
    ("offsetof(ValidatorModuleResult, authorized)", 0),
    ("offsetof(ValidatorModuleResult, authn_id)", 8),
    ("sizeof(OAuthValidatorCallbacks)", 32),
    ("offsetof(OAuthValidatorCallbacks, magic)", 0),
    ("offsetof(OAuthValidatorCallbacks, startup_cb)", 8),
    ("offsetof(OAuthValidatorCallbacks, shutdown_cb)", 16),
    ("offsetof(OAuthValidatorCallbacks, validate_cb)", 24),
];

// The Rust declarations occupy exactly what LAYOUT says.
const _: () = {
    assert!(size_of::<ValidatorModuleState>() == LAYOUT[0].1);
    assert!(offset_of!(ValidatorModuleState, sversion) == LAYOUT[1].1);
    assert!(offset_of!(ValidatorModuleState, private_data) == LAYOUT[2].1);
    assert!(size_of::<ValidatorModuleResult>() == LAYOUT[3].1);
    assert!(offset_of!(ValidatorModuleResult, authorized) == LAYOUT[4].1);
    assert!(offset_of!(ValidatorModuleResult, authn_id) == LAYOUT[5].1);
    assert!(size_of::<OAuthValidatorCallbacks>() == LAYOUT[6].1);
    assert!(offset_of!(OAuthValidatorCallbacks, magic) == LAYOUT[7].1);
    assert!(offset_of!(OAuthValidatorCallbacks, startup_cb) == LAYOUT[8].1);
    assert!(offset_of!(OAuthValidatorCallbacks, shutdown_cb) == LAYOUT[9].1);
    assert!(offset_of!(OAuthValidatorCallbacks, validate_cb) == LAYOUT[10].1);
};

static CALLBACKS: OAuthValidatorCallbacks = OAuthValidatorCallbacks {
    magic: PG_OAUTH_VALIDATOR_MAGIC,
    startup_cb: Some(startup),
    shutdown_cb: None,
    validate_cb: Some(validate),
};

// csrc/oauth_hba.c, compiled by build.rs against the PostgreSQL 18 server headers.
extern "C" {
    fn electric_auth_hba_is_oauth() -> c_int;
    fn electric_auth_hba_oauth_issuer() -> *const c_char;
    fn electric_auth_hba_oauth_scope() -> *const c_char;
    fn electric_auth_hba_oauth_delegates_ident_mapping() -> c_int;
    fn electric_auth_hba_headers_version() -> c_int;
}

/// The validator module's entry point, which Postgres looks up by name.
#[no_mangle]
pub extern "C-unwind" fn _PG_oauth_validator_module_init() -> *const OAuthValidatorCallbacks {
    &CALLBACKS
}

/// Refuses to run in a server of another major than the headers this module (and its
/// pg_hba.conf accessors) were compiled against.
#[pg_guard]
unsafe extern "C-unwind" fn startup(state: *mut ValidatorModuleState) {
    // SAFETY: Postgres passes its state, with sversion filled in.
    let server = unsafe { (*state).sversion };
    // SAFETY: returns a constant.
    let headers = unsafe { electric_auth_hba_headers_version() };
    let built_for = pg_sys::PG_VERSION_NUM as c_int / 10000;
    if server / 10000 != built_for || headers / 10000 != built_for {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "electric_auth's OAuth validator was built for PostgreSQL {built_for}, but the \
                 server is PostgreSQL {}",
                server / 10000
            ),
            "electric_auth",
        )
        .set_hint("Install the electric_auth package built for this server's major version.")
        .report(PgLogLevel::ERROR);
    }
}

/// Verifies one bearer token for `role`. Always answers (true); a refusal is `authorized =
/// false` with the reason in the server log. `authn_id` is set whenever the token itself
/// verified, so a refused role can still be traced to its user.
#[pg_guard]
unsafe extern "C-unwind" fn validate(
    _state: *const ValidatorModuleState,
    token: *const c_char,
    role: *const c_char,
    result: *mut ValidatorModuleResult,
) -> bool {
    // SAFETY: Postgres passes a valid, zeroed result and NUL-terminated token and role.
    let (result, token, role) =
        unsafe { (&mut *result, CStr::from_ptr(token), CStr::from_ptr(role)) };
    result.authorized = false;
    let (user_id, refusal) = decide(token, role);
    if let Some(user_id) = user_id {
        if let Ok(user_id) = CString::new(user_id) {
            // SAFETY: a palloc'd copy, which Postgres frees after reading it.
            result.authn_id = unsafe { pg_sys::pstrdup(user_id.as_ptr()) };
        }
    }
    match refusal {
        None => {
            session::pin_connection_identity(token);
            result.authorized = true;
        }
        Some(Refusal::Configuration { message, hint }) => warn_once_per_reload(message, hint),
        Some(Refusal::Reason(reason)) => ereport!(
            PgLogLevel::LOG,
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!(
                "electric_auth refused an OAuth bearer token for role \"{}\": {reason}",
                role.to_string_lossy().escape_default()
            )
        ),
    }
    true
}

/// Why a login is refused.
enum Refusal {
    /// The settings cannot verify any token: a WARNING with the hint, once per reload.
    Configuration {
        message: String,
        hint: Option<String>,
    },
    /// This token, for this role and pg_hba.conf line: a LOG line.
    Reason(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Reason(reason)
    }
}

/// The user id, if the token verified, and the reason to refuse the connection, if any.
fn decide(token: &CStr, role: &CStr) -> (Option<String>, Option<Refusal>) {
    if crate::verify::settings::MODE.get() == crate::verify::settings::AuthMode::Insecure {
        let reason = "electric_auth.mode is insecure, and unsigned tokens never authenticate a \
                      connection; set electric_auth.mode = secure";
        crate::stats::login(Some(Reason::Configuration), role);
        return (None, Some(reason.to_owned().into()));
    }
    let Ok(token) = token.to_str() else {
        crate::stats::login(Some(Reason::InvalidToken), role);
        return (None, Some(TokenError::InvalidToken.to_string().into()));
    };
    // SAFETY: reads this connection's pg_hba.conf line, set before authentication.
    if unsafe { electric_auth_hba_is_oauth() } == 0 {
        let reason = "electric_auth cannot read this connection's pg_hba.conf line";
        crate::stats::login(Some(Reason::Configuration), role);
        return (None, Some(reason.to_owned().into()));
    }
    let (issuer, scope) =
        match hba_line().inspect_err(|_| crate::stats::login(Some(Reason::Configuration), role)) {
            Ok(line) => line,
            Err(reason) => return (None, Some(reason.into())),
        };
    // A listed issuer whose `iss` is the line's issuer decides (electric_auth.issuers); else
    // the default issuer, whose jwt_iss must then agree with the line.
    let listed = crate::verify::cache::issuer_index(issuer);
    let jwt_iss = crate::settings::hooks::text_setting(&crate::verify::settings::JWT_ISS);
    if let (None, Some(message)) = (listed, hba_issuer_conflict(issuer, jwt_iss.as_deref())) {
        let hint = "Make them equal, or leave electric_auth.jwt_iss empty.".to_owned();
        crate::stats::login(Some(Reason::Configuration), role);
        return (
            None,
            Some(Refusal::Configuration {
                message,
                hint: Some(hint),
            }),
        );
    }
    let role_claim = crate::settings::hooks::text_setting(&session::ROLE_CLAIM);
    let mut verified_under = None;
    let verified = verify_at(token, clock_now(), |verified, verifier| {
        verified_under = verified.issuer;
        let pointer = verified
            .issuer
            .and_then(|index| verifier.config().role_claim_of(index));
        let allowed = hba_issuer_accepted(&verified.claims, issuer)
            .and_then(|()| {
                scope.map_or(Ok(()), |scope| hba_scopes_granted(&verified.claims, scope))
            })
            .and_then(|()| role_allowed(&verified.claims, pointer, role_claim.as_deref(), role));
        (verified.user_id.clone(), allowed)
    });
    let under = match &verified {
        Ok(_) => verified_under,
        Err(_) => crate::verify::cache::issuer_of(token.as_bytes()),
    };
    crate::stats::login_checked(crate::verify::cache::issuer_lane(under), &verified, role);
    match verified {
        Ok((user_id, Ok(()))) => (Some(user_id), None),
        Ok((user_id, Err(reason))) => (Some(user_id), Some(reason.into())),
        Err(error @ Error::Config(_)) => {
            let hint = error.hint();
            let message = error.to_string();
            (None, Some(Refusal::Configuration { message, hint }))
        }
        Err(error) => (None, Some(error.to_string().into())),
    }
}

/// This connection's pg_hba.conf line's `issuer=` and `scope=` (the scope `None` when absent).
fn hba_line() -> Result<(&'static str, Option<&'static str>), String> {
    // SAFETY: this connection's oauth line (checked by the caller); NUL-terminated or NULL.
    let (issuer, scope) = unsafe {
        (
            electric_auth_hba_oauth_issuer(),
            electric_auth_hba_oauth_scope(),
        )
    };
    // SAFETY: a non-NULL field is a NUL-terminated string owned by the parsed pg_hba.conf,
    // which lives as long as the backend.
    let text = |field: *const c_char| unsafe { CStr::from_ptr(field) }.to_str();
    if issuer.is_null() {
        return Err("this pg_hba.conf line has no issuer".to_owned());
    }
    let issuer = text(issuer).map_err(|_| "the pg_hba.conf issuer is not UTF-8".to_owned())?;
    if scope.is_null() {
        return Ok((issuer, None));
    }
    let scope = text(scope).map_err(|_| "the pg_hba.conf scope is not UTF-8".to_owned())?;
    Ok((issuer, Some(scope)))
}

/// Which roles the token may use: the ident map decides (`map=`), or, with
/// `delegate_ident_mapping=1`, the role claim — and a privileged role only when allowed.
fn role_allowed(
    claims: &serde_json::Map<String, serde_json::Value>,
    pointer: Option<&str>,
    role_claim: Option<&str>,
    role: &CStr,
) -> Result<(), String> {
    // SAFETY: this connection's oauth line (checked by the caller).
    if unsafe { electric_auth_hba_oauth_delegates_ident_mapping() } == 0 {
        return Ok(());
    }
    // Role names are compared as bytes: a name that is not UTF-8 equals no JSON string.
    let Ok(role_name) = role.to_str() else {
        return Err(format!(
            "the role name \"{}\" is not UTF-8, so no claim can name it",
            role.to_string_lossy().escape_default()
        ));
    };
    match pointer {
        // A listed issuer's own role claim (a JSON Pointer).
        Some(pointer) => role_authorized_at(claims, pointer, role_name)?,
        None => role_authorized(claims, role_claim, role_name)?,
    }
    if session::DELEGATE_PRIVILEGED_ROLES.get() {
        return Ok(());
    }
    match privilege_of(role) {
        None => Ok(()),
        Some(privilege) => Err(format!(
            "role \"{}\" is {privilege}, and electric_auth.delegate_privileged_roles is off",
            role_name.escape_default()
        )),
    }
}

/// Predefined roles whose powers reach past row-level security or the database itself: running
/// programs and reading or writing files as the server's OS user, reading every setting (the
/// key, for HS*), reading or writing every table, signalling other backends.
const PRIVILEGED_PREDEFINED_ROLES: [u32; 7] = [
    pg_sys::ROLE_PG_EXECUTE_SERVER_PROGRAM,
    pg_sys::ROLE_PG_READ_SERVER_FILES,
    pg_sys::ROLE_PG_WRITE_SERVER_FILES,
    pg_sys::ROLE_PG_READ_ALL_SETTINGS,
    pg_sys::ROLE_PG_READ_ALL_DATA,
    pg_sys::ROLE_PG_WRITE_ALL_DATA,
    pg_sys::ROLE_PG_SIGNAL_BACKEND,
];

/// What makes `role` privileged, when it exists: it is a superuser, has REPLICATION, BYPASSRLS
/// or CREATEROLE, or is one of [`PRIVILEGED_PREDEFINED_ROLES`] — itself or through any role it
/// is a member of (which `SET ROLE` reaches: `GRANT postgres TO app_dba` makes app_dba a
/// superuser one statement after login; `pg_monitor` includes `pg_read_all_settings`).
fn privilege_of(role: &CStr) -> Option<String> {
    // SAFETY: catalog reads by name and a scan of pg_authid (a few rows) under AccessShareLock;
    // authentication runs inside the backend's first transaction, as Postgres's own pg_hba.conf
    // group checks do. Every tuple is read while the scan holds it.
    unsafe {
        let login = pg_sys::get_role_oid(role.as_ptr(), true);
        if login == pg_sys::InvalidOid {
            return None; // Postgres refuses a role that does not exist, after this
        }
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let authid = pg_sys::table_open(pg_sys::AuthIdRelationId, lock);
        let scan = pg_sys::systable_beginscan(
            authid,
            pg_sys::InvalidOid,
            false,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        let mut found = None;
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            let other = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_authid>(tuple);
            let privilege = if other.rolsuper {
                "a superuser"
            } else if other.rolreplication {
                "a REPLICATION role"
            } else if other.rolbypassrls {
                "a BYPASSRLS role"
            } else if other.rolcreaterole {
                "a CREATEROLE role"
            } else if PRIVILEGED_PREDEFINED_ROLES.contains(&other.oid.to_u32()) {
                "a privileged predefined role"
            } else {
                continue;
            };
            if other.oid == login {
                found = Some(privilege.to_owned());
                break;
            }
            if pg_sys::is_member_of_role_nosuper(login, other.oid) {
                let name = CStr::from_ptr(other.rolname.data.as_ptr()).to_string_lossy();
                found = Some(format!(
                    "a member of {privilege} (\"{}\")",
                    name.escape_default()
                ));
                break;
            }
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(authid, lock);
        found
    }
}

/// Logs a configuration error (no key, a key of the wrong type, `jwt_iss` disagreeing with the
/// line) as a WARNING with its hint, once per configuration reload across all backends (a
/// segment of the DSM registry remembers the last one warned about), instead of once per
/// refused login as if the token were bad.
fn warn_once_per_reload(message: String, hint: Option<String>) {
    use std::hash::{Hash, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    message.hash(&mut hasher);
    // SAFETY: the time of the last configuration reload, inherited from the postmaster.
    unsafe { pg_sys::PgReloadTime }.hash(&mut hasher);
    let key = hasher.finish();
    let mut found = false;
    // SAFETY: attaches (or creates, zeroed by `zero`) a named segment of one atomic word; the
    // registry keeps it mapped for the backend's life.
    let slot = unsafe {
        pg_sys::GetNamedDSMSegment(
            c"electric_auth_oauth_configuration_warning".as_ptr(),
            size_of::<AtomicU64>(),
            Some(zero),
            &mut found,
        )
    }
    .cast::<AtomicU64>();
    // SAFETY: a segment of at least one aligned AtomicU64, shared by every backend.
    if !slot.is_null() && unsafe { &*slot }.swap(key, Ordering::Relaxed) == key {
        return;
    }
    let warning = ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("electric_auth cannot verify OAuth bearer tokens, so every token login is refused: {message}"),
        "electric_auth",
    );
    match hint {
        Some(hint) => warning.set_hint(hint),
        None => warning,
    }
    .report(PgLogLevel::WARNING);
}

#[pg_guard]
unsafe extern "C-unwind" fn zero(segment: *mut c_void) {
    // SAFETY: a new segment of the size asked for.
    unsafe { segment.cast::<u64>().write(0) };
}
