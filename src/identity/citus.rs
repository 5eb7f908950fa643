//! Citus: how the session identity reaches the workers of a distributed transaction.
//!
//! Backend memory does not reach the connections Citus opens from a coordinator to its workers,
//! but a `SET LOCAL` does (with `citus.propagate_set_commands = 'local'`): Citus sends its text
//! to every worker connection of the transaction. That text lands where other roles read it
//! (the workers' `pg_stat_statements`, `log_statement` output, `pg_stat_activity`), so the
//! token never travels as itself:
//!
//! - **Coordinator** ([`forward_set_local`]): a transaction-scope `authenticate()` seals the
//!   token (`electric_auth_core::seal`) under the cluster's `electric_auth.propagation_secret`,
//!   bound to the Citus distributed transaction id this transaction will use, and runs
//!   `SET LOCAL electric_auth.identity_token TO '<sealed>'` through SPI, which Citus forwards;
//!   the caller then puts the token itself into the local carrier.
//! - **Worker** ([`propagated_value_accepted`], [`carried_token`]): where the superuser set
//!   `electric_auth.accept_propagated_identity`, a session's `SET` of the carrier is accepted
//!   only in the sealed form, only if it opens with this node's secret and its token verifies
//!   here; and whenever the identity is read, the value must open again and be bound to the
//!   backend's current distributed transaction. Anywhere else a sealed value is worth nothing.
//!
//! Citus is recognised by its library being loaded ([`loaded`]), never by a setting's value: any
//! role can `SET citus.propagate_set_commands` on a server without Citus (a placeholder).
#![allow(clippy::result_large_err)] // ErrorReport unboxed, as pgrx expects (see sql/mod.rs)

use crate::errors::warn_once;
use crate::settings::hooks::{
    check_hook_candidate, refuse_in_check_hook, refuse_secret_where_readable,
};
use crate::settings::{names, Context, Setting, Value};
use crate::stats;
use crate::verify::{check_session, statement_time, verify_counted};
use electric_auth_core::outcome::{EntryPoint, Reason};
use electric_auth_core::seal::{self, Binding, SealError, Sealer};
use electric_auth_core::{Error, TokenError};
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};

/// `electric_auth.accept_propagated_identity`: whether a session's `SET` of the carrier is
/// accepted when it is a sealed value that opens and verifies here (Citus workers). Only in
/// the configuration files.
static ACCEPT_PROPAGATED: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `electric_auth.propagation_secret`: the key material every node of a Citus cluster shares
/// to seal and open the forwarded identity. Only in the configuration files, readable by
/// superusers only.
static PROPAGATION_SECRET: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);

thread_local! {
    static NOT_LOCAL_WARNED: Cell<bool> = const { Cell::new(false) };
    static SESSION_SCOPE_WARNED: Cell<bool> = const { Cell::new(false) };
    static NOT_SEALED_WARNED: Cell<bool> = const { Cell::new(false) };
}

/// The Citus settings, declared for the registry.
pub fn declared() -> [Setting; 2] {
    [
        Setting {
            name: names::ACCEPT_PROPAGATED_IDENTITY,
            short: c"Accept electric_auth.identity_token from SET when a coordinator sealed it for this transaction and its token verifies here (Citus workers).",
            long: c"Citus forwards a coordinator's SET LOCAL to its workers; each worker opens the sealed value and verifies the token again.",
            context: Context::Sighup,
            flags: GucFlags::empty(),
            value: Value::Bool {
                setting: &ACCEPT_PROPAGATED,
                assign: None,
            },
        },
        Setting {
            name: names::PROPAGATION_SECRET,
            short: c"Secret every Citus node shares to seal the identity a coordinator forwards to its workers.",
            long: c"At least 32 bytes, the same on every node. Visible to superusers only; refused in ALTER ROLE/DATABASE ... SET and function SET clauses.",
            context: Context::Sighup,
            flags: GucFlags::SUPERUSER_ONLY.union(GucFlags::NO_SHOW_ALL),
            value: Value::Text {
                setting: &PROPAGATION_SECRET,
                check: Some(check_propagation_secret),
                assign: None,
            },
        },
    ]
}

/// Refuses the secret on the routes that would store it where every role can read it (as for
/// `electric_auth.jwt_key`), and a secret too short to be one.
#[pg_guard]
unsafe extern "C-unwind" fn check_propagation_secret(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passed to this string check hook.
    let value = unsafe { check_hook_candidate(newval) }.to_bytes();
    if value.trim_ascii().is_empty() {
        return true;
    }
    // SAFETY: this is a string check hook, passing its own arguments.
    if unsafe {
        refuse_secret_where_readable(
            names::PROPAGATION_SECRET,
            newval,
            source,
            "Set it in postgresql.conf on every node.",
        )
    } {
        return false;
    }
    if let Err(error @ SealError::SecretTooShort) = Sealer::new(value) {
        // SAFETY: a check hook about to return false.
        unsafe {
            refuse_in_check_hook(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                &error.to_string(),
                "It keys the sealed identity Citus forwards to the workers.",
                "Use at least 32 random bytes, e.g. the output of `openssl rand -base64 48`, the same on every node.",
            );
        }
        return false;
    }
    true
}

/// Whether Citus's library is loaded in this process: its `citus.propagate_set_commands`
/// exists and is Citus's own definition, not a placeholder any role can create with `SET`.
pub fn loaded() -> bool {
    let name = c"citus.propagate_set_commands";
    // SAFETY: looks a setting up by name (missing_ok), reading no more than its flags.
    let flags = unsafe { pg_sys::GetConfigOptionFlags(name.as_ptr(), true) };
    // SAFETY: as above; NULL when no such setting, not even a placeholder, exists.
    let exists = !unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) }.is_null();
    exists && flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 == 0
}

/// Whether Citus (loaded) forwards `SET LOCAL` to its workers.
fn propagates_set_local() -> bool {
    // SAFETY: looks a setting up by name; NULL when it does not exist.
    let value =
        unsafe { pg_sys::GetConfigOption(c"citus.propagate_set_commands".as_ptr(), true, false) };
    // SAFETY: a non-NULL result is the setting's NUL-terminated value.
    !value.is_null()
        && unsafe { CStr::from_ptr(value) }
            .to_bytes()
            .eq_ignore_ascii_case(b"local")
}

/// Warns that a session-scope identity stays on the coordinator (Citus forwards `SET LOCAL`
/// only); nothing to do for an empty value.
pub fn warn_session_scope(value: &CStr) {
    if !value.is_empty() {
        warn_once(
            &SESSION_SCOPE_WARNED,
            "a session-scope identity does not reach Citus workers",
            "Citus forwards SET LOCAL only: call electric_auth.authenticate(token) in each transaction.",
        );
    }
}

/// On a coordinator (Citus loaded), has Citus forward a transaction-scope carrier `value` to
/// the workers: sealed for this distributed transaction (an empty value, logout, as it is),
/// in a `SET LOCAL` statement that `run` executes through SPI. When it cannot be sealed the
/// identity stays on the coordinator, with a warning. The caller then assigns `value` itself
/// to the local carrier, so this node never holds the sealed form.
pub fn forward_set_local(value: &CStr, run: impl FnOnce(&str) -> Result<(), pgrx::spi::Error>) {
    if !propagates_set_local() {
        if !value.is_empty() {
            warn_once(
                &NOT_LOCAL_WARNED,
                "citus.propagate_set_commands is not 'local': the identity stays on the coordinator",
                "Policies and triggers that run on Citus workers see no identity. Set citus.propagate_set_commands = 'local' on the coordinator.",
            );
        }
        return;
    }
    let forwarded: Cow<str> = if value.is_empty() {
        Cow::Borrowed("")
    } else {
        match seal_for_this_transaction(value) {
            Ok(sealed) => Cow::Owned(sealed),
            Err(error) => {
                if !NOT_SEALED_WARNED.replace(true) {
                    ErrorReport::new(
                        PgSqlErrorCode::ERRCODE_WARNING,
                        format!("the identity stays on the coordinator: {error}"),
                        "electric_auth",
                    )
                    .set_detail("The token is forwarded to Citus workers only sealed with electric_auth.propagation_secret, never as itself.")
                    .set_hint("Set the same electric_auth.propagation_secret (at least 32 random bytes) in postgresql.conf on every node.")
                    .report(PgLogLevel::WARNING);
                }
                // Workers keep no identity of this transaction: empty it there.
                Cow::Borrowed("")
            }
        }
    };
    // The sealed form is base64url after an ASCII prefix: no quote can occur in it.
    let statement = format!(
        "SET LOCAL {} TO '{forwarded}'",
        names::IDENTITY_TOKEN.to_string_lossy()
    );
    if let Err(error) = run(&statement) {
        panic!("electric_auth could not forward its identity: {error}");
    }
}

/// `token` sealed for the distributed transaction this one is (or now becomes).
fn seal_for_this_transaction(token: &CStr) -> Result<String, SealError> {
    let sealer = sealer()?;
    let token = token.to_str().map_err(|_| SealError::NotSealed)?;
    // The id Citus sends its workers is assigned when a distributed transaction starts; start
    // it now (as Citus does for any distributed statement) so that it is known.
    let binding = current_transaction(true).ok_or(SealError::NoTransaction)?;
    sealer.seal(token, binding)
}

fn sealer() -> Result<Sealer, SealError> {
    let secret = PROPAGATION_SECRET.get();
    Sealer::new(secret.as_ref().map_or(&b""[..], |s| s.to_bytes()))
}

/// This backend's Citus distributed transaction id (`None`: Citus is not loaded, or not
/// created in this database). With `start`, a transaction that has none yet gets one now.
///
/// Read through Citus's SQL functions: its library exports no C function for it. The id is
/// what Citus sends its workers (`assign_distributed_transaction_id`) when it opens their
/// transactions; Citus assigns it when a coordinated transaction starts, which
/// `create_intermediate_result` does first thing ("Make sure that this transaction has a
/// distributed transaction ID", intermediate_results.c); a query that returns nothing makes
/// an empty result, removed with the transaction.
fn current_transaction(start: bool) -> Option<Binding> {
    if !loaded() {
        return None;
    }
    let created = Spi::get_one::<bool>(
        "SELECT to_regprocedure('pg_catalog.get_current_transaction_id()') IS NOT NULL \
           AND to_regprocedure('pg_catalog.create_intermediate_result(text,text)') IS NOT NULL",
    );
    if created != Ok(Some(true)) {
        return None;
    }
    let read = || {
        let (initiator, number, timestamp) = Spi::get_three::<i32, i64, i64>(
            "SELECT initiator_node_identifier, transaction_number, \
                    (extract(epoch FROM transaction_stamp) * 1000000)::int8 \
               FROM pg_catalog.get_current_transaction_id()",
        )
        .ok()?;
        Some(Binding {
            initiator: initiator.unwrap_or(0),
            // Citus's uint64, shown as int8.
            number: number.unwrap_or(0) as u64,
            timestamp: timestamp.unwrap_or(0),
        })
    };
    let binding = read()?;
    if binding.is_assigned() || !start {
        return Some(binding);
    }
    // No result of this transaction can bear this name yet: any would have assigned the id.
    Spi::run("SELECT pg_catalog.create_intermediate_result('electric_auth_identity', 'SELECT 1 WHERE false')")
        .ok()?;
    read()
}

/// Whether the carrier may take `candidate` from a session's `SET` on a node that accepts
/// propagated identities: only a sealed value that opens with this node's secret, is bound to
/// this backend's distributed transaction (when Citus has assigned it yet: the forwarded
/// `SET LOCAL` can arrive just before the id, and the binding is checked again on every read,
/// see [`carried_token`]), and whose token verifies here. Otherwise refused with 28000.
///
/// # Safety
/// From the carrier's check hook, about to return what this returns.
pub unsafe fn propagated_value_accepted(candidate: &CStr) -> bool {
    let bad_seal = |_: &String| stats::refused(EntryPoint::Propagated, Reason::BadSeal);
    let verdict = (|| -> Result<(), String> {
        check_session()
            .map_err(|_| "this session cannot verify tokens".to_owned())
            .inspect_err(|_| stats::refused(EntryPoint::Propagated, Reason::RefusedSession))?;
        let opened = sealer()
            .and_then(|sealer| sealer.open(candidate.to_bytes()))
            .map_err(|e| e.to_string())
            .inspect_err(bad_seal)?;
        let token = match current_transaction(false) {
            Some(current) if current.is_assigned() => opened
                .token_for(current)
                .map_err(|e| e.to_string())
                .inspect_err(bad_seal)?,
            _ => opened
                .token_for(opened.binding)
                .map_err(|e| e.to_string())
                .inspect_err(bad_seal)?,
        };
        verify_counted(EntryPoint::Propagated, token, statement_time(), |_, _| ())
            .map_err(|e| e.to_string())
    })();
    let Err(message) = verdict else {
        return true;
    };
    // SAFETY: a check hook about to return false, as the caller guarantees.
    unsafe {
        refuse_in_check_hook(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            &message,
            "electric_auth.accept_propagated_identity is on here: electric_auth.identity_token is accepted from SET only as the sealed value a Citus coordinator forwards within its distributed transaction, with a token that verifies on this node.",
            "Authenticate on the coordinator with electric_auth.authenticate(token) inside the transaction.",
        );
    }
    false
}

/// The token the carrier's `value` stands for: the value itself, or for a sealed value (a
/// Citus worker's forwarded identity) its token, if it opens here and is bound to this
/// backend's current distributed transaction; anything else is refused as an invalid token.
pub fn carried_token(value: &str) -> Result<Cow<'_, str>, Error> {
    if !seal::is_sealed(value.as_bytes()) {
        return Ok(Cow::Borrowed(value));
    }
    let refused = |_| Error::Token(TokenError::InvalidToken);
    let opened = sealer()
        .and_then(|sealer| sealer.open(value.as_bytes()))
        .map_err(refused)?;
    let current = current_transaction(false).ok_or(Error::Token(TokenError::InvalidToken))?;
    opened
        .token_for(current)
        .map(|token| Cow::Owned(token.to_owned()))
        .map_err(refused)
}

/// Whether this node accepts the identity a Citus coordinator forwards (its workers).
pub fn accepts_propagated() -> bool {
    ACCEPT_PROPAGATED.get()
}
