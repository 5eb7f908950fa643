//! Every `electric_auth.*` setting (spec §1). All are `PGC_SUSET`: only a superuser, or a role
//! granted `SET` on the parameter, can change them, by any route.
//!
//! Every setting has an assign hook that bumps [`settings_generation`], so the per-backend
//! verifier cache (see `verifier_cache.rs`) knows when to look again — after `SET`, `SET LOCAL`,
//! `RESET`, a rolled-back `SET`, or a configuration reload alike.

use electric_auth_core::{Algorithm, Mode, Settings, ALGORITHM_NAMES};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::{pg_guard, pg_sys, PostgresGucEnum};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
const MODE_NAME: &CStr = c"electric_auth.mode";

/// `electric_auth.jwt_alg`: one of the nine JWS algorithms, case-sensitive; default empty.
/// Checked at `SET` time. Context: superuser.
pub static JWT_ALG: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const JWT_ALG_NAME: &CStr = c"electric_auth.jwt_alg";

/// `electric_auth.jwt_key`: the HS secret or the RS/ES PEM; default empty. Context: superuser,
/// and readable only by superusers (`GUC_SUPERUSER_ONLY`).
pub static JWT_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const JWT_KEY_NAME: &CStr = c"electric_auth.jwt_key";

/// `electric_auth.jwt_key_is_base64`: the HS secret is standard base64; default off.
/// Context: superuser.
pub static JWT_KEY_IS_BASE64: GucSetting<bool> = GucSetting::<bool>::new(false);
const JWT_KEY_IS_BASE64_NAME: &CStr = c"electric_auth.jwt_key_is_base64";

/// `electric_auth.jwt_namespace`: the claim holding `sub`/`user_id`; default empty (top level).
/// Context: superuser.
pub static JWT_NAMESPACE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const JWT_NAMESPACE_NAME: &CStr = c"electric_auth.jwt_namespace";

/// `electric_auth.jwt_iss`: the required issuer; default empty (not checked). Context: superuser.
pub static JWT_ISS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const JWT_ISS_NAME: &CStr = c"electric_auth.jwt_iss";

/// `electric_auth.jwt_aud`: the required audience; default empty (not checked). Context: superuser.
pub static JWT_AUD: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const JWT_AUD_NAME: &CStr = c"electric_auth.jwt_aud";

/// `electric_auth.clock_drift`: seconds of leeway for `iat`, `nbf`, `exp`; 0..3600, default 2.
/// Context: superuser.
pub static CLOCK_DRIFT: GucSetting<i32> = GucSetting::<i32>::new(2);
const CLOCK_DRIFT_NAME: &CStr = c"electric_auth.clock_drift";

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

/// The `GucSource` of the `electric_auth.jwt_key` value in force, recorded by its assign hook.
static JWT_KEY_SOURCE: AtomicU32 = AtomicU32::new(pg_sys::GucSource::PGC_S_DEFAULT);

/// Whether a value from `source` was set with `ALTER DATABASE/ROLE ... SET`: Postgres keeps those
/// values in `pg_db_role_setting`, which every role can read.
fn is_role_or_database_setting(source: pg_sys::GucSource::Type) -> bool {
    use pg_sys::GucSource::*;
    matches!(
        source,
        PGC_S_GLOBAL | PGC_S_DATABASE | PGC_S_USER | PGC_S_DATABASE_USER
    )
}

/// Whether the key in force came from `ALTER DATABASE/ROLE ... SET`.
pub fn jwt_key_from_role_or_database_setting() -> bool {
    is_role_or_database_setting(JWT_KEY_SOURCE.load(Ordering::Relaxed))
}

/// Remembers where a candidate `electric_auth.jwt_key` comes from, in the value's `extra`, so the
/// assign hook can record the source of the value actually installed (a `SET` that is rolled
/// back, or a reset, installs an older value with its own `extra`).
#[pg_guard]
unsafe extern "C-unwind" fn check_jwt_key(
    _newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: called from this check hook; NULL is checked before the write.
    let slot = unsafe { guc_extra_alloc(std::mem::size_of::<pg_sys::GucSource::Type>()) }
        .cast::<pg_sys::GucSource::Type>();
    if slot.is_null() {
        return false;
    }
    // SAFETY: `slot` is a fresh allocation of the right size; `extra` is Postgres's out-pointer.
    unsafe {
        slot.write(source);
        *extra = slot.cast();
    }
    true
}

/// Memory for a setting's `extra`, from the allocator Postgres will release it with; NULL when
/// out of memory.
///
/// # Safety
/// Only from a check hook, whose `extra` Postgres then owns.
unsafe fn guc_extra_alloc(size: usize) -> *mut c_void {
    // Postgres 15 releases `extra` with free(); its guc_malloc() is static, so use malloc().
    #[cfg(feature = "pg15")]
    // SAFETY: a plain allocation; the caller checks for NULL.
    let memory = unsafe { libc::malloc(size) };
    // Postgres 16 keeps setting values in its GUC memory context and releases `extra` with
    // pfree() (guc_free); guc_malloc() is exported for hooks and returns NULL at LOG level.
    #[cfg(not(feature = "pg15"))]
    // SAFETY: as above.
    let memory = unsafe { pg_sys::guc_malloc(pg_sys::LOG as c_int, size) };
    memory
}

#[pg_guard]
unsafe extern "C-unwind" fn jwt_key_assigned(_newval: *const c_char, extra: *mut c_void) {
    if !extra.is_null() {
        // SAFETY: every `extra` of this setting was made by check_jwt_key.
        let source = unsafe { *extra.cast::<pg_sys::GucSource::Type>() };
        JWT_KEY_SOURCE.store(source, Ordering::Relaxed);
    }
    bump_generation();
}

/// Refuses an `electric_auth.jwt_alg` that is set but not one of the nine names.
#[pg_guard]
unsafe extern "C-unwind" fn check_jwt_alg(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres passes a valid pointer to the candidate value, a C string or NULL.
    let candidate = unsafe { *newval };
    if candidate.is_null() {
        return true;
    }
    // SAFETY: a non-NULL candidate is a NUL-terminated string owned by the GUC machinery.
    let value = unsafe { CStr::from_ptr(candidate) }.to_string_lossy();
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

fn define_string(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    flags: GucFlags,
) {
    // SAFETY: the hooks only bump an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            name,
            short,
            long,
            setting,
            GucContext::Suset,
            flags,
            None,
            Some(string_assigned),
            None,
        )
    }
}

thread_local! {
    /// A setting whose pre-load value Postgres refused when the library was loaded.
    static REFUSED_SETTING: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// The name of an `electric_auth.*` setting that was set before this library was loaded in the
/// session, at a level that replaces the configured default (connection options, `PGOPTIONS`,
/// role or database settings), to a value Postgres then refused — typically because the role
/// that set it has no privilege to.
///
/// Postgres refuses such a value when the library defines the setting (with a WARNING), but the
/// value it displaced — from postgresql.conf, `ALTER SYSTEM` or a superuser's `ALTER ... SET` —
/// is gone for the session: the setting falls back to its built-in default. That could drop an
/// `iss`/`aud` check, so the SQL functions refuse to verify in such a session instead.
pub fn refused_setting() -> Option<&'static str> {
    REFUSED_SETTING.get()
}

/// Each `electric_auth.*` setting known to Postgres now, with the source of its reset value.
fn reset_sources() -> Vec<(String, pg_sys::GucSource::Type)> {
    let mut found = Vec::new();
    // SAFETY: Postgres's own GUC table, read (not changed) in this backend's only thread; the
    // array and its entries stay valid until the next setting is defined.
    unsafe {
        let (variables, count) = guc_variables();
        for i in 0..count {
            let variable = *variables.add(i);
            if variable.is_null() || (*variable).name.is_null() {
                continue;
            }
            let name = CStr::from_ptr((*variable).name).to_string_lossy();
            if name.starts_with("electric_auth.") {
                found.push((name.into_owned(), (*variable).reset_source));
            }
        }
    }
    found
}

/// Postgres's table of settings: a pointer to its entries and how many there are.
///
/// # Safety
/// Only in a backend's main thread; valid until the next setting is defined.
unsafe fn guc_variables() -> (*mut *mut pg_sys::config_generic, usize) {
    // Postgres 15 keeps a sorted array and exposes its length through GetNumConfigOptions().
    #[cfg(feature = "pg15")]
    // SAFETY: plain reads of the GUC table, as the caller requires.
    let (variables, count) =
        unsafe { (pg_sys::get_guc_variables(), pg_sys::GetNumConfigOptions()) };
    // Postgres 16 moved settings into a hash table; get_guc_variables(&count) returns a palloc'd
    // snapshot array of it, and GetNumConfigOptions() is gone.
    #[cfg(not(feature = "pg15"))]
    // SAFETY: as above; `count` is written by Postgres before it is read.
    let (variables, count) = unsafe {
        let mut count: c_int = 0;
        (pg_sys::get_guc_variables(&mut count), count)
    };
    (variables, usize::try_from(count).unwrap_or(0))
}

/// Registers every setting and reserves the `electric_auth.` prefix, so a misspelt setting is
/// an error rather than a silent placeholder. Called once from `_PG_init`.
pub fn init() {
    // In a backend (the library loaded on first use, or by session_preload_libraries), the
    // placeholders made before it loaded, whose values Postgres re-applies (and checks for
    // privilege) as each setting is defined below. The postmaster has no per-session values.
    // SAFETY: a plain read of a backend global set before any library is loaded.
    let in_backend = unsafe { pg_sys::IsUnderPostmaster };
    let placeholders = if in_backend {
        reset_sources()
    } else {
        Vec::new()
    };
    // SAFETY: the assign hooks only bump an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_enum_guc_with_hooks(
            MODE_NAME,
            c"How Electric client tokens are verified: secure (signed) or insecure (development).",
            c"Replaces Electric's AUTH_MODE.",
            &MODE,
            GucContext::Suset,
            GucFlags::default(),
            None,
            Some(int_assigned),
            None,
        );
    }
    // SAFETY: check_jwt_alg is guarded and only reads its argument; the assign hook bumps a counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            JWT_ALG_NAME,
            c"Signing algorithm tokens must use in secure mode (HS/RS/ES 256/384/512).",
            c"Replaces Electric's AUTH_JWT_ALG.",
            &JWT_ALG,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_jwt_alg),
            Some(string_assigned),
            None,
        );
    }
    // SAFETY: the hooks only allocate and read a source integer and bump a counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            JWT_KEY_NAME,
            c"Key that verifies token signatures: an HS secret or an RS/ES public key in PEM.",
            c"Replaces Electric's AUTH_JWT_KEY. Visible to superusers only.",
            &JWT_KEY,
            GucContext::Suset,
            GucFlags::SUPERUSER_ONLY,
            Some(check_jwt_key),
            Some(jwt_key_assigned),
            None,
        );
    }
    // SAFETY: the assign hook only bumps an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_bool_guc_with_hooks(
            JWT_KEY_IS_BASE64_NAME,
            c"Whether electric_auth.jwt_key is base64-encoded (HS algorithms only).",
            c"Replaces Electric's AUTH_JWT_KEY_IS_BASE64_ENCODED.",
            &JWT_KEY_IS_BASE64,
            GucContext::Suset,
            GucFlags::default(),
            None,
            Some(bool_assigned),
            None,
        );
    }
    define_string(
        JWT_NAMESPACE_NAME,
        c"Top-level claim that holds sub/user_id; empty means the top level.",
        c"Replaces Electric's AUTH_JWT_NAMESPACE.",
        &JWT_NAMESPACE,
        GucFlags::default(),
    );
    define_string(
        JWT_ISS_NAME,
        c"Issuer that the iss claim must equal; empty means iss is not checked.",
        c"Replaces Electric's AUTH_JWT_ISS.",
        &JWT_ISS,
        GucFlags::default(),
    );
    define_string(
        JWT_AUD_NAME,
        c"Audience that the aud claim must contain; empty means aud is not checked.",
        c"Replaces Electric's AUTH_JWT_AUD.",
        &JWT_AUD,
        GucFlags::default(),
    );
    // SAFETY: the assign hook only bumps an atomic counter and cannot panic.
    unsafe {
        GucRegistry::define_int_guc_with_hooks(
            CLOCK_DRIFT_NAME,
            c"Seconds of leeway when checking the iat, nbf and exp claims.",
            c"Electric fixed this at 2 seconds.",
            &CLOCK_DRIFT,
            0,
            3600,
            GucContext::Suset,
            GucFlags::UNIT_S,
            None,
            Some(int_assigned),
            None,
        );
    }
    // SAFETY: a static NUL-terminated string; Postgres keeps its own copy.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"electric_auth".as_ptr()) };

    // A placeholder's reset value from a session-level source that did not survive the
    // definition was refused. (Values from files and the command line are the superuser's; a
    // bad one there is reported by Postgres and leaves the setting at its default.)
    if placeholders.is_empty() {
        return;
    }
    let defined = reset_sources();
    for (name, source) in placeholders {
        let now = defined.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
        let per_session =
            source == pg_sys::GucSource::PGC_S_CLIENT || is_role_or_database_setting(source);
        if per_session && now == Some(pg_sys::GucSource::PGC_S_DEFAULT) {
            let name: &'static str = Box::leak(name.into_boxed_str());
            REFUSED_SETTING.set(Some(name));
            break;
        }
    }
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
