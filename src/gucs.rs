//! Every `electric_auth.*` setting (spec §1). All are `PGC_SUSET`: only a superuser, or a role
//! granted `SET` on the parameter, can change them, by any route. All are `GUC_NO_RESET_ALL`:
//! `RESET ALL` and `DISCARD ALL`, which Postgres runs without a privilege check, leave a
//! superuser's session-level values in place (an unprivileged role could otherwise drop an
//! `aud` check a SECURITY DEFINER function had set).
//!
//! Every setting has an assign hook that bumps [`settings_generation`], so the per-backend
//! verifier cache (see `verifier_cache.rs`) knows when to look again — after `SET`, `SET LOCAL`,
//! `RESET`, a rolled-back `SET`, or a configuration reload alike.

use electric_auth_core::{Algorithm, Mode, Settings, ALGORITHM_NAMES};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::{pg_guard, pg_sys, PgSqlErrorCode, PostgresGucEnum};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};

/// `electric_auth.mode`, default `secure`. Context: superuser.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuthMode {
    #[name = c"secure"]
    Secure,
    #[name = c"insecure"]
    Insecure,
}

/// `electric_auth.mode`: `secure` (default) or `insecure`. Context: superuser.
pub static MODE: GucSetting<AuthMode> = GucSetting::<AuthMode>::new(AuthMode::Secure);

/// `electric_auth.jwt_alg`: one of the nine JWS algorithms, case-sensitive; default empty.
/// Checked at `SET` time. Context: superuser.
pub static JWT_ALG: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `electric_auth.jwt_key`: the HS secret, one or more PEM keys, a JWK or a JWKS (see the core's
/// `key_set.rs`); default empty. Context: superuser,
/// and readable only by superusers (`GUC_SUPERUSER_ONLY`). Refused where other roles could read
/// it: `ALTER ROLE/DATABASE … SET` and a function's `SET` clause (see [`check_jwt_key`]).
pub static JWT_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub const JWT_KEY_NAME: &CStr = c"electric_auth.jwt_key";

/// `electric_auth.jwt_key_is_base64`: the HS secret is standard base64; default off.
/// Context: superuser.
pub static JWT_KEY_IS_BASE64: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `electric_auth.jwt_namespace`: the claim holding `sub`/`user_id`; default empty (top level).
/// Context: superuser.
pub static JWT_NAMESPACE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `electric_auth.jwt_iss`: the required issuer; default empty (not checked). Context: superuser.
pub static JWT_ISS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `electric_auth.jwt_aud`: the required audience; default empty (not checked). Context: superuser.
pub static JWT_AUD: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `electric_auth.clock_drift`: seconds of leeway for `iat`, `nbf`, `exp`; 0..3600, default 2.
/// Context: superuser.
pub static CLOCK_DRIFT: GucSetting<i32> = GucSetting::<i32>::new(2);

/// Flags every setting carries (see the module notes).
const FLAGS: GucFlags = GucFlags::NO_RESET_ALL;

static SETTINGS_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Changes whenever any `electric_auth.*` setting is assigned in this backend.
pub fn settings_generation() -> u64 {
    SETTINGS_GENERATION.load(Ordering::Relaxed)
}

fn bump_generation() {
    SETTINGS_GENERATION.fetch_add(1, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn string_assigned(_newval: *const c_char, _extra: *mut c_void) {
    bump_generation();
}

#[pg_guard]
unsafe extern "C-unwind" fn bool_assigned(_newval: bool, _extra: *mut c_void) {
    bump_generation();
}

#[pg_guard]
unsafe extern "C-unwind" fn int_assigned(_newval: c_int, _extra: *mut c_void) {
    bump_generation();
}

/// Whether a value from `source` was set with `ALTER DATABASE/ROLE ... SET`: Postgres keeps those
/// values in `pg_db_role_setting`, which every role can read.
pub fn is_role_or_database_setting(source: pg_sys::GucSource::Type) -> bool {
    use pg_sys::GucSource::*;
    matches!(
        source,
        PGC_S_GLOBAL | PGC_S_DATABASE | PGC_S_USER | PGC_S_DATABASE_USER
    )
}

/// A string check hook's candidate value; no value (NULL) reads as empty.
///
/// # Safety
/// `newval` must be the pointer Postgres passes to a string check hook, read during the hook.
pub unsafe fn check_hook_candidate<'a>(newval: *mut *mut c_char) -> &'a CStr {
    // SAFETY: Postgres passes a valid pointer to the candidate value, a C string or NULL.
    let candidate = unsafe { *newval };
    if candidate.is_null() {
        c""
    } else {
        // SAFETY: a non-NULL candidate is a NUL-terminated string owned by the GUC machinery.
        unsafe { CStr::from_ptr(candidate) }
    }
}

/// Makes a check hook's refusal say `message` (instead of Postgres's "invalid value for
/// parameter", which would quote the value), with SQLSTATE `code`, a detail and a hint.
///
/// # Safety
/// Only from a check hook about to return false; Postgres reads these right after it.
pub unsafe fn refuse_in_check_hook(code: PgSqlErrorCode, message: &str, detail: &str, hint: &str) {
    // SAFETY: the caller is a check hook; the strings are palloc'd copies in the current
    // memory context, as Postgres expects of GUC_check_err*_string.
    unsafe {
        pg_sys::GUC_check_errcode(code as c_int);
        for (text, slot) in [
            (message, &raw mut pg_sys::GUC_check_errmsg_string),
            (detail, &raw mut pg_sys::GUC_check_errdetail_string),
            (hint, &raw mut pg_sys::GUC_check_errhint_string),
        ] {
            if let Ok(text) = CString::new(text) {
                *slot = pg_sys::pstrdup(text.as_ptr());
            }
        }
    }
}

/// Refuses a secret setting's non-empty value on the routes that would store it where every
/// role can read it, saying where it belongs (`hint`); true when it refused. Postgres validates
/// `ALTER ROLE/DATABASE … SET` and a function's `SET` clause with source `PGC_S_TEST` (the value
/// is then stored in `pg_db_role_setting` / `pg_proc.proconfig`), and applies stored
/// role/database values at session start with their own sources; all are refused.
///
/// # Safety
/// Only from a string check hook, with its `newval` and `source`; on true it must return false.
pub unsafe fn refuse_secret_where_readable(
    name: &CStr,
    newval: *mut *mut c_char,
    source: pg_sys::GucSource::Type,
    hint: &str,
) -> bool {
    let readable_by_every_role =
        source == pg_sys::GucSource::PGC_S_TEST || is_role_or_database_setting(source);
    // SAFETY: the pointer Postgres passed to the calling string check hook.
    let value = unsafe { check_hook_candidate(newval) };
    if !readable_by_every_role || value.to_bytes().trim_ascii().is_empty() {
        return false;
    }
    // SAFETY: the caller is a check hook about to return false.
    unsafe {
        refuse_in_check_hook(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            &format!(
                "{} cannot be set with ALTER ROLE, ALTER DATABASE or a function's SET clause",
                name.to_string_lossy()
            ),
            "Such values are stored in pg_db_role_setting or pg_proc.proconfig, which every role can read.",
            hint,
        );
    }
    true
}

/// Refuses an `electric_auth.jwt_key` where every role could read it (see
/// [`refuse_secret_where_readable`]). An empty value (no key) is allowed.
#[pg_guard]
unsafe extern "C-unwind" fn check_jwt_key(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: this is a string check hook, passing its own arguments.
    !unsafe {
        refuse_secret_where_readable(
            JWT_KEY_NAME,
            newval,
            source,
            "Set the key in postgresql.conf or with ALTER SYSTEM (files only the server's OS user can read).",
        )
    }
}

/// Refuses an `electric_auth.jwt_alg` that is set but not one of the nine names.
#[pg_guard]
unsafe extern "C-unwind" fn check_jwt_alg(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passed to this string check hook.
    let value = unsafe { check_hook_candidate(newval) }.to_string_lossy();
    if value.trim().is_empty() || Algorithm::from_name(&value).is_some() {
        return true;
    }
    let detail = format!("Must be one of {ALGORITHM_NAMES:?}.");
    if let Ok(detail) = CString::new(detail) {
        // SAFETY: GUC_check_errdetail_string is read by the caller right after this hook
        // returns; the copy is palloc'd in the current memory context, as Postgres expects.
        unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr()) };
    }
    false
}

/// A superuser text setting with the shared flags and the generation-bumping assign hook.
fn define_string(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
) {
    // SAFETY: the assign hook only bumps an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            name,
            short,
            long,
            setting,
            GucContext::Suset,
            FLAGS,
            None,
            Some(string_assigned),
            None,
        )
    }
}

/// Registers every setting and reserves the `electric_auth.` prefix, so a misspelt setting is
/// an error rather than a silent placeholder. Called once from `_PG_init`, which first asks
/// `tamper` for the placeholders these definitions will replace.
pub fn init() {
    // SAFETY: the assign hook only bumps an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_enum_guc_with_hooks(
            c"electric_auth.mode",
            c"How Electric client tokens are verified: secure (signed) or insecure (development).",
            c"Replaces Electric's AUTH_MODE.",
            &MODE,
            GucContext::Suset,
            FLAGS,
            None,
            Some(int_assigned),
            None,
        );
    }
    // SAFETY: check_jwt_alg is guarded and only reads its argument; the assign hook bumps a counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"electric_auth.jwt_alg",
            c"Signing algorithm tokens must use in secure mode (HS/RS/ES/PS 256/384/512, EdDSA).",
            c"Replaces Electric's AUTH_JWT_ALG.",
            &JWT_ALG,
            GucContext::Suset,
            FLAGS,
            Some(check_jwt_alg),
            Some(string_assigned),
            None,
        );
    }
    // SAFETY: check_jwt_key is guarded and only reads its arguments; the assign hook bumps a
    // counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            JWT_KEY_NAME,
            c"Key(s) that verify token signatures: an HS secret, PEM keys, a JWK or a JWKS.",
            c"Replaces Electric's AUTH_JWT_KEY. Visible to superusers only; refused in ALTER ROLE/DATABASE ... SET and function SET clauses.",
            &JWT_KEY,
            GucContext::Suset,
            FLAGS | GucFlags::SUPERUSER_ONLY,
            Some(check_jwt_key),
            Some(string_assigned),
            None,
        );
    }
    // SAFETY: the assign hook only bumps an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_bool_guc_with_hooks(
            c"electric_auth.jwt_key_is_base64",
            c"Whether electric_auth.jwt_key is base64-encoded (HS algorithms only).",
            c"Replaces Electric's AUTH_JWT_KEY_IS_BASE64_ENCODED.",
            &JWT_KEY_IS_BASE64,
            GucContext::Suset,
            FLAGS,
            None,
            Some(bool_assigned),
            None,
        );
    }
    define_string(
        c"electric_auth.jwt_namespace",
        c"Top-level claim that holds sub/user_id; empty means the top level.",
        c"Replaces Electric's AUTH_JWT_NAMESPACE.",
        &JWT_NAMESPACE,
    );
    define_string(
        c"electric_auth.jwt_iss",
        c"Issuer that the iss claim must equal; empty means iss is not checked.",
        c"Replaces Electric's AUTH_JWT_ISS.",
        &JWT_ISS,
    );
    define_string(
        c"electric_auth.jwt_aud",
        c"Audience that the aud claim must contain; empty means aud is not checked.",
        c"Replaces Electric's AUTH_JWT_AUD.",
        &JWT_AUD,
    );
    // SAFETY: the assign hook only bumps an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_int_guc_with_hooks(
            c"electric_auth.clock_drift",
            c"Seconds of leeway when checking the iat, nbf and exp claims.",
            c"Electric fixed this at 2 seconds.",
            &CLOCK_DRIFT,
            0,
            3600,
            GucContext::Suset,
            FLAGS | GucFlags::UNIT_S,
            None,
            Some(int_assigned),
            None,
        );
    }
    crate::tamper::define_marker();
    crate::session::define_carrier();
    crate::citus::define_settings();
    // SAFETY: a static NUL-terminated string; Postgres keeps its own copy.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"electric_auth".as_ptr()) };
}

/// A text setting's current value (lossily decoded), `None` when unset.
pub fn text_setting(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|value| value.to_string_lossy().into_owned())
}

/// The current values of all settings, as the core expects them.
pub fn current_settings() -> Settings {
    Settings {
        mode: match MODE.get() {
            AuthMode::Secure => Mode::Secure,
            AuthMode::Insecure => Mode::Insecure,
        },
        jwt_alg: text_setting(&JWT_ALG),
        jwt_key: text_setting(&JWT_KEY),
        jwt_key_is_base64: JWT_KEY_IS_BASE64.get(),
        jwt_namespace: text_setting(&JWT_NAMESPACE),
        jwt_iss: text_setting(&JWT_ISS),
        jwt_aud: text_setting(&JWT_AUD),
        clock_drift: i64::from(CLOCK_DRIFT.get()),
    }
}
