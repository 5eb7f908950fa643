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
//! in secure mode only, at the current time, without touching a catalog. The user id becomes
//! the connection's `authn_id` (`SYSTEM_USER` = `oauth:<user id>`) and its session identity
//! (see `session::pin_connection_identity`). Which roles it may use: Postgres's ident map
//! (`map=` in pg_hba.conf) decides, or — with `delegate_ident_mapping=1` — the token must name
//! the role in the claim `electric_auth.role_claim` chooses. A refusal gives the client
//! Postgres's standard FATAL; the server log gets the spec's reason, never the token or key.

use crate::session;
use crate::verify::{unix_seconds, verify_at};
use electric_auth_core::identity::role_authorized;
use electric_auth_core::TokenError;
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

/// Where `Port.hba`, `HbaLine.auth_method` and `HbaLine.oauth_skip_usermap` lie in PG 18 (bytes;
/// before any build-dependent member of either struct). Read only to learn whether pg_hba.conf
/// delegates the ident mapping; `auth_method` must read `uaOAuth` or the connection is refused.
const PORT_HBA: usize = 424;
const HBALINE_AUTH_METHOD: usize = 328;
const HBALINE_OAUTH_SKIP_USERMAP: usize = 560;
/// `uaOAuth` in `UserAuth` (libpq/hba.h).
const UA_OAUTH: c_int = 15;

/// The layout these declarations and offsets assume, as `tests/oauth/test_oauth.py` finds it
/// in the PG 18 headers (its C program prints the same names).
pub const LAYOUT: [(&str, usize); 14] = [
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
    ("offsetof(Port, hba)", PORT_HBA),
    ("offsetof(HbaLine, auth_method)", HBALINE_AUTH_METHOD),
    (
        "offsetof(HbaLine, oauth_skip_usermap)",
        HBALINE_OAUTH_SKIP_USERMAP,
    ),
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
    startup_cb: None,
    shutdown_cb: None,
    validate_cb: Some(validate),
};

/// The validator module's entry point, which Postgres looks up by name.
#[no_mangle]
pub extern "C-unwind" fn _PG_oauth_validator_module_init() -> *const OAuthValidatorCallbacks {
    &CALLBACKS
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
    let role_name = role.to_string_lossy();
    let (user_id, refusal) = decide(token, &role_name);
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
        Some(reason) => ereport!(
            PgLogLevel::LOG,
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!(
                "electric_auth refused an OAuth bearer token for role \"{}\": {reason}",
                role_name.escape_default()
            )
        ),
    }
    true
}

/// The user id, if the token verified, and the reason to refuse the connection, if any.
fn decide(token: &CStr, role: &str) -> (Option<String>, Option<String>) {
    if crate::gucs::MODE.get() == crate::gucs::AuthMode::Insecure {
        return (
            None,
            Some(
                "electric_auth.mode is insecure, and unsigned tokens never authenticate a \
                 connection; set electric_auth.mode = secure"
                    .to_owned(),
            ),
        );
    }
    let Ok(token) = token.to_str() else {
        return (None, Some(TokenError::InvalidToken.to_string()));
    };
    // SAFETY: reads the current time; callable whenever a backend runs.
    let now = unix_seconds(unsafe { pg_sys::GetCurrentTimestamp() });
    let role_claim = crate::gucs::text_setting(&session::ROLE_CLAIM);
    let verified = verify_at(token, now, |verified, _| {
        let delegated = delegated_ident_mapping();
        let role_check = match delegated {
            Some(false) => Ok(()), // the ident map decides
            Some(true) => role_authorized(&verified.claims, role_claim.as_deref(), role),
            None => Err("electric_auth cannot read this connection's pg_hba.conf line".to_owned()),
        };
        (verified.user_id.clone(), role_check)
    });
    match verified {
        Ok((user_id, Ok(()))) => (Some(user_id), None),
        Ok((user_id, Err(reason))) => (Some(user_id), Some(reason)),
        Err(error) => (None, Some(error.to_string())),
    }
}

/// Whether this connection's pg_hba.conf line has `delegate_ident_mapping=1`; `None` when the
/// line cannot be read as PG 18's `HbaLine` of method `oauth` (then the connection is refused).
fn delegated_ident_mapping() -> Option<bool> {
    // SAFETY: MyProcPort is this backend's connection, set before authentication; the offsets
    // are PG 18's (see LAYOUT), and the method check guards against another layout.
    unsafe {
        let port = pg_sys::MyProcPort.cast::<u8>();
        if port.is_null() {
            return None;
        }
        let hba = port.add(PORT_HBA).cast::<*const u8>().read_unaligned();
        if hba.is_null()
            || hba
                .add(HBALINE_AUTH_METHOD)
                .cast::<c_int>()
                .read_unaligned()
                != UA_OAUTH
        {
            return None;
        }
        Some(
            hba.add(HBALINE_OAUTH_SKIP_USERMAP)
                .cast::<bool>()
                .read_unaligned(),
        )
    }
}
