//! Electric's settings (spec §1), which the verifier reads. All are `PGC_SUSET`: only a superuser, or a role
//! granted `SET` on the parameter, can change them, by any route. All are `GUC_NO_RESET_ALL`:
//! `RESET ALL` and `DISCARD ALL`, which Postgres runs without a privilege check, leave a
//! superuser's session-level values in place (an unprivileged role could otherwise drop an
//! `aud` check a SECURITY DEFINER function had set).
//!
//! Every setting has an assign hook that bumps the settings generation (`settings::generation`),
//! so the per-backend verifier (see `cache.rs`) knows when to look again.

use crate::settings::hooks::{check_hook_candidate, refuse_secret_where_readable, text_setting};
use crate::settings::{bumps_generation, names, Context, Setting, Value};
use electric_auth_core::{Algorithm, Mode, Settings, ALGORITHM_NAMES};
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::{pg_guard, pg_sys, PostgresGucEnum};
use std::ffi::{c_char, c_void, CString};

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
/// `keys/key_set.rs`); default empty. Context: superuser,
/// and readable only by superusers (`GUC_SUPERUSER_ONLY`). Refused where other roles could read
/// it: `ALTER ROLE/DATABASE … SET` and a function's `SET` clause (see [`check_jwt_key`]).
pub static JWT_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

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
            names::JWT_KEY,
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

/// Electric's settings, declared for the registry.
pub fn declared() -> [Setting; 8] {
    let text = |name, short, long, setting, flags, check| Setting {
        name,
        short,
        long,
        context: Context::Suset,
        flags,
        value: Value::Text {
            setting,
            check,
            assign: Some(bumps_generation::text),
        },
    };
    [
        Setting {
            name: names::MODE,
            short: c"How Electric client tokens are verified: secure (signed) or insecure (development).",
            long: c"Replaces Electric's AUTH_MODE.",
            context: Context::Suset,
            flags: FLAGS,
            value: Value::Enum {
                setting: &MODE,
                assign: Some(bumps_generation::int),
            },
        },
        text(
            names::JWT_ALG,
            c"Signing algorithm tokens must use in secure mode (HS/RS/ES/PS 256/384/512, EdDSA).",
            c"Replaces Electric's AUTH_JWT_ALG.",
            &JWT_ALG,
            FLAGS,
            Some(check_jwt_alg),
        ),
        text(
            names::JWT_KEY,
            c"Key(s) that verify token signatures: an HS secret, PEM keys, a JWK or a JWKS.",
            c"Replaces Electric's AUTH_JWT_KEY. Visible to superusers only; refused in ALTER ROLE/DATABASE ... SET and function SET clauses.",
            &JWT_KEY,
            FLAGS | GucFlags::SUPERUSER_ONLY,
            Some(check_jwt_key),
        ),
        Setting {
            name: names::JWT_KEY_IS_BASE64,
            short: c"Whether electric_auth.jwt_key is base64-encoded (HS algorithms only).",
            long: c"Replaces Electric's AUTH_JWT_KEY_IS_BASE64_ENCODED.",
            context: Context::Suset,
            flags: FLAGS,
            value: Value::Bool {
                setting: &JWT_KEY_IS_BASE64,
                assign: Some(bumps_generation::bool),
            },
        },
        text(
            names::JWT_NAMESPACE,
            c"Top-level claim that holds sub/user_id; empty means the top level.",
            c"Replaces Electric's AUTH_JWT_NAMESPACE.",
            &JWT_NAMESPACE,
            FLAGS,
            None,
        ),
        text(
            names::JWT_ISS,
            c"Issuer that the iss claim must equal; empty means iss is not checked.",
            c"Replaces Electric's AUTH_JWT_ISS.",
            &JWT_ISS,
            FLAGS,
            None,
        ),
        text(
            names::JWT_AUD,
            c"Audience that the aud claim must contain; empty means aud is not checked.",
            c"Replaces Electric's AUTH_JWT_AUD.",
            &JWT_AUD,
            FLAGS,
            None,
        ),
        Setting {
            name: names::CLOCK_DRIFT,
            short: c"Seconds of leeway when checking the iat, nbf and exp claims.",
            long: c"Electric fixed this at 2 seconds.",
            context: Context::Suset,
            flags: FLAGS | GucFlags::UNIT_S,
            value: Value::Int {
                setting: &CLOCK_DRIFT,
                min: 0,
                max: 3600,
                assign: Some(bumps_generation::int),
            },
        },
    ]
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
        issuers: crate::keys::settings::issuers_text(),
    }
}
