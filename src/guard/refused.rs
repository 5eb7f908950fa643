//! Settings refused when the library loaded, and how parallel workers learn of it.
//!
//! Without `shared_preload_libraries`, a role may name `electric_auth.*` settings before the
//! library is loaded in its session (connection options, `PGOPTIONS`, role or database
//! settings): Postgres keeps them as placeholders, and when the library defines the settings it
//! refuses values the role had no privilege to set (with a WARNING). But the value such a
//! placeholder displaced — from postgresql.conf, `ALTER SYSTEM` or a superuser's `ALTER … SET` —
//! is gone for the session: the setting falls back to its built-in default, which could drop an
//! `iss`/`aud` check. So the session is marked, and the SQL functions refuse to verify in it.
//!
//! The mark must reach parallel workers, which load the library afresh (with no placeholders
//! to compare) and then restore the leader's — already emptied — settings. It travels as the
//! setting `electric_auth.refused_setting`, set by the leader with source `PGC_S_OVERRIDE`
//! (so neither a rolled-back transaction nor `RESET` undoes it) and so serialized into every
//! parallel worker, whose assign hook raises the mark there too. Once set, it cannot change.

use crate::settings::hooks::{check_hook_candidate, is_role_or_database_setting, text_setting};
use crate::settings::{names, Context, Setting, Value};
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::{pg_guard, pg_sys};
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};

/// `electric_auth.refused_setting`: the name of the setting refused when the library loaded in
/// this session, empty when none was. Set only by the library itself.
static REFUSED_SETTING: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

thread_local! {
    /// Raised in this process once a refused setting is known; never lowered.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// The name of an `electric_auth.*` setting refused when the library loaded in this session
/// (in the leader, or in the leader of this parallel worker), if any.
pub fn refused_setting() -> Option<String> {
    if !REFUSED.get() {
        return None;
    }
    Some(
        text_setting(&REFUSED_SETTING)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "an electric_auth setting".to_owned()),
    )
}

/// Only the library sets the marker: from empty, a name is accepted from `mark` (source
/// `PGC_S_OVERRIDE`) or a parallel worker restoring its leader's settings; once it holds a name,
/// only that same name (a restore, a reset to the overriding value).
#[pg_guard]
unsafe extern "C-unwind" fn check_marker(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passed to this string check hook.
    let candidate = unsafe { check_hook_candidate(newval) };
    let current = REFUSED_SETTING.get();
    let current = current.as_deref().unwrap_or(c"");
    // SAFETY: a plain read of a backend global.
    let restoring_in_worker = unsafe { pg_sys::InitializingParallelWorker };
    let allowed = candidate == current
        || (current.is_empty()
            && (source == pg_sys::GucSource::PGC_S_OVERRIDE || restoring_in_worker));
    if !allowed {
        // SAFETY: a static string; Postgres reads it right after this hook returns.
        unsafe {
            pg_sys::GUC_check_errdetail_string =
                pg_sys::pstrdup(c"Only electric_auth itself sets this.".as_ptr());
        }
    }
    allowed
}

#[pg_guard]
unsafe extern "C-unwind" fn marker_assigned(newval: *const c_char, _extra: *mut c_void) {
    // SAFETY: Postgres passes the value being installed, a C string or NULL.
    if !newval.is_null() && !unsafe { CStr::from_ptr(newval) }.is_empty() {
        REFUSED.set(true);
    }
}

/// `electric_auth.refused_setting`, declared for the registry.
pub fn declared() -> [Setting; 1] {
    [Setting {
        name: names::REFUSED_SETTING,
        short: c"Set by electric_auth when a setting named before it loaded was refused; it then refuses every token in the session.",
        long: c"Read-only in effect: set once by the library, carried to parallel workers.",
        context: Context::Suset,
        flags: GucFlags::NO_RESET_ALL
            .union(GucFlags::DISALLOW_IN_FILE)
            .union(GucFlags::DISALLOW_IN_AUTO_FILE),
        value: Value::Text {
            setting: &REFUSED_SETTING,
            check: Some(check_marker),
            assign: Some(marker_assigned),
        },
    }]
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
        let mut count: std::ffi::c_int = 0;
        (pg_sys::get_guc_variables(&mut count), count)
    };
    (variables, usize::try_from(count).unwrap_or(0))
}

/// An `electric_auth.*` setting as Postgres knows it now: its name, the source of its reset
/// value and the source of its current value.
pub struct Known {
    name: String,
    reset_source: pg_sys::GucSource::Type,
    source: pg_sys::GucSource::Type,
    /// Who set the reset value: `PGC_SIGHUP`/`PGC_POSTMASTER` when the configuration files
    /// did (a reload that dropped the line leaves that context with the default value),
    /// `PGC_INTERNAL` for a placeholder only a session ever touched.
    reset_scontext: pg_sys::GucContext::Type,
}

/// Each `electric_auth.*` setting known to Postgres now, in any spelling.
fn known_settings() -> Vec<Known> {
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
            // Setting names are case-insensitive, and a placeholder keeps the spelling it was
            // created with (`-c Electric_Auth.Jwt_Aud=` in connection options).
            let prefix = name.as_bytes().get(..names::PREFIX.len());
            if prefix.is_some_and(|p| p.eq_ignore_ascii_case(names::PREFIX.as_bytes())) {
                found.push(Known {
                    name: name.into_owned(),
                    reset_source: (*variable).reset_source,
                    source: (*variable).source,
                    reset_scontext: (*variable).reset_scontext,
                });
            }
        }
    }
    found
}

/// The placeholders that defining the settings will replace. Empty in the postmaster (no
/// per-session values) and in parallel workers (they restore the leader's settings, and its
/// mark, after loading the library).
pub fn placeholders_before_definition() -> Vec<Known> {
    // SAFETY: plain reads of backend globals set before any library is loaded.
    let (in_backend, in_parallel_worker) = unsafe {
        (
            pg_sys::IsUnderPostmaster,
            pg_sys::InitializingParallelWorker,
        )
    };
    if in_backend && !in_parallel_worker {
        known_settings()
    } else {
        Vec::new()
    }
}

/// After the settings are defined, the session is marked when a placeholder tells that a value
/// set before the library loaded is lost:
/// - its reset value came from a per-session source (connection options, role or database
///   settings) and did not survive the definition: Postgres refused it, and the configured value
///   it displaced is gone for the session;
/// - its current value came from a session `SET` that the definition refused, leaving the
///   built-in default (a role without the privilege set it, say to empty, over a SECURITY
///   DEFINER function's stricter value);
/// - it holds no value at all (current and reset source both the default): it was set in this
///   session and then reset — `RESET ALL`/`DISCARD ALL` by any role, which a placeholder does
///   not resist as the defined setting does (`GUC_NO_RESET_ALL`) — or rolled back, so a
///   superuser's session value (say, a SECURITY DEFINER function's `set_config` of `jwt_aud`)
///   may have been dropped by the caller. Not so a placeholder the configuration files set
///   and a reload then dropped (the line removed, `ALTER SYSTEM RESET` + reload): the
///   postmaster keeps it valueless and every new backend inherits it, but its reset value was
///   last set by the reload (`PGC_SIGHUP`), not by a session — nothing of a session is lost, and
///   taking it for a lost value refused every token in every new session until a restart.
///
/// Values from files and the command line are the superuser's; a bad one there is reported by
/// Postgres and leaves the setting at its default.
pub fn mark_refused_placeholders(placeholders: Vec<Known>) {
    if placeholders.is_empty() {
        return;
    }
    let defined = known_settings();
    for placeholder in placeholders {
        // The identity carrier displaces no configured value: its placeholder is just refused
        // (see `identity/carrier.rs`), and the settings are intact.
        if placeholder
            .name
            .eq_ignore_ascii_case(&names::IDENTITY_TOKEN.to_string_lossy())
        {
            continue;
        }
        let Some(defined) = defined
            .iter()
            .find(|known| known.name.eq_ignore_ascii_case(&placeholder.name))
        else {
            continue;
        };
        let per_session = placeholder.reset_source == pg_sys::GucSource::PGC_S_CLIENT
            || is_role_or_database_setting(placeholder.reset_source);
        // A session value (a `SET` made before the library loaded, by a role not allowed to)
        // that the definition refused, leaving the built-in default: the session value it
        // displaced (a SECURITY DEFINER function's stricter `set_config`) is gone too.
        let session_value_refused = placeholder.source == pg_sys::GucSource::PGC_S_SESSION
            && defined.source == pg_sys::GucSource::PGC_S_DEFAULT;
        let refused = (per_session && defined.reset_source == pg_sys::GucSource::PGC_S_DEFAULT)
            || session_value_refused;
        let from_configuration = matches!(
            placeholder.reset_scontext,
            pg_sys::GucContext::PGC_SIGHUP | pg_sys::GucContext::PGC_POSTMASTER
        );
        let reset = placeholder.source == pg_sys::GucSource::PGC_S_DEFAULT
            && placeholder.reset_source == pg_sys::GucSource::PGC_S_DEFAULT
            && !from_configuration;
        if refused || reset {
            mark(&placeholder.name.to_ascii_lowercase());
            return;
        }
    }
}

/// Raises the mark in this process and records it where parallel workers will find it.
fn mark(name: &str) {
    REFUSED.set(true);
    let Ok(value) = CString::new(name) else {
        return;
    };
    // SAFETY: an ordinary setting assignment. PGC_S_OVERRIDE makes it the reset value as well
    // (so ROLLBACK and RESET keep it) and, not being the default, it is serialized into
    // parallel workers; PGC_INTERNAL is the library acting, not the session's role.
    unsafe {
        pg_sys::SetConfigOption(
            names::REFUSED_SETTING.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_INTERNAL,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
}

// Without shared_preload_libraries, settings named before the library loads in a session are
// only placeholders, which any role can reset (see `mark_refused_placeholders`): say so when
// the extension is created. A superuser runs CREATE EXTENSION, so the setting is readable.
pgrx::extension_sql!(
    r#"
DO $preload_notice$
BEGIN
  IF NOT EXISTS (
    SELECT FROM pg_catalog.unnest(pg_catalog.string_to_array(
      pg_catalog.current_setting('shared_preload_libraries', true), ',')) AS library(name)
    WHERE pg_catalog.regexp_replace(pg_catalog.btrim(library.name, ' "'), '^.*/|\.so$', '', 'g')
      = 'electric_auth')
  THEN
    RAISE NOTICE 'electric_auth is not in shared_preload_libraries'
      USING DETAIL = 'Until the library loads in a session, electric_auth.* values set there are placeholders that any role can reset or override.',
            HINT = 'Add electric_auth (last) to shared_preload_libraries and restart.';
  END IF;
END
$preload_notice$;
"#,
    name = "preload_notice",
    requires = ["require_utf8_database"]
);
