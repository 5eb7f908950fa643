//! The registry of every `electric_auth.*` setting. Each concern declares its settings as data —
//! a [`Setting`]: name, kind and default (the static it reads), context, flags, hooks, doc — and
//! `_PG_init` hands all the tables to [`register`], which defines them in one loop and then
//! reserves the `electric_auth.` prefix, so a misspelt setting is an error rather than a silent
//! placeholder.
//!
//! Also here: the names of all settings ([`names`]), check-hook helpers ([`hooks`]) and the
//! settings generation, which the per-backend verifier (`verify/cache.rs`) compares to know when
//! to look at the settings again. This module imports nothing else of the glue.

pub mod hooks;
pub mod names;

use pgrx::guc::{GucContext, GucEnum, GucFlags, GucRegistry, GucSetting};
use pgrx::{pg_guard, pg_sys};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};

/// One setting, declared as data.
pub struct Setting {
    pub name: &'static CStr,
    /// `short_desc` in `pg_settings`.
    pub short: &'static CStr,
    /// `extra_desc` in `pg_settings`.
    pub long: &'static CStr,
    pub context: Context,
    pub flags: GucFlags,
    pub value: Value,
}

/// Who may change a setting, and when (the `GucContext`s we use).
#[derive(Clone, Copy)]
pub enum Context {
    /// Superusers and roles granted `SET` on it, in any session.
    Suset,
    /// Any role, in its own session (refusal is then the check hook's job).
    Userset,
    /// The configuration files and `ALTER SYSTEM`, taking effect at a reload.
    Sighup,
    /// The configuration files and `ALTER SYSTEM`, taking effect at the next server start.
    Postmaster,
}

impl Context {
    fn guc(self) -> GucContext {
        match self {
            Context::Suset => GucContext::Suset,
            Context::Userset => GucContext::Userset,
            Context::Sighup => GucContext::Sighup,
            Context::Postmaster => GucContext::Postmaster,
        }
    }
}

/// A setting's kind: the static that holds its value (and default), its bounds, its hooks.
pub enum Value {
    Bool {
        setting: &'static GucSetting<bool>,
        assign: pg_sys::GucBoolAssignHook,
    },
    Int {
        setting: &'static GucSetting<i32>,
        min: i32,
        max: i32,
        assign: pg_sys::GucIntAssignHook,
    },
    Text {
        setting: &'static GucSetting<Option<CString>>,
        check: pg_sys::GucStringCheckHook,
        assign: pg_sys::GucStringAssignHook,
    },
    Enum {
        setting: &'static dyn EnumSetting,
        assign: pg_sys::GucEnumAssignHook,
    },
}

/// An enum setting of any `PostgresGucEnum` type, so that one table can hold several.
pub trait EnumSetting: Sync {
    /// Defines `self` as `setting` says.
    ///
    /// # Safety
    /// As [`GucRegistry::define_enum_guc_with_hooks`]: the hook must be safe to call from
    /// Postgres's GUC machinery.
    unsafe fn define(&'static self, setting: &Setting, assign: pg_sys::GucEnumAssignHook);
}

impl<T: GucEnum + Copy + 'static> EnumSetting for GucSetting<T> {
    unsafe fn define(&'static self, s: &Setting, assign: pg_sys::GucEnumAssignHook) {
        // SAFETY: as the caller guarantees.
        unsafe {
            GucRegistry::define_enum_guc_with_hooks(
                s.name,
                s.short,
                s.long,
                self,
                s.context.guc(),
                s.flags,
                None,
                assign,
                None,
            )
        }
    }
}

/// Defines every setting of `tables`, in order, then reserves the prefix. Called once, from
/// `_PG_init`.
pub fn register(tables: &[&[Setting]]) {
    for setting in tables.iter().flat_map(|table| table.iter()) {
        let s = setting;
        // SAFETY: every hook in the tables is `#[pg_guard]`ed and only reads its arguments,
        // thread-locals and settings, or bumps a counter (each table says which).
        unsafe {
            match &s.value {
                Value::Bool { setting, assign } => GucRegistry::define_bool_guc_with_hooks(
                    s.name,
                    s.short,
                    s.long,
                    setting,
                    s.context.guc(),
                    s.flags,
                    None,
                    *assign,
                    None,
                ),
                Value::Int {
                    setting,
                    min,
                    max,
                    assign,
                } => GucRegistry::define_int_guc_with_hooks(
                    s.name,
                    s.short,
                    s.long,
                    setting,
                    *min,
                    *max,
                    s.context.guc(),
                    s.flags,
                    None,
                    *assign,
                    None,
                ),
                Value::Text {
                    setting,
                    check,
                    assign,
                } => GucRegistry::define_string_guc_with_hooks(
                    s.name,
                    s.short,
                    s.long,
                    setting,
                    s.context.guc(),
                    s.flags,
                    *check,
                    *assign,
                    None,
                ),
                Value::Enum { setting, assign } => setting.define(s, *assign),
            }
        }
    }
    let prefix = CString::new(names::PREFIX.trim_end_matches('.')).expect("no NUL in the prefix");
    // SAFETY: a NUL-terminated string; Postgres keeps its own copy.
    unsafe { pg_sys::MarkGUCPrefixReserved(prefix.as_ptr()) };
}

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Changes whenever a setting the verifier reads is assigned in this backend (those declared
/// with the assign hooks below): after `SET`, `SET LOCAL`, `RESET`, a rolled-back `SET`, or a
/// configuration reload alike.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

fn bump_generation() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Assign hooks that bump the [`generation`], one per kind.
pub mod bumps_generation {
    use super::*;

    #[pg_guard]
    pub unsafe extern "C-unwind" fn text(_newval: *const c_char, _extra: *mut c_void) {
        bump_generation();
    }

    #[pg_guard]
    pub unsafe extern "C-unwind" fn bool(_newval: bool, _extra: *mut c_void) {
        bump_generation();
    }

    #[pg_guard]
    pub unsafe extern "C-unwind" fn int(_newval: c_int, _extra: *mut c_void) {
        bump_generation();
    }
}
