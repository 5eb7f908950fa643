//! Verification statistics (`electric_auth.stats`) and the audit log.
//!
//! Each place that checks a token records one [`Outcome`] for its [`EntryPoint`] (the names
//! and the reason of each refusal come from `electric_auth_core::outcome`): counted in shared
//! memory (`shmem.rs`, when preloaded and `electric_auth.track_stats` is on), and logged when
//! `electric_auth.log_refusals` / `electric_auth.log_authentications` ask for it (`audit.rs`).
#![allow(clippy::result_large_err)] // ErrorReport unboxed, as pgrx expects (see api.rs)

mod audit;
mod shmem;

use crate::settings::{names, Context, Setting, Value};
use electric_auth_core::outcome::{cell, EntryPoint, Outcome, Reason};
use electric_auth_core::Error;
use pgrx::guc::{GucFlags, GucSetting};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::ffi::CStr;

/// `electric_auth.track_stats`: count verifications in `electric_auth.stats` (default on).
static TRACK_STATS: GucSetting<bool> = GucSetting::<bool>::new(true);
/// `electric_auth.log_refusals`: one LOG line per refusal (default off).
static LOG_REFUSALS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// `electric_auth.log_refusals_per_second`: the most refusal lines a backend writes per second.
static LOG_REFUSALS_PER_SECOND: GucSetting<i32> = GucSetting::<i32>::new(10);
/// `electric_auth.log_authentications`: one LOG line per successful authentication.
static LOG_AUTHENTICATIONS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// Installs the shared-memory hooks (when preloaded); called from `_PG_init`.
pub fn init() {
    shmem::init();
}

/// The settings, declared as data for `settings::register`.
pub fn declared_settings() -> [Setting; 4] {
    [
        Setting {
            name: names::TRACK_STATS,
            short: c"Count token verifications by entry point, outcome and reason in electric_auth.stats.",
            long: c"Needs electric_auth in shared_preload_libraries; off only to measure what counting costs.",
            context: Context::Suset,
            flags: GucFlags::empty(),
            value: Value::Bool {
                setting: &TRACK_STATS,
                assign: None,
            },
        },
        Setting {
            name: names::LOG_REFUSALS,
            short: c"Log each refused token with its entry point, reason, role, database and client address.",
            long: c"Never the token, key material or a claim of the refused token; rate-limited per backend by electric_auth.log_refusals_per_second.",
            context: Context::Suset,
            flags: GucFlags::empty(),
            value: Value::Bool {
                setting: &LOG_REFUSALS,
                assign: None,
            },
        },
        Setting {
            name: names::LOG_REFUSALS_PER_SECOND,
            short: c"The most refusal log lines one backend writes per second; then one line counts those left out.",
            long: c"Keeps a flood of bad tokens from filling the log.",
            context: Context::Suset,
            flags: GucFlags::empty(),
            value: Value::Int {
                setting: &LOG_REFUSALS_PER_SECOND,
                min: 1,
                max: 10_000,
                assign: None,
            },
        },
        Setting {
            name: names::LOG_AUTHENTICATIONS,
            short: c"Log each successful electric_auth.authenticate() and OAuth login with the verified user id.",
            long: c"Off by default.",
            context: Context::Suset,
            flags: GucFlags::empty(),
            value: Value::Bool {
                setting: &LOG_AUTHENTICATIONS,
                assign: None,
            },
        },
    ]
}

/// `electric_auth.track_stats`, read on every verification: straight from the setting's
/// storage, without `GucSetting::get`'s thread check (a thread-local lookup through
/// `__tls_get_addr` in a loaded library, most of counting's cost in the HS256 profile).
#[inline]
fn tracking() -> bool {
    // SAFETY: the bool Postgres's GUC machinery writes for this setting; Postgres calls this
    // library on its one thread, so no write can be under way while it is read.
    unsafe { *TRACK_STATS.as_ptr() }
}

/// Records one check at `entry` that ended with `outcome`, for the default issuer.
#[inline]
pub fn record(entry: EntryPoint, outcome: Outcome) {
    record_in(0, entry, outcome);
}

/// Records one check at `entry` that ended with `outcome`, in issuer lane `lane` (see
/// `shmem::LANES`; 0: the default issuer).
#[inline]
pub fn record_in(lane: usize, entry: EntryPoint, outcome: Outcome) {
    if tracking() {
        shmem::count(lane, cell(entry, outcome));
    }
    if let Outcome::Refused(reason) = outcome {
        refusal_logged(lane, entry, reason);
    }
}

/// Logs a refusal when `electric_auth.log_refusals` asks for it (kept out of the accepted path).
#[cold]
#[inline(never)]
fn refusal_logged(lane: usize, entry: EntryPoint, reason: Reason) {
    if LOG_REFUSALS.get() {
        let issuer = lane_name(lane);
        let limit = LOG_REFUSALS_PER_SECOND.get();
        audit::refusal(entry, reason, None, limit, issuer.as_deref());
    }
}

/// The issuer of stats lane `lane`, for a log line (`None`: the default issuer).
fn lane_name(lane: usize) -> Option<String> {
    (lane != 0)
        .then(|| shmem::lane_issuer(&shmem::issuer_names(), lane))
        .flatten()
}

/// Records the outcome of a check at `entry` that returned `result`, in issuer lane `lane`
/// (0: the default issuer), and passes it on.
#[inline]
pub fn counted_in<T>(entry: EntryPoint, lane: usize, result: Result<T, Error>) -> Result<T, Error> {
    record_in(lane, entry, Outcome::of(&result));
    result
}

/// The stats lanes of the listed issuers named `names` (see `shmem::issuer_lanes`).
pub fn issuer_lanes(names: &[&str]) -> Vec<usize> {
    shmem::issuer_lanes(names)
}

/// Records `result` at `entry` if it is a refusal (a step before the check that counts), and
/// passes it on.
pub fn refusal_counted<T>(entry: EntryPoint, result: Result<T, Error>) -> Result<T, Error> {
    if let Err(error) = &result {
        refused(entry, Reason::of(error));
    }
    result
}

/// Records a refusal at `entry` for `reason`.
pub fn refused(entry: EntryPoint, reason: Reason) {
    record(entry, Outcome::Refused(reason));
}

/// Records an OAuth login (PostgreSQL 18) for `role`: accepted (`None`) or refused.
#[cfg_attr(not(feature = "pg18"), allow(dead_code))] // called by oauth.rs, PostgreSQL 18 only
pub fn login(refusal: Option<Reason>, role: &CStr) {
    login_in(0, refusal, role);
}

/// As [`login`], in issuer lane `lane`.
#[cfg_attr(not(feature = "pg18"), allow(dead_code))] // called by oauth.rs, PostgreSQL 18 only
pub fn login_in(lane: usize, refusal: Option<Reason>, role: &CStr) {
    let entry = EntryPoint::OauthLogin;
    let outcome = refusal.map_or(Outcome::Accepted, Outcome::Refused);
    if tracking() {
        shmem::count(lane, cell(entry, outcome));
    }
    if let Some(reason) = refusal {
        if LOG_REFUSALS.get() {
            let issuer = lane_name(lane);
            let limit = LOG_REFUSALS_PER_SECOND.get();
            audit::refusal(entry, reason, Some(role), limit, issuer.as_deref());
        }
    }
}

/// Records an OAuth login whose token was checked (`result`: the user id and whether the
/// pg_hba.conf line and the role claim authorize the login), and logs it when accepted.
#[cfg_attr(not(feature = "pg18"), allow(dead_code))] // called by oauth.rs, PostgreSQL 18 only
pub fn login_checked<E>(lane: usize, result: &Result<(String, Result<(), E>), Error>, role: &CStr) {
    match result {
        Ok((user_id, Ok(()))) => {
            login_in(lane, None, role);
            authenticated(EntryPoint::OauthLogin, user_id, Some(role));
        }
        Ok((_, Err(_))) => login_in(lane, Some(Reason::NotAuthorized), role),
        Err(error) => login_in(lane, Some(Reason::of(error)), role),
    }
}

/// Logs a successful authentication of `user_id` when `electric_auth.log_authentications` is
/// on (`role`: the role an OAuth login asked for).
pub fn authenticated(entry: EntryPoint, user_id: &str, role: Option<&CStr>) {
    if LOG_AUTHENTICATIONS.get() {
        audit::authentication(entry, user_id, role);
    }
}

/// Raised when the counters do not exist.
fn not_preloaded() -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        "electric_auth statistics need electric_auth in shared_preload_libraries",
        "electric_auth",
    )
    .set_detail("The counters live in shared memory, which a library gets only when the server loads it at start.")
    .set_hint("Add electric_auth to shared_preload_libraries in postgresql.conf and restart the server.")
}

/// Refuses (42501) a role that may not SELECT from `electric_auth.stats`.
fn may_read() -> Result<(), ErrorReport> {
    let allowed = Spi::get_one::<bool>(
        "SELECT pg_catalog.has_table_privilege('electric_auth.stats', 'SELECT')",
    );
    if allowed == Ok(Some(true)) {
        return Ok(());
    }
    Err(ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        "permission denied for the electric_auth statistics",
        "electric_auth",
    )
    .set_hint("Superusers and members of pg_monitor may read them; GRANT SELECT ON electric_auth.stats lets another role."))
}

// Readable by superusers and pg_monitor members (like pg_stat_statements), reset by superusers;
// both can be granted to other roles. The functions behind the view answer whoever may SELECT
// from the view (see `may_read`), so one GRANT SELECT is all a role needs.
pgrx::extension_sql!(
    r#"
CREATE VIEW electric_auth.stats AS
  SELECT d.datname, s.entry_point, s.outcome, s.reason, s.count, s.issuer
    FROM electric_auth.stats_counts() s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid;
COMMENT ON VIEW electric_auth.stats IS 'Token verifications by database, entry point, outcome, reason and issuer (NULL: the default issuer) since electric_auth.stats_reset_time()';
REVOKE ALL ON electric_auth.stats FROM PUBLIC;
GRANT SELECT ON electric_auth.stats TO pg_monitor;
REVOKE ALL ON FUNCTION electric_auth.stats_reset() FROM PUBLIC;
"#,
    name = "stats_view",
    requires = [
        electric_auth::stats_counts,
        electric_auth::stats_reset,
        electric_auth::stats_reset_time
    ]
);

#[pg_schema]
pub mod electric_auth {
    use electric_auth_core::outcome::from_cell;
    use pgrx::pg_sys::panic::ErrorReport;
    use pgrx::prelude::*;

    /// The counters behind the `electric_auth.stats` view: one row per database oid (0 before
    /// a connection has one: OAuth logins), entry point and outcome counted since the last reset.
    #[pg_extern(volatile, parallel_safe)]
    #[allow(clippy::type_complexity)] // pgrx reads the columns from the signature itself
    pub fn stats_counts() -> Result<
        TableIterator<
            'static,
            (
                name!(dbid, pg_sys::Oid),
                name!(entry_point, &'static str),
                name!(outcome, &'static str),
                name!(reason, Option<&'static str>),
                name!(count, i64),
                name!(issuer, Option<String>),
            ),
        >,
        ErrorReport,
    > {
        super::may_read()?;
        let counts = super::shmem::snapshot().ok_or_else(super::not_preloaded)?;
        let names = super::shmem::issuer_names();
        Ok(TableIterator::new(counts.into_iter().filter_map(
            move |(database, lane, index, count)| {
                let (entry, outcome) = from_cell(index)?;
                let (outcome, reason) = outcome.names();
                Some((
                    pg_sys::Oid::from_u32(database),
                    entry.name(),
                    outcome,
                    reason,
                    i64::try_from(count).unwrap_or(i64::MAX),
                    super::shmem::lane_issuer(&names, lane),
                ))
            },
        )))
    }

    /// Zeroes the counters of `electric_auth.stats` and records the time.
    #[pg_extern(volatile, parallel_unsafe)]
    pub fn stats_reset() -> Result<(), ErrorReport> {
        if super::shmem::reset() {
            Ok(())
        } else {
            Err(super::not_preloaded())
        }
    }

    /// When the counters of `electric_auth.stats` were last reset (or the server started).
    #[pg_extern(volatile, parallel_safe)]
    pub fn stats_reset_time() -> Result<Option<TimestampWithTimeZone>, ErrorReport> {
        super::may_read()?;
        let time = super::shmem::reset_time().ok_or_else(super::not_preloaded)?;
        Ok(TimestampWithTimeZone::try_from(time).ok())
    }
}
