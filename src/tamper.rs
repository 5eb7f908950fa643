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

use crate::gucs::is_role_or_database_setting;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::{pg_guard, pg_sys};
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};

/// `electric_auth.refused_setting`: the name of the setting refused when the library loaded in
/// this session, empty when none was. Set only by the library itself.
static REFUSED_SETTING: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const REFUSED_SETTING_NAME: &CStr = c"electric_auth.refused_setting";

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
        crate::gucs::text_setting(&REFUSED_SETTING)
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
    let candidate = unsafe { crate::gucs::check_hook_candidate(newval) };
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

/// Defines `electric_auth.refused_setting`; called from `gucs::init` before the prefix is
/// reserved.
pub fn define_marker() {
    // SAFETY: the hooks are guarded and only read their arguments and a thread-local flag.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            REFUSED_SETTING_NAME,
            c"Set by electric_auth when a setting named before it loaded was refused; it then refuses every token in the session.",
            c"Read-only in effect: set once by the library, carried to parallel workers.",
            &REFUSED_SETTING,
            GucContext::Suset,
            GucFlags::NO_RESET_ALL
                | GucFlags::DISALLOW_IN_FILE
                | GucFlags::DISALLOW_IN_AUTO_FILE,
            Some(check_marker),
            Some(marker_assigned),
            None,
        );
    }
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

/// The placeholders that defining the settings will replace, with their reset sources. Empty
/// in the postmaster (no per-session values) and in parallel workers (they restore the
/// leader's settings, and its mark, after loading the library).
pub fn placeholders_before_definition() -> Vec<(String, pg_sys::GucSource::Type)> {
    // SAFETY: plain reads of backend globals set before any library is loaded.
    let (in_backend, in_parallel_worker) = unsafe {
        (
            pg_sys::IsUnderPostmaster,
            pg_sys::InitializingParallelWorker,
        )
    };
    if in_backend && !in_parallel_worker {
        reset_sources()
    } else {
        Vec::new()
    }
}

/// After the settings are defined: a placeholder's reset value from a session-level source
/// that did not survive the definition was refused, so the session is marked. (Values from
/// files and the command line are the superuser's; a bad one there is reported by Postgres and
/// leaves the setting at its default.)
pub fn mark_refused_placeholders(placeholders: Vec<(String, pg_sys::GucSource::Type)>) {
    if placeholders.is_empty() {
        return;
    }
    let defined = reset_sources();
    for (name, source) in placeholders {
        // The identity carrier displaces no configured value: its placeholder is just refused
        // (see `session.rs`), and the settings are intact.
        if name.as_bytes() == crate::session::IDENTITY_TOKEN_NAME.to_bytes() {
            continue;
        }
        let now = defined.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
        let per_session =
            source == pg_sys::GucSource::PGC_S_CLIENT || is_role_or_database_setting(source);
        if per_session && now == Some(pg_sys::GucSource::PGC_S_DEFAULT) {
            mark(&name);
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
            REFUSED_SETTING_NAME.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_INTERNAL,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
}
